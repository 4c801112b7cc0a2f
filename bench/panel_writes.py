"""The panel's own writes over HTTP, for bench/capture_cost.py: logged-in keep-alive clients
doing what staff do, each write after the page or row it is made from (its CSRF token and
the record's current version come from there).

- a user's full name changed in the list's inline editor (GET the edit row, POST it back);
- a product's stock changed in its edit form (GET /products/N/edit, POST the form);
- an order's status set with the record page's quick form (GET /orders/N, POST /status);
- a category created with its form and deleted again (POST /categories, POST .../delete).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tests.browser_forms import form_dict

LOCATION = re.compile(rb"\r\nlocation: ([^\r]*)", re.IGNORECASE)
LENGTH = re.compile(rb"\r\ncontent-length: (\d+)", re.IGNORECASE)
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")


class PanelClient:
    """A minimal HTTP/1.1 keep-alive client (GET and form POST): keeps the load generator's
    CPU small on a machine the server shares."""

    def __init__(self, port: int, cookie: str, csrf: str) -> None:
        self.port, self.cookie, self.csrf = port, cookie, csrf
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, form: dict[str, str] | None = None, hx: bool = False
    ) -> tuple[int, bytes, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        body = urlencode(form).encode() if form is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Cookie: {self.cookie}\r\nAccept: text/html\r\n"
            + ("HX-Request: true\r\n" if hx else "")
            + (
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nX-CSRF-Token: {self.csrf}\r\n"
                if form is not None
                else ""
            )
            + "\r\n"
        )
        self.writer.write(head.encode() + body)
        response = await self.reader.readuntil(b"\r\n\r\n")
        status = int(response.split(b" ", 2)[1])
        length = LENGTH.search(response)
        if length is None:
            raise RuntimeError(f"{method} {path}: a response without Content-Length")
        return status, response, await self.reader.readexactly(int(length.group(1)))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Ids:
    users: list[int]
    products: list[int]
    orders: list[int]


@dataclass
class Tally:
    writes: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def saw(self, what: str, status: int, expected: int) -> None:
        self.statuses[f"{what} {status}"] += 1
        if status == expected:
            self.writes += 1


async def _user_inline(client: PanelClient, rng: random.Random, ids: Ids, tally: Tally) -> None:
    key = rng.choice(ids.users)
    status, _, editor = await client.request("GET", f"/users/{key}/inline", hx=True)
    if status != 200:
        tally.saw("user inline form", status, 200)
        return
    form = form_dict(editor.decode(), None)
    form["full_name"] = f"Name {rng.randrange(10**9)}"
    status, _, _ = await client.request("POST", f"/users/{key}/inline", form, hx=True)
    tally.saw("user inline save", status, 200)


async def _product_stock(client: PanelClient, rng: random.Random, ids: Ids, tally: Tally) -> None:
    key = rng.choice(ids.products)
    status, _, page = await client.request("GET", f"/products/{key}/edit")
    if status != 200:
        tally.saw("product form", status, 200)
        return
    form = form_dict(page.decode())
    form["stock"] = str(rng.randrange(1000))
    status, _, _ = await client.request("POST", f"/products/{key}", form)
    tally.saw("product save", status, 303)


async def _order_status(client: PanelClient, rng: random.Random, ids: Ids, tally: Tally) -> None:
    key = rng.choice(ids.orders)
    status, _, page = await client.request("GET", f"/orders/{key}")
    if status != 200:
        tally.saw("order page", status, 200)
        return
    form = form_dict(page.decode(), "quick-form")
    form["status"] = rng.choice([s for s in STATUSES if s != form.get("status")])
    status, _, _ = await client.request("POST", f"/orders/{key}/status", form)
    tally.saw("order status", status, 303)


async def _category(client: PanelClient, rng: random.Random, ids: Ids, tally: Tally) -> None:
    form = {"name": f"Bench {rng.randrange(10**9)}", "parent_id": ""}
    status, head, _ = await client.request("POST", "/categories", form)
    tally.saw("category create", status, 303)
    found = LOCATION.search(head)
    if status != 303 or found is None:
        return
    record = found.group(1).decode().split("?")[0]
    status, _, _ = await client.request("POST", f"{record}/delete", {})
    tally.saw("category delete", status, 303)


MIX = ((0.3, _user_inline), (0.55, _product_stock), (0.8, _order_status), (1.0, _category))


async def panel_mix(
    port: int, cookie: str, csrf: str, ids: Ids, seconds: float, clients: int = 8, seed: int = 0
) -> tuple[Tally, float]:
    """`clients` keep-alive clients writing for `seconds`: the tally and the time taken."""
    tally = Tally()
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        client = PanelClient(port, cookie, csrf)
        try:
            while time.perf_counter() < stop:
                pick = rng.random()
                for upto, write in MIX:
                    if pick < upto:
                        await write(client, rng, ids, tally)
                        break
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return tally, time.perf_counter() - started
