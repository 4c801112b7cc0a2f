"""Order items: the lines of an order."""

from __future__ import annotations

from decimal import Decimal

from admin.declarations.rules import amount_between, whole_between
from admin.resources.spec import Field, Resource

ORDER_ITEMS = Resource(
    table="order_items",
    label="order item",
    plural="order items",
    list_columns=("id", "order_id", "product_id", "quantity", "unit_price"),
    form_columns=("order_id", "product_id", "quantity", "unit_price"),
    fields={
        "order_id": Field(label="Order"),
        "product_id": Field(label="Product"),
        "quantity": Field(validate=whole_between(1, 1_000_000)),
        "unit_price": Field(
            cell="money", validate=amount_between(Decimal(0), Decimal("9999999999.99"))
        ),
    },
    default_sort="id",
    default_dir="desc",
)
