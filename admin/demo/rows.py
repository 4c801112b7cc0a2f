"""Fake but plausible users, orders and order items, generated as COPY text in fixed-size chunks."""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
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
# lines per order and units per line: most baskets are small
ITEMS_PER_ORDER = (1, 2, 3, 4, 5)
ITEM_WEIGHTS = (40, 27, 17, 10, 6)
QUANTITIES = (1, 2, 3, 4, 5)
QUANTITY_WEIGHTS = (76, 15, 5, 2, 2)
MEAN_ITEMS_PER_ORDER = sum(n * w for n, w in zip(ITEMS_PER_ORDER, ITEM_WEIGHTS, strict=True)) / sum(
    ITEM_WEIGHTS
)

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


def timestamp_formatter(now: float) -> Callable[[float], str]:
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
        stamp = timestamp_formatter(now)
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
class PriceList:
    """Products that orders may hold: ids, prices in cents, creation times (epoch seconds).

    Sorted by creation time, oldest first, so that the products an order placed at time t
    could hold are a prefix of the list.
    """

    ids: Sequence[int]
    cents: Sequence[int]
    created: Sequence[float]

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.cents) == len(self.created):
            raise ValueError("ids, cents and created must have one entry per product")


@dataclass(frozen=True)
class OrderChunks:
    """COPY text for orders with ids first_id, first_id+1, ... and, beside each chunk, their items.

    `user_id_at(i)` maps a draw in 0..user_count-1 to a user id. An order holds 1 to 5
    distinct products that existed when it was placed (unless fewer than it needs did), each
    at its price; the order's total is the sum of its items.
    """

    first_id: int
    count: int
    user_count: int
    user_id_at: Callable[[int], int]
    products: PriceList
    chunk_rows: int = 20_000
    seed: int | None = None
    now: float | None = None

    COLUMNS = ("id", "user_id", "status", "total", "created_at", "updated_at")
    ITEM_COLUMNS = ("order_id", "product_id", "quantity", "unit_price", "created_at", "updated_at")

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """(orders, their items) per chunk of orders."""
        if not self.products.ids:
            raise ValueError("orders need at least one product")
        rng = random.Random(self.seed)
        now = self.now if self.now is not None else datetime.now(UTC).timestamp()
        stamp = timestamp_formatter(now)
        rand, randbelow, choices, sample = rng.random, rng.randrange, rng.choices, rng.sample
        user_id_at, users = self.user_id_at, self.user_count
        product_ids, product_cents = self.products.ids, self.products.cents
        created_at = self.products.created
        max_items = min(len(ITEMS_PER_ORDER), len(product_ids))
        line_counts, line_weights = ITEMS_PER_ORDER[:max_items], ITEM_WEIGHTS[:max_items]
        end = self.first_id + self.count
        for start in range(self.first_id, end, self.chunk_rows):
            size = min(self.chunk_rows, end - start)
            status_column = choices(ORDER_STATUSES, ORDER_STATUS_WEIGHTS, k=size)
            line_column = choices(line_counts, line_weights, k=size)
            quantity_column = choices(QUANTITIES, QUANTITY_WEIGHTS, k=sum(line_column))
            orders, items = [], []
            quantities = iter(quantity_column)
            for order_id, status, lines in zip(
                range(start, start + size), status_column, line_column, strict=True
            ):
                # the older an order, the more likely it moved on; pending ones are recent
                age = rand() * (3 * 24 * 3600 if status == "pending" else TWO_YEARS)
                changed = 0.0 if status == "pending" else rand() * min(age, 14 * 24 * 3600)
                created, updated = stamp(age), stamp(age - changed)
                on_sale = max(bisect_right(created_at, now - age), lines)
                total = 0
                # distinct products: one line per product, as a basket shows them
                for index in sample(range(on_sale), lines):
                    quantity, cents = next(quantities), product_cents[index]
                    total += quantity * cents
                    items.append(
                        f"{order_id}\t{product_ids[index]}\t{quantity}"
                        f"\t{cents // 100}.{cents % 100:02d}\t{created}\t{created}\n"
                    )
                orders.append(
                    f"{order_id}\t{user_id_at(randbelow(users))}\t{status}"
                    f"\t{total // 100}.{total % 100:02d}\t{created}\t{updated}\n"
                )
            yield "".join(orders).encode(), "".join(items).encode()
