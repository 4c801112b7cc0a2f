"""A list's rows: the one copy of their markup, built in Python.

A list page renders fifty rows of up to ten cells; as a Jinja macro that cost three times the
rest of the page (an escape and a lookup per `{{ }}`), so rows are assembled here from parts
that are escaped once per table (labels) or safe by construction (keys are tilde-encoded,
URLs are built from them, row versions are digits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from admin.resources import cells
from admin.resources.cells import NULL_HTML
from admin.resources.model import Column, Table
from admin.resources.reads import ROW_VERSION

if TYPE_CHECKING:
    from admin.resources.carried import Carried

# row actions sit in a menu, not side by side: Delete is never one slip away from Edit
ACTIONS_OPEN = '<td class="row-actions"><details class="row-menu"><summary>Actions</summary>'


Cells = tuple[tuple[Column, Any], ...]
Layout = tuple[tuple[str, Any, str, bool], ...]


def layout(table: Table, columns: Iterable[Column]) -> tuple[Cells, Layout]:
    """The header cells and the row layout of a list showing `columns`: each column's
    name, renderer, its cell's opening tag, and whether it links to the record."""
    found = tuple((c, cells.renderer(c, table.targets.get(c.name))) for c in columns)
    first_key = table.primary_key[0].name if table.keyed else None
    return found, tuple(
        (
            column.name,
            render_fn,
            f'<td class="{column.css}">' if column.css else "<td>",
            column.name == first_key and column.reference is None,
        )
        for column, render_fn in found
    )


def list_rows(
    table: Table,
    found: Iterable[Any],
    zone: tzinfo,
    can: Mapping[str, bool],
    carried: Carried | None = None,
) -> Markup:
    """The rows; `carried` (the list's chosen columns and address) goes into each row's
    own links, so a row drawn again by them matches the list."""
    row_layout = carried.layout if carried is not None else None
    row_query = str(carried.row_query) if carried is not None else ""
    back_query = carried.back_query if carried is not None else ""
    record_query = carried.record_query if carried is not None else ""
    # the parts of the row's links that are the same on every row, joined once per page
    can_change, can_delete = can.get("change"), can.get("delete")
    edit_mid = f'/edit{back_query}" hx-get="'
    edit_end = (
        f'/inline{row_query}" hx-target="closest tr" hx-swap="outerHTML" data-inline-open>Edit</a>'
    )
    delete_mid = f'/delete{back_query}" hx-delete="'
    selectable = bool(table.bulk_actions) and (can_change or can_delete)
    label = str(escape(table.label))
    parts: list[str] = []
    for row in found:
        if table.keyed:
            key = table.key_of(row)
            href = f"{table.url}/{key}"
            # the record page links back to this very list
            shown = href + record_query
            parts.append(f'<tr id="row-{key}" tabindex="0" data-href="{shown}">')
        else:
            key = href = shown = ""
            parts.append("<tr>")
        if selectable:
            parts.append(
                f'<td><input type="checkbox" name="ids" value="{key}" form="bulk-form"'
                f' aria-label="Select {label} {key}"></td>'
            )
        for name, render_fn, opening, links in row_layout or table.list_layout:
            value = row[name]
            inner = NULL_HTML if value is None else render_fn(value, row, zone)
            if links and href:
                parts.append(f'{opening}<a href="{shown}">{inner}</a></td>')
            else:
                parts.append(f"{opening}{inner}</td>")
        if table.keyed:
            parts.append(ACTIONS_OPEN)
            if can_change:
                parts.append(f'<a href="{href}{edit_mid}{href}{edit_end}')
            if can_delete:
                version = row[ROW_VERSION]
                parts.append(
                    f'<a href="{href}{delete_mid}{href}?version={version}"'
                    f' hx-confirm="Delete {label} {key}?" hx-target="closest tr"'
                    ' hx-swap="outerHTML">Delete</a>'
                )
            parts.append("</details></td>")
        parts.append("</tr>\n")
    return Markup("".join(parts))  # noqa: S704 - see the module's docstring
