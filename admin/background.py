"""A process-wide job running in a task of its own from start() until stop()."""

from __future__ import annotations

import asyncio
import contextlib


class Background:
    """Subclasses write `_run()`, usually a loop; stop() cancels it and waits for it."""

    task_name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError
