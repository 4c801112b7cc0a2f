"""The lists link admins to CSV export of exactly the current filter, and to import."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import LoggedIn


def export_link(page: str, resource: str) -> tuple[str, dict[str, list[str]]]:
    match = re.search(rf'href="(/{resource}/export\.csv[^"]*)"', page)
    assert match, "no export link"
    url = urlsplit(html.unescape(match.group(1)))
    return url.path, parse_qs(url.query)


@pytest.mark.parametrize(
    ("list_url", "resource", "expected"),
    [
        (
            "/users?q=ann&active=true&sort=email&limit=20",
            "users",
            {"q": ["ann"], "active": ["true"], "sort": ["email"]},
        ),
        ("/orders?status=paid", "orders", {"status": ["paid"]}),
    ],
)
async def test_admin_list_links_export_of_current_filter(
    admin_client: LoggedIn, list_url: str, resource: str, expected: dict[str, list[str]]
):
    fragment = await admin_client.get(list_url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    path, query = export_link(fragment.text, resource)
    assert path == f"/{resource}/export.csv"
    assert {key: value for key, value in query.items() if key != "dir"} == expected
    assert f'href="/{resource}/import"' in fragment.text


async def test_staff_sees_no_csv_links(staff_client: LoggedIn):
    page = await staff_client.get("/users")
    assert page.status_code == 200
    assert "export.csv" not in page.text
    assert "/users/import" not in page.text
