"""Demo data: realistic users, catalog, orders and items generated as COPY text, and a steady
trickle of simulated orders for the live dashboard."""
