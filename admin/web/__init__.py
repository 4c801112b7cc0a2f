"""HTTP plumbing every page shares: bodies read within limits, forms, errors, security
headers, HTMX fragments or pages, the template environment and the navigation."""
