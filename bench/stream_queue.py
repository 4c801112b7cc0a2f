"""A live stream's queue, per delivery: admin.live.mailbox.Mailbox vs asyncio.Queue, same run.

    flock /tmp/bench.lock python bench/stream_queue.py [--clients 1000] [--releases 2000]

Each of `--clients` readers waits on its queue as an open stream does; each release puts one
item into every queue (as Hub.broadcast does), then lets the readers take it. Prints the CPU
time per delivery (put, wake, get) of each, alternating three times, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from admin.live.mailbox import Mailbox


async def per_delivery(factory: Callable[[int], Any], clients: int, releases: int) -> float:
    boxes = [factory(256) for _ in range(clients)]
    got = 0

    async def reader(box: Any) -> None:
        nonlocal got
        while await box.get() is not None:
            got += 1

    readers = [asyncio.create_task(reader(box)) for box in boxes]
    await asyncio.sleep(0)
    started = time.process_time()
    for n in range(releases):
        for box in boxes:
            box.put_nowait(n)
        await asyncio.sleep(0)
    for box in boxes:
        box.put_nowait(None)
    await asyncio.gather(*readers)
    assert got == clients * releases
    return (time.process_time() - started) / (clients * releases)


async def main(clients: int, releases: int) -> None:
    for _ in range(3):
        queue = await per_delivery(asyncio.Queue, clients, releases)
        mailbox = await per_delivery(Mailbox, clients, releases)
        print(
            f"{clients} readers: asyncio.Queue {queue * 1e6:.2f} µs per delivery,"
            f" Mailbox {mailbox * 1e6:.2f} µs; ratio {mailbox / queue:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--releases", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.clients, args.releases))
