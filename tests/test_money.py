"""Money: the currency setting (default from the locale) and amounts as shown in lists."""

from __future__ import annotations

from decimal import Decimal

import pytest

from admin.display import money
from admin.settings import SettingsError, load_settings
from tests.conftest import LoggedIn

BASE = {"DATABASE_URL": "postgresql://shop@db/shop", "SECRET_KEY": "k" * 32}


@pytest.mark.parametrize(
    ("env", "code"),
    [
        ({}, "USD"),
        ({"LANG": "C.UTF-8"}, "USD"),
        ({"LANG": "de_DE.UTF-8"}, "EUR"),
        ({"LANG": "en_GB.UTF-8"}, "GBP"),
        ({"LANG": "en_US.UTF-8", "LC_MONETARY": "fr_CH.UTF-8"}, "CHF"),
        ({"LC_ALL": "fi_FI.UTF-8", "LANG": "en_US.UTF-8"}, "EUR"),
        ({"LANG": "de_DE.UTF-8", "CURRENCY": "SEK"}, "SEK"),
    ],
)
def test_currency_comes_from_the_setting_else_the_locale(env: dict[str, str], code: str):
    assert load_settings({**BASE, **env}).currency == code


def test_a_malformed_currency_is_refused_with_a_reason():
    with pytest.raises(SettingsError, match="CURRENCY must be an ISO 4217 code"):
        load_settings({**BASE, "CURRENCY": "euro"})


@pytest.mark.parametrize(
    ("code", "value", "text"),
    [
        ("USD", Decimal("1234567.5"), "$1,234,567.50"),
        ("EUR", Decimal("0.05"), "€0.05"),
        ("USD", Decimal("-5"), "-$5.00"),
        ("CHF", Decimal("1234.5"), "1,234.50 CHF"),
        ("JPY", Decimal("1234"), "¥1,234"),
        ("EUR", Decimal("NaN"), "NaN"),
    ],
)
def test_amounts_read_with_currency_and_separators(code: str, value: Decimal, text: str):
    assert money.Money(code).text(value) == text


async def test_list_and_record_show_prices_with_the_currency(staff_client: LoggedIn, conn):
    product_id = await conn.fetchval(
        "INSERT INTO products (sku, name, price, stock) VALUES ('ABC-1', 'Lamp', 1234.5, 3)"
        " RETURNING id"
    )
    listed = await staff_client.get("/products")
    assert "$1,234.50" in listed.text
    shown = await staff_client.get(f"/products/{product_id}")
    assert "$1,234.50" in shown.text
    # the form keeps the plain number, so what is shown is what is sent back
    form = await staff_client.get(f"/products/{product_id}/edit")
    assert 'value="1234.50"' in form.text
