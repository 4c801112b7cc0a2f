"""Amounts of money as people read them: the currency and thousands separators.

The currency is one setting for the whole panel (`CURRENCY`, an ISO 4217 code), by default
the one of the territory in the process's locale (`de_DE.UTF-8` -> EUR), else USD.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

CODE = re.compile(r"[A-Z]{3}")
DEFAULT = "USD"
# shown before the amount; any other currency is named by its code after it
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
NO_DECIMALS = frozenset({"JPY", "KRW", "ISK", "CLP", "VND"})
EURO_TERRITORIES = frozenset("AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK".split())
TERRITORY_CURRENCY = {
    "US": "USD", "GB": "GBP", "CH": "CHF", "JP": "JPY", "CA": "CAD", "AU": "AUD",
    "NZ": "NZD", "SE": "SEK", "NO": "NOK", "DK": "DKK", "PL": "PLN", "CZ": "CZK",
    "HU": "HUF", "RO": "RON", "BG": "BGN", "IN": "INR", "BR": "BRL", "MX": "MXN",
    "CN": "CNY", "KR": "KRW", "ZA": "ZAR", "TR": "TRY", "IS": "ISK", "IL": "ILS",
}  # fmt: skip
_LOCALE = re.compile(r"[a-z]{2,3}_([A-Z]{2})")


def from_locale(env: Mapping[str, str]) -> str:
    """The currency of the locale's territory (LC_ALL, LC_MONETARY, LANG, in that order)."""
    for name in ("LC_ALL", "LC_MONETARY", "LANG"):
        value = env.get(name, "").strip()
        if not value:
            continue
        match = _LOCALE.match(value)
        if match is None:
            return DEFAULT  # C, POSIX: no territory
        territory = match.group(1)
        if territory in EURO_TERRITORIES:
            return "EUR"
        return TERRITORY_CURRENCY.get(territory, DEFAULT)
    return DEFAULT


class Money:
    """Formats amounts in one currency."""

    def __init__(self, code: str = DEFAULT) -> None:
        self.code = code
        self.symbol = SYMBOLS.get(code, "")
        self.places = 0 if code in NO_DECIMALS else 2

    def text(self, value: Decimal | float | int) -> str:
        """`$1,234.50`, `€1,234.50`, `1,234.50 CHF`; `-$5.00`; NaN and infinities as they are."""
        if isinstance(value, Decimal) and not value.is_finite():
            if value.is_nan():
                return "NaN"
            return "-Infinity" if value.is_signed() else "Infinity"
        number = f"{abs(value):,.{self.places}f}"
        sign = "-" if value < 0 else ""
        if self.symbol:
            return f"{sign}{self.symbol}{number}"
        return f"{sign}{number} {self.code}"


current = Money()


def configure(code: str) -> None:
    """Set the panel's currency (once, when the app is created)."""
    global current
    current = Money(code)


def change(now: Decimal, before: Decimal) -> str | None:
    """`+12%` / `-3%` from `before` to `now`; None when there is nothing to compare with."""
    if before <= 0:
        return None
    percent = (now - before) * 100 / before
    return f"{percent:+.0f}%"
