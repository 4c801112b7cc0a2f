"""Who may import and export, and the CSRF rules of the streamed upload."""

from __future__ import annotations

import asyncpg

from tests.conftest import LoggedIn
from tests.csv_helpers import USERS_HEADER, upload

CONTENT = (USERS_HEADER + "ann,ann@example.com,Ann,true\n").encode()


async def test_staff_who_are_not_admins_get_403(staff_client: LoggedIn, conn: asyncpg.Connection):
    for url in ("/users/import", "/orders/import", "/users/export.csv", "/orders/export.csv"):
        assert (await staff_client.get(url)).status_code == 403
    response = await upload(staff_client, "users", CONTENT)
    assert response.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_anonymous_upload_is_sent_to_login(client, conn: asyncpg.Connection):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/users/import", content=CONTENT, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 303
    assert "/login" in response.headers["location"]
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_multipart_without_token_is_refused(admin_client: LoggedIn, conn: asyncpg.Connection):
    response = await admin_client.http.post(
        "/users/import", data={"mode": "insert"}, files={"file": ("a.csv", CONTENT, "text/csv")}
    )
    assert response.status_code == 403
    wrong = await admin_client.http.post(
        "/users/import",
        data={"csrf_token": "forged", "mode": "insert"},
        files={"file": ("a.csv", CONTENT, "text/csv")},
    )
    assert wrong.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_token_after_the_file_part_does_not_count(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    boundary = "xyzBOUNDARYzyx"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        f"{CONTENT.decode()}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{admin_client.csrf}\r\n"
        f"--{boundary}--\r\n"
    )
    response = await admin_client.http.post(
        "/users/import",
        content=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_raw_csv_body_needs_the_header_token(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    url = "/users/import?mode=upsert"
    missing = await admin_client.http.post(
        url, content=CONTENT, headers={"Content-Type": "text/csv"}
    )
    assert missing.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    ok = await admin_client.http.post(
        url,
        content=CONTENT,
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": admin_client.csrf,
            "Accept": "application/json",
        },
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["inserted"] == 1
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_declared_length_over_the_limit_is_413(
    admin_client: LoggedIn, conn: asyncpg.Connection
):
    limit = admin_client.http._transport.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    response = await admin_client.http.post(
        "/users/import",
        content=CONTENT,
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": admin_client.csrf,
            "Content-Length": str(limit + 1),
        },
    )
    assert response.status_code == 413
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_import_page_has_the_form_with_the_token_before_the_file(admin_client: LoggedIn):
    page = await admin_client.get("/users/import")
    assert page.status_code == 200
    html = page.text
    assert html.index('name="csrf_token"') < html.index('name="file"')
    assert 'enctype="multipart/form-data"' in html
    assert "upload.js" in html


async def test_a_body_of_another_type_without_the_header_is_403_not_400(
    admin_client: LoggedIn,
):
    response = await admin_client.http.post(
        "/users/import", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 403
    with_header = await admin_client.http.post(
        "/users/import",
        content=b"{}",
        headers={"Content-Type": "application/json", "X-CSRF-Token": admin_client.csrf},
    )
    assert with_header.status_code == 400
