"""Waits on what a page shows after an action, instead of reading it at once: a swap or an
htmx navigation may still be under way when the action returns."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect


async def url_has(page: Page, *present: str, absent: tuple[str, ...] = ()) -> None:
    """Wait until the page's address holds every `present` text and none of `absent`."""
    pattern = "^" + "".join(f"(?!.*{re.escape(a)})" for a in absent)
    pattern += "".join(f"(?=.*{re.escape(p)})" for p in present)
    await expect(page).to_have_url(re.compile(pattern))
