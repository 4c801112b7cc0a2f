"""A normal staff member browses while others abuse the panel: slow bodies and deep replays.

    flock /tmp/bench.lock python bench/abuse_load.py [--users 10000] [--orders 20000]

One uvicorn worker with a pool of 10. First the normal client's idle latency (sequential
keep-alive GETs of `/users` and `/orders`), then the same while 20 clients trickle POST bodies
(one byte a second: each holds its request open until the body timeout or rate limit drops
it, then starts again) and 20 clients keep reopening `/events?after=0` (a replay of the whole
history, or a "reload" once the history is deeper than the replay cap). `/healthz` is polled
throughout. Prints p50/p95 idle and under abuse, their ratio (the goal: p95 under 3x idle),
and how many health checks answered 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.csv_common import database  # noqa: E402
from bench.list_pages import KeepAliveClient, load_rows  # noqa: E402
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in  # noqa: E402
from tests.live import live_server  # noqa: E402

PATHS = ("/users", "/orders")


async def staff_session(url: str) -> tuple[str, str]:
    """A fresh logged-in session: (cookie header, CSRF token)."""
    async with httpx.AsyncClient(base_url=url) as http:
        token = await log_in(http, "bench")
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    return cookie, token


async def sample(port: int, cookie: str, seconds: float, failures: list[int]) -> list[float]:
    """Sorted latencies (ms) of sequential GETs; non-200 answers are counted in `failures`."""
    client = KeepAliveClient(port, cookie)
    times: list[float] = []
    stop = time.perf_counter() + seconds
    try:
        while time.perf_counter() < stop:
            for path in PATHS:
                started = time.perf_counter()
                status, _ = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    failures[0] += 1
    finally:
        await client.close()
    return sorted(times)


async def slow_body(port: int, cookie: str, token: str, stop: float, dropped: list[int]) -> None:
    """POST a user form one byte a second, again and again, until `stop`."""
    body = f"csrf_token={token}&username=slow&email=slow%40example.com&full_name=".encode()
    body += b"x" * 4000
    while time.perf_counter() < stop:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                (
                    f"POST /users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
            )
            for byte in body:
                if time.perf_counter() >= stop or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), 1.0):
                        dropped[0] += 1  # the server answered (408) before the body ended
                        break
        except (ConnectionError, OSError):
            dropped[0] += 1
        finally:
            writer.close()


async def replayer(url: str, cookie: str, stop: float, frames: list[int]) -> None:
    """Reopen /events?after=0 and read it for a second, again and again, until `stop`."""
    async with httpx.AsyncClient(base_url=url, headers={"Cookie": cookie}, timeout=10) as http:
        while time.perf_counter() < stop:
            try:
                async with http.stream("GET", "/events?after=0") as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.5)
                        continue
                    read_until = time.perf_counter() + 1.0
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            frames[0] += 1
                        if time.perf_counter() > read_until:
                            break
            except httpx.HTTPError:
                await asyncio.sleep(0.2)


async def health(url: str, stop: float, answers: dict[int, int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while time.perf_counter() < stop:
            try:
                status = (await http.get("/healthz")).status_code
            except httpx.HTTPError:
                status = 0
            answers[status] = answers.get(status, 0) + 1
            await asyncio.sleep(0.5)


def percentile(times: list[float], share: float) -> float:
    return times[max(0, int(len(times) * share) - 1)]


async def run(url: str, server_url: str, port: int, seconds: float, abusers: int) -> bool:
    cookie, _ = await staff_session(server_url)
    idle_failures, loaded_failures = [0], [0]
    idle = await sample(port, cookie, seconds, idle_failures)
    sessions = [await staff_session(server_url) for _ in range(abusers)]
    stop = time.perf_counter() + seconds + 8
    dropped, frames, answers = [0], [0], {}
    tasks = [asyncio.create_task(slow_body(port, c, t, stop, dropped)) for c, t in sessions]
    tasks += [asyncio.create_task(replayer(server_url, c, stop, frames)) for c, _ in sessions]
    tasks.append(asyncio.create_task(health(server_url, stop, answers)))
    await asyncio.sleep(4)  # let the slow bodies and replays pile up first
    loaded = await sample(port, cookie, seconds, loaded_failures)
    await asyncio.gather(*tasks)

    idle_p95, loaded_p95 = percentile(idle, 0.95), percentile(loaded, 0.95)
    ratio = loaded_p95 / idle_p95
    healthy = answers.get(200, 0)
    print(
        f"normal client idle:        p50 {statistics.median(idle):6.1f} ms  p95 {idle_p95:6.1f} ms"
    )
    print(
        f"under abuse:               p50 {statistics.median(loaded):6.1f} ms  "
        f"p95 {loaded_p95:6.1f} ms  ({len(loaded)} requests, {loaded_failures[0]} not 200)"
    )
    print(f"p95 ratio (goal < 3.0):    {ratio:.2f}")
    print(f"/healthz 200:              {healthy} of {sum(answers.values())} ({answers})")
    print(f"slow bodies dropped:       {dropped[0]}; replay frames read: {frames[0]}")
    conn = await asyncpg.connect(url)
    try:
        written = await conn.fetchval("SELECT count(*) FROM users WHERE username = 'slow'")
    finally:
        await conn.close()
    print(f"users written by slow bodies (must be 0): {written}")
    failed = idle_failures[0] + loaded_failures[0]
    return ratio < 3.0 and not failed and healthy == sum(answers.values()) and written == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--abusers", type=int, default=20)
    args = parser.parse_args()
    with database() as url:
        load_rows(url, args.users, args.orders)

        async def setup() -> None:
            conn = await asyncpg.connect(url)
            try:
                await create_staff(conn, "bench", "staff")
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()

        asyncio.run(setup())
        env = {"POOL_MIN_SIZE": "2", "POOL_MAX_SIZE": "10", "BODY_TIMEOUT_S": "10"}
        with live_server(url, TEST_SECRET_KEY, Path("/tmp"), extra_env=env) as server:
            port = int(server.url.rsplit(":", 1)[1])
            ok = asyncio.run(run(url, server.url, port, args.seconds, args.abusers))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
