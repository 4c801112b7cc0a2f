"""axe-core for the browser tests: the npm package's tarball, fetched once into a cache
directory and checked against the registry's integrity value, without node or npm."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import Page

VERSION = "4.10.2"
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
# dist.integrity of https://registry.npmjs.org/axe-core/4.10.2
INTEGRITY = (
    "sha512-"
    "RE3mdQ7P3FRSe7eqCWoeQ/Z9QXrtniSjp1wUjt5nRC3WIpz5rSCve6o3fsZ2aCpJtrZjSZgjwXAoTO5k4tEI0w=="
)
CONTRAST_JS = Path(__file__).parent / "e2e" / "contrast.js"


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "shop-admin-tests"


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def axe_source() -> str:
    """axe.min.js of the pinned version; downloaded on first use, refused if it differs."""
    target = cache_dir() / f"axe-core-{VERSION}.min.js"
    if target.exists():
        return target.read_text(encoding="utf-8")
    with urllib.request.urlopen(TARBALL, timeout=60) as response:
        data = response.read()
    found = integrity_of(data)
    if found != INTEGRITY:
        raise RuntimeError(f"axe-core tarball integrity mismatch: {found} != {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None
        source = member.read().decode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_text(source, encoding="utf-8")
    partial.replace(target)
    return source


async def violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe's violations of the page as it is now (WCAG 2.x A and AA rules, best practices)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated over the DevTools protocol: the page's CSP does not apply to it
        await page.evaluate(source)
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "),
                                                   summary: n.failureSummary}))}));
        }"""
    )
    return found


async def weak_borders(page: Page) -> list[str]:
    """Form controls and table rules whose edge is under 3:1 against what is behind them
    (WCAG 1.4.11, which axe does not check)."""
    found: list[str] = await page.evaluate(CONTRAST_JS.read_text(encoding="utf-8"))
    return found
