"""Categories: a two-level tree products are filed under."""

from __future__ import annotations

from admin.declarations.rules import max_length
from admin.resources.spec import Field, Resource

CATEGORIES = Resource(
    table="categories",
    label="category",
    plural="categories",
    list_columns=("id", "name", "parent_id", "created_at"),
    form_columns=("name", "parent_id"),
    fields={
        "name": Field(validate=max_length(100)),
        "parent_id": Field(label="Parent category"),
        "created_at": Field(label="Created"),
    },
    label_column="name",
)
