"""The shop's curated tables: one declaration each, in navigation order. Every other table of
the configured schemas is served from the catalog alone (admins only)."""

from __future__ import annotations

from admin.declarations.categories import CATEGORIES
from admin.declarations.order_items import ORDER_ITEMS
from admin.declarations.orders import ORDERS
from admin.declarations.products import PRODUCTS
from admin.declarations.users import USERS
from admin.resources.spec import Resource

DECLARATIONS: tuple[Resource, ...] = (USERS, ORDERS, PRODUCTS, CATEGORIES, ORDER_ITEMS)
