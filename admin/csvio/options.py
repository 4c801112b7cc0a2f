"""How an import treats its file: insert or upsert, and which values it may adjust.

By default nothing that would change a value or is ambiguous gets through: an amount with
more decimals than the column keeps is refused unless `round_decimals` is chosen, and a
day/month date (01/02/2024) is refused unless a `date_order` is chosen. ISO dates
(2024-02-01) are always accepted.
"""

from __future__ import annotations

import codecs
import enum
from collections.abc import Callable
from dataclasses import dataclass

from admin.csvio.tables import Option


class Mode(enum.Enum):
    INSERT = "insert"
    UPSERT = "upsert"

    @classmethod
    def parse(cls, raw: str | None) -> Mode:
        text = (raw or "insert").strip().lower()
        for mode in cls:
            if mode.value == text:
                return mode
        raise ValueError("The mode must be 'insert' or 'upsert'.")


class DateOrder(enum.Enum):
    DMY = "dmy"
    MDY = "mdy"

    @property
    def datestyle(self) -> str:
        return f"ISO, {self.value.upper()}"


_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"", "0", "false", "off", "no"}


@dataclass(frozen=True)
class ImportOptions:
    mode: Mode = Mode.INSERT
    round_decimals: bool = False
    date_order: DateOrder | None = None
    dry_run: bool = False  # check everything, write nothing
    ignore_unknown: bool = False  # header fields matching no column are left out
    encoding: str = ""  # "" detect, else one of ENCODINGS
    delimiter: str = ""  # "" detect, else one of DELIMITERS
    decimal_comma: bool | None = None  # None: when the delimiter is ';'

    def chosen(self, option: Option) -> bool:
        if option is Option.ROUND_DECIMALS:
            return self.round_decimals
        return self.date_order is not None

    def describe(self) -> dict[str, object]:
        """For the audit entry and the answer."""
        return {
            "mode": self.mode.value,
            "round_decimals": self.round_decimals,
            "date_order": self.date_order.value if self.date_order else None,
            "dry_run": self.dry_run,
            "ignore_unknown": self.ignore_unknown,
            "encoding": self.encoding or "detect",
            "delimiter": self.delimiter or "detect",
        }

    @classmethod
    def parse(cls, value_of: Callable[[str], str | None]) -> ImportOptions:
        """Read the options from form fields or query parameters; ValueError if one is bad."""
        mode = Mode.parse(value_of("mode"))
        rounding = (value_of("round_decimals") or "").strip().lower()
        if rounding not in _TRUE | _FALSE:
            raise ValueError("round_decimals must be 1 (round amounts) or 0.")
        order = (value_of("date_order") or "").strip().lower()
        if order and order not in {o.value for o in DateOrder}:
            raise ValueError("date_order must be 'dmy' (day/month/year) or 'mdy' (month/day/year).")
        return cls(
            mode=mode,
            round_decimals=rounding in _TRUE,
            date_order=DateOrder(order) if order else None,
            dry_run=_flag(value_of, "dry_run"),
            ignore_unknown=_flag(value_of, "ignore_unknown"),
            encoding=_choice(value_of, "encoding", ENCODINGS),
            delimiter=_choice(value_of, "delimiter", DELIMITERS),
            decimal_comma=_flag(value_of, "decimal_comma") if value_of("decimal_comma") else None,
        )


# what a form or a query may name -> PostgreSQL's encoding name
ENCODINGS = {"utf-8": "UTF-8", "windows-1252": "WIN1252", "latin-1": "LATIN1"}
ENCODING_LABELS = {"UTF-8": "UTF-8", "WIN1252": "Windows-1252", "LATIN1": "Latin-1"}
DELIMITERS = {",": ",", ";": ";", "tab": "\t"}
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab"}


# Python's codec name -> what a form or a query may name; ASCII is read as UTF-8, a superset
_CHARSETS = {"utf-8": "utf-8", "ascii": "utf-8", "cp1252": "windows-1252", "iso8859-1": "latin-1"}


def charset_encoding(charset: str) -> str:
    """The encoding a Content-Type's `charset` names (`UTF8`, `cp1252`, `ISO-8859-1`…), as
    the `encoding` option spells it; ValueError for one the import cannot read."""
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):  # unknown, or a NUL in the name
        name = ""
    if name not in _CHARSETS:
        shown = charset if len(charset) <= 40 else charset[:40] + "…"
        raise ValueError(
            f"The body's charset {shown!r} is not one the import reads: "
            "utf-8, windows-1252 or latin-1."
        )
    return _CHARSETS[name]


def _choice(value_of: Callable[[str], str | None], name: str, allowed: dict[str, str]) -> str:
    text = (value_of(name) or "").strip().lower()
    if not text or text == "auto":
        return ""
    if text not in allowed:
        raise ValueError(f"{name} must be one of: auto, {', '.join(allowed)}.")
    return allowed[text]


def _flag(value_of: Callable[[str], str | None], name: str) -> bool:
    text = (value_of(name) or "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be 1 or 0.")
    return text in _TRUE


def chosen_mapping(value_of: Callable[[str], str | None], fields: int) -> dict[int, str]:
    """The mapping chosen on the page: `map_<n>` = a column (or "-" to leave it out)."""
    chosen: dict[int, str] = {}
    for position in range(1, fields + 1):
        value = value_of(f"map_{position}")
        if value:
            chosen[position] = value.strip()
    return chosen
