"""A small server-sent events reader over httpx, for tests against a live server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass
class Message:
    event: str
    data: str
    id: str | None
    retry: int | None


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Parse the text/event-stream body; comments (heartbeats) are skipped."""
    event, data, event_id, retry = "message", [], None, None
    async for line in response.aiter_lines():
        if line == "":
            if data or retry is not None:
                yield Message(event=event, data="\n".join(data), id=event_id, retry=retry)
            event, data, event_id, retry = "message", [], None, None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
        elif name == "retry":
            retry = int(value)


@dataclass
class Follower:
    """Follows /events like a browser: remembers the last id the server sent (an order,
    or the position the stream opened at) and resumes from it, so a reconnect before the
    first order still resumes from where the client started, never from "now"."""

    http: httpx.AsyncClient
    query: str = ""
    after: int | None = None
    ids: list[int] = field(default_factory=list)
    path: str = "/events"
    event: str = "order"
    # the data of every `event` message, in order
    data: list[str] = field(default_factory=list)
    connects: int = 0
    reloads: int = 0
    _task: asyncio.Task[None] | None = None
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_id(self) -> int | None:
        return self.after

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def wait_open(self, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            await self._open.wait()

    async def _follow(self) -> None:
        while True:
            headers = {"Accept": "text/event-stream"}
            if self.after is not None:
                headers["Last-Event-ID"] = str(self.after)
            try:
                async with self.http.stream(
                    "GET", self.path + self.query, headers=headers, timeout=None
                ) as response:
                    if response.status_code != 200:
                        await asyncio.sleep(0.2)
                        continue
                    self.connects += 1
                    async for message in messages(response):
                        if message.id is None:
                            continue
                        # open once the stream said where it starts (its first frame)
                        self._open.set()
                        if message.event == self.event:
                            self.ids.append(int(message.id))
                            self.data.append(message.data)
                        elif message.event == "reload":
                            self.reloads += 1
                        self.after = int(message.id)
            except httpx.HTTPError:
                pass
            self._open.clear()
            await asyncio.sleep(0.1)

    async def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._open.clear()

    async def resume(self) -> None:
        await self.disconnect()
        self.start()
        await self.wait_open()

    async def wait_for(self, expected: list[int], seconds: float = 20.0) -> None:
        """Wait until this follower holds at least as many ids as expected."""
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.ids) < len(expected):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
