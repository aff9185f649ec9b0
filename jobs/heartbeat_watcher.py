"""Marks applications down the moment their deadline (due + grace) passes, and queues the alert.

The watcher sleeps until the earliest deadline (never longer than HEARTBEAT_CHECK_INTERVAL), and
wakes early when a deadline earlier than its plan appears: heartbeat writers and edits send
`NOTIFY pulser_deadlines, '<epoch>'`, in this process or any other. Deadlines are compared with
the database's clock, so a skewed application-server clock cannot alert early or late.

Claiming is a conditional update in storage (`up` → `down`, SKIP LOCKED), so any number of
watchers in any number of processes alert each miss exactly once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg
import structlog

from storage import applications, notifications
from storage.database import DATABASE_ERRORS, Listener

log = structlog.get_logger(__name__)


class HeartbeatWatcher:
    batch_size: int = 1000

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_sleep: float,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        on_claimed: Callable[[int], None] | None = None,
    ):
        self.pool = pool
        self._listener = Listener(listen, applications.DEADLINE_CHANNEL, self._on_deadline)
        self.max_sleep = max_sleep
        self.on_claimed = on_claimed or (lambda count: None)
        self._wake = asyncio.Event()
        self._planned_wake = 0.0  # epoch seconds of the database clock
        self._task: asyncio.Task | None = None
        self.last_run: datetime | None = None
        self.claimed_total = 0

    async def start(self) -> None:
        await self._listener.ensure()
        self._task = asyncio.create_task(self._run(), name="heartbeat-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        await self._listener.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _on_deadline(self, payload: str) -> None:
        try:
            deadline = float(payload)
        except ValueError:
            return
        if deadline < self._planned_wake:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Claim every overdue app now; returns how many went down."""
        claimed = 0
        while True:
            rows = await applications.claim_overdue(self.pool, limit=self.batch_size)
            claimed += len(rows)
            for row in rows:
                log.info("heartbeat.missed", app_id=row["id"], app=row["name"], deadline=row["next_deadline"])
            if len(rows) < self.batch_size:
                break
        if claimed:
            await notifications.announce(self.pool)
            self.claimed_total += claimed
            self.on_claimed(claimed)
        return claimed

    async def _seconds_until_next_deadline(self) -> float:
        earliest, db_now = await applications.earliest_deadline(self.pool)
        if earliest is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (earliest - db_now).total_seconds()))

    async def _run(self) -> None:
        while True:
            # Until the next plan is made, any announced deadline wakes us: none slips between
            # the query below and the wait.
            self._planned_wake = float("inf")
            self._wake.clear()
            try:
                await self._listener.ensure()
                await self.run_once()
                self.last_run = datetime.now(timezone.utc)
                sleep_for = await self._seconds_until_next_deadline()
            except DATABASE_ERRORS as exc:
                log.warning("heartbeat_watcher.database_unavailable", error=f"{type(exc).__name__}: {exc}")
                sleep_for = min(self.max_sleep, 2.0)
            except Exception:
                log.exception("heartbeat_watcher.error")
                sleep_for = min(self.max_sleep, 2.0)
            # A deadline that has passed but could not be claimed (another watcher holds the row)
            # must not turn this loop into a busy spin.
            sleep_for = max(sleep_for, 0.01)
            self._planned_wake = time.time() + sleep_for
            if self._wake.is_set():
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), sleep_for)
            except asyncio.TimeoutError:
                pass
