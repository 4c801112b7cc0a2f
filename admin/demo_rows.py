"""Fake but plausible users and orders, generated as COPY text in fixed-size chunks."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

FIRST_NAMES = (
    "Anna", "Ben", "Chloé", "David", "Emma", "Felix", "Grace", "Hugo", "Isabel", "Jonas",
    "Karin", "Liam", "Maria", "Noah", "Olivia", "Pablo", "Quentin", "Rosa", "Sofia", "Tom",
    "Ursula", "Victor", "Wendy", "Xavier", "Yusuf", "Zoë", "José", "Łukasz", "Søren", "Ægir",
    "Björn", "Ines", "Mateo", "Chiara", "Aoife", "Niamh", "Dmitri", "Olga", "Amir", "Leila",
    "Wei", "Mei", "Hiroshi", "Yuki", "Priya", "Arjun", "Kwame", "Amara", "Lucía", "Renée",
    "François", "Jürgen", "Małgorzata", "Đorđe", "Ayşe", "Çağla", "Sven", "Ingrid", "Oskar", "Eva",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Müller", "García", "Rossi", "Dubois", "Novak", "Kowalski", "Jensen", "Nguyen",
    "Kim", "Tanaka", "Patel", "Okafor", "Silva", "Hansen", "O'Brien", "Johnson", "Brown",
    "Schröder", "Fernández", "Lefèvre", "Wójcik", "Østergaard", "Żukowski", "Horváth", "Yılmaz",  # noqa: RUF001
    "Öztürk", "Papadopoulos", "Ivanov", "Kovačević", "Andersson", "Virtanen", "Murphy", "Wang",
    "Li", "Chen", "Sato", "Singh", "Mensah", "Costa", "Martin", "Bernard", "Weber", "Becker",
    "Lindqvist", "Núñez", "Peña", "Ramírez", "Fischer", "Wagner", "Taylor", "Wilson", "Moreau",
)  # fmt: skip
DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example", "shop.example", "post.example",
)  # fmt: skip

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
ORDER_STATUS_WEIGHTS = (8, 12, 15, 58, 7)

TWO_YEARS = 2 * 365 * 24 * 3600
# Letters that NFKD does not decompose into an ASCII base letter.
_TRANSLITERATE = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss", "đ": "d", "Đ": "D",
     "ı": "i", "'": ""}  # noqa: RUF001
)  # fmt: skip


def ascii_slug(name: str) -> str:
    """'Łukasz' -> 'lukasz', 'O'Brien' -> 'obrien': the name as it may appear in a username."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATE))
    return decomposed.encode("ascii", "ignore").decode().lower()


_FIRST = [(name, ascii_slug(name)) for name in FIRST_NAMES]
_LAST = [(name, ascii_slug(name)) for name in LAST_NAMES]


def _timestamp_formatter(now: float) -> Callable[[float], str]:
    """Seconds-ago -> 'YYYY-MM-DD HH:MM:SS+00'; cached per minute, since formatting dominates."""
    cache: dict[int, str] = {}

    def format_ago(seconds_ago: float) -> str:
        at = now - seconds_ago
        minute = int(at // 60)
        prefix = cache.get(minute)
        if prefix is None:
            prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M")
            if len(cache) > 200_000:
                cache.clear()
            cache[minute] = prefix
        millis = int(at * 1000) % 60_000
        return f"{prefix}:{millis // 1000:02d}.{millis % 1000:03d}+00"

    return format_ago


@dataclass(frozen=True)
class UserChunks:
    """COPY text (tab-separated) for users with ids first_id, first_id+1, ..."""

    first_id: int
    count: int
    chunk_rows: int = 20_000
    seed: int | None = None
    now: float | None = None

    COLUMNS = ("id", "username", "email", "full_name", "is_active", "created_at", "updated_at")

    def __iter__(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        now = self.now if self.now is not None else datetime.now(UTC).timestamp()
        stamp = _timestamp_formatter(now)
        pick, rand = rng.choice, rng.random
        end = self.first_id + self.count
        for start in range(self.first_id, end, self.chunk_rows):
            lines = []
            for user_id in range(start, min(start + self.chunk_rows, end)):
                first, first_slug = pick(_FIRST)
                last, last_slug = pick(_LAST)
                # the id makes username and email unique without a lookup
                username = f"{first_slug}.{last_slug}{user_id}"
                email = f"{first_slug}.{last_slug}{user_id}@{pick(DOMAINS)}"
                active = "t" if rand() < 0.9 else "f"
                age = rand() * TWO_YEARS
                changed = age * rand() if rand() < 0.3 else age
                lines.append(
                    f"{user_id}\t{username}\t{email}\t{first} {last}\t{active}"
                    f"\t{stamp(age)}\t{stamp(changed)}\n"
                )
            yield "".join(lines).encode()


@dataclass(frozen=True)
class OrderChunks:
    """COPY text for orders of random users; `user_id_at(i)` maps a random draw to a user id."""

    count: int
    user_count: int
    user_id_at: Callable[[int], int]
    chunk_rows: int = 20_000
    seed: int | None = None
    now: float | None = None

    COLUMNS = ("user_id", "status", "total", "created_at", "updated_at")

    def __iter__(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        now = self.now if self.now is not None else datetime.now(UTC).timestamp()
        stamp = _timestamp_formatter(now)
        rand, randbelow, lognormal = rng.random, rng.randrange, rng.lognormvariate
        statuses = rng.choices
        user_id_at, users = self.user_id_at, self.user_count
        for start in range(0, self.count, self.chunk_rows):
            size = min(self.chunk_rows, self.count - start)
            status_column = statuses(ORDER_STATUSES, ORDER_STATUS_WEIGHTS, k=size)
            lines = []
            for status in status_column:
                total = min(lognormal(3.8, 0.9), 99_999.0)
                # the older an order, the more likely it moved on; pending ones are recent
                age = rand() * (3 * 24 * 3600 if status == "pending" else TWO_YEARS)
                changed = 0.0 if status == "pending" else rand() * min(age, 14 * 24 * 3600)
                lines.append(
                    f"{user_id_at(randbelow(users))}\t{status}\t{total:.2f}"
                    f"\t{stamp(age)}\t{stamp(age - changed)}\n"
                )
            yield "".join(lines).encode()
