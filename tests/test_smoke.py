from tests.conftest import LoggedIn


async def test_healthz_ok(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_login_and_dashboard(staff_client: LoggedIn):
    page = await staff_client.get("/")
    assert page.status_code == 200
    assert "clerk" in page.text
