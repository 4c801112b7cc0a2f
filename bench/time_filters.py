"""The cost of showing times in the reader's zone: a list page's 50 rows x 2 timestamps
through `localtime` (UTC and Europe/Berlin readers) and `localtime_tag`, against the plain
`datetime` filter it replaces, rendered by the panel's own Jinja environment.

    python bench/time_filters.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import timeit
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from admin.web.templating import templates

ROWS = 50
ROW = "<tr><td>{{ r.id }}</td><td>{{ r.created_at | %s }}</td><td>{{ r.updated_at | %s }}</td></tr>"
CASES = (
    ("datetime (no zone: the reference)", "datetime", "UTC"),
    ("localtime, UTC reader", "localtime", "UTC"),
    ("localtime, Europe/Berlin reader", "localtime", "Europe/Berlin"),
    ("localtime_tag, Europe/Berlin reader", "localtime_tag", "Europe/Berlin"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # spread over summer and winter time
    rows = [
        SimpleNamespace(
            id=i,
            created_at=start + timedelta(days=3 * i, minutes=7 * i),
            updated_at=start + timedelta(days=3 * i + 1),
        )
        for i in range(ROWS)
    ]
    reference = None
    print(f"{ROWS} rows x 2 timestamps per page, best of 5 x {args.rounds} renders")
    for label, name, zone in CASES:
        source = "{% for r in rows %}" + ROW % (name, name) + "{% endfor %}"
        template = templates.env.from_string(source)
        member = SimpleNamespace(time_zone=zone)

        def render(template=template, member=member) -> str:  # type: ignore[no-untyped-def]
            return template.render(rows=rows, current_staff=member)

        render()
        per_page = min(timeit.repeat(render, number=args.rounds, repeat=5)) / args.rounds * 1e6
        reference = reference or per_page
        print(f"{label:40s} {per_page:8.1f} µs/page  ratio {per_page / reference:.2f}")


if __name__ == "__main__":
    main()
