"""The main navigation: the current section marked on every kind of page, and each role
shown only its own links, however the rendered navigation is shared between requests."""

from __future__ import annotations

import re

NAV = re.compile(r'<nav class="nav" aria-label="Main">(.*?)</nav>', re.DOTALL)


def current(html: str) -> list[str]:
    nav = NAV.search(html)
    assert nav is not None
    return re.findall(r'<a href="([^"]+)" aria-current="page"', nav.group(1))


def hrefs(html: str) -> list[str]:
    nav = NAV.search(html)
    assert nav is not None
    return re.findall(r'<a href="([^"]+)"', nav.group(1))


async def test_the_current_section_is_marked(admin_client, conn) -> None:
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email, full_name) VALUES ('nav1', 'nav1@example.com', 'N')"
        " RETURNING id"
    )
    for path, marked in [
        ("/", ["/"]),
        ("/users", ["/users"]),
        (f"/users/{user_id}", ["/users"]),
        ("/users/new", ["/users"]),
        ("/orders", ["/orders"]),
        ("/staff", ["/staff"]),
        ("/audit", ["/audit"]),
        ("/account", []),
    ]:
        page = await admin_client.get(path)
        assert page.status_code == 200, path
        assert current(page.text) == marked, path


async def test_each_role_sees_its_own_links(admin_client, staff_client) -> None:
    # the admin's navigation for these very pages is rendered first
    for path in ("/", "/users"):
        admin_page = (await admin_client.get(path)).text
        staff_page = (await staff_client.get(path)).text
        assert {"/staff", "/audit"} <= set(hrefs(admin_page))
        assert not {"/staff", "/audit"} & set(hrefs(staff_page))
        assert current(admin_page) == current(staff_page) == [path]
