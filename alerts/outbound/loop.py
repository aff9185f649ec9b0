"""The loop every outbox deliverer runs: deliver what is due, then sleep until woken or polled.

Incident messages (missed heartbeats included) and platform-event messages are each an outbox in Postgres;
their deliverers differ in what a round does (`deliver_due`), not in how they are driven. Woken in
process by `wake()` (whoever just committed a row) and across processes by NOTIFY on
`storage.notifications.NOTIFY_CHANNEL`; polled every `poll_interval` seconds anyway, so a missed
wake-up only delays, never loses.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import asyncpg
import structlog

from storage import notifications
from storage.database import DATABASE_ERRORS, Listener

log = structlog.get_logger(__name__)


class OutboxLoop:
    poll_interval: float = 1.0
    name: str = "outbox"  # the task's name and the log events' prefix

    def __init__(self, listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None):
        self._wake = asyncio.Event()
        self._listener = Listener(listen, notifications.NOTIFY_CHANNEL, lambda payload: self.wake())
        self._task: asyncio.Task | None = None

    async def deliver_due(self) -> int:
        """One round; returns how many rows it handled (0: nothing was due)."""
        raise NotImplementedError

    def wake(self) -> None:
        """Something was enqueued: deliver now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        await self._listener.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._listener.ensure()
                while await self.deliver_due() > 0:
                    pass
            except DATABASE_ERRORS as exc:
                log.warning(f"{self.name}.database_unavailable", error=f"{type(exc).__name__}: {exc}")
            except Exception:
                log.exception(f"{self.name}.error")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass
