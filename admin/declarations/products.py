"""Products: what the shop sells."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from admin.declarations.rules import amount_between, max_length, whole_between
from admin.display.wording import counted
from admin.resources.spec import DELETE_ACTION, BulkAction, Field, Filter, FilterKind, Resource


async def times_ordered(conn: asyncpg.Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    found = await conn.fetchrow(
        "SELECT count(*) AS lines, coalesce(sum(quantity), 0) AS units"
        " FROM order_items WHERE product_id = $1",
        row["id"],
    )
    text = f"{counted(found['lines'], 'time')}, {counted(found['units'], 'unit')}"
    return {"facts": [("Ordered", text, f"/order_items?product_id={row['id']}")]}


PRODUCTS = Resource(
    table="products",
    label="product",
    plural="products",
    list_columns=("id", "sku", "name", "price", "stock", "category_id", "active"),
    form_columns=("sku", "name", "description", "price", "stock", "category_id", "active"),
    fields={
        "sku": Field(
            label="SKU",
            placeholder="ABC-123",
            help="3 to 32 characters: A to Z, digits and '-'.",
        ),
        "name": Field(validate=max_length(200)),
        "description": Field(widget="textarea", validate=max_length(10_000)),
        "price": Field(cell="money", validate=amount_between(Decimal(0), Decimal("9999999999.99"))),
        "stock": Field(validate=whole_between(0, 2**31 - 1)),
        "category_id": Field(label="Category"),
        "active": Field(cell="active"),
    },
    filters=(Filter("active", "active", FilterKind.BOOLEAN, "Active"),),
    bulk_actions=(
        BulkAction("activate", "Activate", column="active", value=True),
        BulkAction("deactivate", "Deactivate", column="active", value=False),
        DELETE_ACTION,
    ),
    label_column="name",
)
