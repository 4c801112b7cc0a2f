"""A server-rendered admin panel for a shop's PostgreSQL database."""

__version__ = "0.1.0"
