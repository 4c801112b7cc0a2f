"""Orders: what customers bought; events record every change (a trigger writes them)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from admin.declarations.rules import amount_between
from admin.declarations.users import SEARCH_EXPRESSION as USER_SEARCH_EXPRESSION
from admin.resources.query import like_pattern
from admin.resources.spec import BulkAction, Field, Filter, FilterKind, ParamFn, Resource, Search

MAX_TOTAL = Decimal("9999999999.99")
MAX_ORDER_ID = 2**63 - 1
HISTORY_EVENTS = 200


def search(text: str, param: ParamFn) -> str:
    """An order id, or its customer's username or email (through the users' trigram index)."""
    if text.isascii() and text.isdigit():
        number = int(text)
        return f"id = {param(number)}" if number <= MAX_ORDER_ID else "false"
    # Correlated, so that a list walking orders in order probes each order's customer (and
    # stops at a full page) instead of first collecting every matching customer; the
    # trigram index narrows the users, the recheck keeps the match to username and email.
    pattern = param(like_pattern(text))
    return (
        "EXISTS (SELECT 1 FROM users"
        f" WHERE users.id = user_id AND {USER_SEARCH_EXPRESSION} ILIKE {pattern}"
        f" AND (users.username ILIKE {pattern} OR users.email ILIKE {pattern}))"
    )


async def history(conn: asyncpg.Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    """The order's events, newest first, for its page."""
    events = await conn.fetch(
        "SELECT id, kind, payload, created_at FROM order_events"
        " WHERE order_id = $1 ORDER BY id DESC LIMIT $2",
        row["id"],
        HISTORY_EVENTS,
    )
    return {"events": events}


ORDERS = Resource(
    table="orders",
    label="order",
    plural="orders",
    list_columns=("id", "user_id", "status", "total", "created_at", "updated_at"),
    form_columns=("status", "total"),
    fields={
        "user_id": Field(label="User"),
        "total": Field(cell="money", validate=amount_between(Decimal(0), MAX_TOTAL)),
        "created_at": Field(label="Created"),
        "updated_at": Field(label="Updated"),
    },
    search=Search(
        condition=search,
        placeholder="Order id, or customer username / email",
        # a customer's name matches many orders, and the planner cannot tell how many
        in_order_first=True,
    ),
    filters=(
        Filter("status", "status", FilterKind.CHOICE, "Status"),
        Filter("user", "user_id", FilterKind.EQUALS, "User id"),
        Filter("created_from", "created_at", FilterKind.DATE_FROM, "From"),
        Filter("created_to", "created_at", FilterKind.DATE_TO, "To"),
    ),
    bulk_actions=(BulkAction("set_status", "Set status", column="status"),),
    default_sort="id",
    default_dir="desc",
    quick_field="status",
    extra_context=history,
)
