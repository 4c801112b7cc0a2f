"""Small repeated pieces of a list page's markup, built in Python: hidden inputs carrying the
list's state and the page-size options (as Jinja loops they cost more than the rest of the
list's controls together; see bench/list_render.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from markupsafe import Markup, escape


def hidden_inputs(params: Mapping[str, str], form: str | None = None) -> Markup:
    owner = f' form="{escape(form)}"' if form else ""
    return Markup(  # noqa: S704 - every name and value is escaped here
        "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}"{owner}>'
            for k, v in params.items()
        )
    )


def state_inputs(params: Mapping[str, str]) -> Markup:
    """The inputs the search form sends along (sort, direction, columns, column filters)."""
    kept = {k: v for k, v in params.items() if k in ("sort", "dir", "cols") or k[:2] == "f."}
    return hidden_inputs(kept, "list-filters")


def size_options(sizes: Iterable[int], current: int) -> Markup:
    return Markup(  # noqa: S704 - integers only
        "".join(
            f'<option value="{n}"{" selected" if n == current else ""}>{n}</option>' for n in sizes
        )
    )
