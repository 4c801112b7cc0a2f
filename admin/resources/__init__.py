"""Resources: every table the panel administers, introspected, refined by a declaration and
served by one generic engine (lists, records, forms, bulk actions, history)."""
