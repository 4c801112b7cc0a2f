"""The catalog tables refuse what the shop must never hold, whoever writes (panel, shop, psql)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

# PostgreSQL 18 reports a delete refused by ON DELETE RESTRICT as restrict_violation (23001);
# earlier versions as foreign_key_violation (23503).
DELETE_REFUSED = (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError)


async def make_order(conn: asyncpg.Connection) -> int:
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('buyer', 'buyer@example.com') RETURNING id"
    )
    return await conn.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 0) RETURNING id", user_id
    )


async def make_product(conn: asyncpg.Connection, sku: str = "MUG-001", **values: object) -> int:
    row = {"name": "Mug", "price": Decimal("9.99"), **values}
    columns = ", ".join(["sku", *row])
    placeholders = ", ".join(f"${n}" for n in range(1, len(row) + 2))
    return await conn.fetchval(
        f"INSERT INTO products ({columns}) VALUES ({placeholders}) RETURNING id",
        sku,
        *row.values(),
    )


@pytest.mark.parametrize(
    ("sku", "values"),
    [
        ("MUG-001", {"price": Decimal("-0.01")}),
        ("MUG-001", {"price": Decimal("NaN")}),
        ("MUG-001", {"stock": -1}),
        ("MUG-001", {"name": ""}),
        ("MUG-001", {"name": "   "}),
        ("MUG-001", {"name": "x" * 201}),
        ("mug-001", {}),
        ("MU", {}),
        ("M" * 33, {}),
        ("MUG 001", {}),
        ("MUG_001", {}),
    ],
)
async def test_products_refuse_bad_values(
    conn: asyncpg.Connection, sku: str, values: dict[str, object]
):
    with pytest.raises(asyncpg.CheckViolationError):
        await make_product(conn, sku, **values)
    assert await conn.fetchval("SELECT count(*) FROM products") == 0


async def test_a_product_with_good_values_gets_defaults_and_a_version_bump(
    conn: asyncpg.Connection,
):
    product_id = await make_product(conn, "A1-" + "9" * 29, price=Decimal(0))
    row = await conn.fetchrow("SELECT * FROM products WHERE id = $1", product_id)
    assert (row["stock"], row["active"], row["description"], row["version"]) == (0, True, "", 1)
    assert row["category_id"] is None
    await conn.execute("UPDATE products SET stock = 5 WHERE id = $1", product_id)
    await conn.execute("UPDATE products SET stock = 5 WHERE id = $1", product_id)
    assert await conn.fetchval("SELECT version FROM products WHERE id = $1", product_id) == 2


async def test_skus_are_unique(conn: asyncpg.Connection):
    await make_product(conn, "MUG-001")
    with pytest.raises(asyncpg.UniqueViolationError):
        await make_product(conn, "MUG-001", name="Another mug")


@pytest.mark.parametrize(
    ("quantity", "unit_price"), [(0, "1.00"), (-1, "1.00"), (1, "-1.00"), (1, "NaN")]
)
async def test_order_items_refuse_bad_quantities_and_prices(
    conn: asyncpg.Connection, quantity: int, unit_price: str
):
    order_id, product_id = await make_order(conn), await make_product(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
            " VALUES ($1, $2, $3, $4)",
            order_id,
            product_id,
            quantity,
            Decimal(unit_price),
        )


async def test_an_ordered_product_cannot_be_deleted_and_a_deleted_order_takes_its_items(
    conn: asyncpg.Connection,
):
    order_id, product_id = await make_order(conn), await make_product(conn)
    insert = (
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
        " VALUES ($1, $2, $3, $4)"
    )
    # the same product twice at two prices is allowed
    await conn.execute(insert, order_id, product_id, 2, Decimal("9.99"))
    await conn.execute(insert, order_id, product_id, 1, Decimal("4.99"))

    with pytest.raises(DELETE_REFUSED):
        await conn.execute("DELETE FROM products WHERE id = $1", product_id)
    assert await conn.fetchval("SELECT count(*) FROM products") == 1

    await conn.execute("DELETE FROM orders WHERE id = $1", order_id)
    assert await conn.fetchval("SELECT count(*) FROM order_items") == 0
    # with no order left holding it, the product may go
    await conn.execute("DELETE FROM products WHERE id = $1", product_id)


async def test_order_items_need_an_existing_order_and_product(conn: asyncpg.Connection):
    order_id, product_id = await make_order(conn), await make_product(conn)
    insert = (
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, 1, 1)"
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(insert, order_id + 1, product_id)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(insert, order_id, product_id + 1)


async def test_category_names_are_unique_among_siblings_only(conn: asyncpg.Connection):
    add = "INSERT INTO categories (name, parent_id) VALUES ($1, $2) RETURNING id"
    phones = await conn.fetchval(add, "Phones", None)
    cameras = await conn.fetchval(add, "Cameras", None)
    await conn.fetchval(add, "Accessories", phones)
    await conn.fetchval(add, "Accessories", cameras)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.fetchval(add, "accessories", phones)
    # top-level names too: NULL parents count as the same parent
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.fetchval(add, "PHONES", None)
    for bad in ("", " ", "x" * 101):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval(add, bad, None)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE categories SET parent_id = id WHERE id = $1", phones)


async def test_a_category_in_use_cannot_be_deleted(conn: asyncpg.Connection):
    add = "INSERT INTO categories (name, parent_id) VALUES ($1, $2) RETURNING id"
    home = await conn.fetchval(add, "Home", None)
    kitchen = await conn.fetchval(add, "Kitchen", home)
    await make_product(conn, category_id=kitchen)
    with pytest.raises(DELETE_REFUSED):
        await conn.execute("DELETE FROM categories WHERE id = $1", home)
    with pytest.raises(DELETE_REFUSED):
        await conn.execute("DELETE FROM categories WHERE id = $1", kitchen)
    assert await conn.fetchval("SELECT count(*) FROM categories") == 2
    await conn.execute("UPDATE categories SET name = 'Home & Garden' WHERE id = $1", home)
    assert await conn.fetchval("SELECT version FROM categories WHERE id = $1", home) == 2
