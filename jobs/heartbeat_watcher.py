"""Marks applications down the moment their deadline (due + grace) passes, and opens their incidents.

The watcher sleeps until the earliest deadline (never longer than HEARTBEAT_CHECK_INTERVAL), and
wakes early when a deadline earlier than its plan appears: heartbeat writers and edits send
`NOTIFY pulser_deadlines, '<epoch>'`, in this process or any other. Deadlines are compared with
the database's clock, so a skewed application-server clock cannot alert early or late.

Claiming is a conditional update in storage (`up` → `down`, SKIP LOCKED), so any number of
watchers in any number of processes alert each miss exactly once. Each claimed app's missed-heartbeat
alert goes through the alert pipeline in the claim's own transaction: a crash can never leave an app
down without its incident. Claims are made `batch_size` apps at a time, so when thousands of apps
miss one deadline together the first incidents commit (and reach Slack) while later ones are opened.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg
import structlog

from alerts import heartbeat_incidents
from alerts.heartbeat_incidents import ClaimedApp
from alerts.pipeline import AlertPipeline, IngestResult
from storage import applications
from storage.database import DATABASE_ERRORS, Listener

log = structlog.get_logger(__name__)


class HeartbeatWatcher:
    batch_size: int = 100
    # A claim whose transaction Postgres aborted to break a deadlock (two transactions folding
    # incidents into the same storm digests in opposite order) is simply made again at once.
    deadlock_retries: int = 3

    def __init__(
        self,
        pool: asyncpg.Pool,
        pipeline: AlertPipeline,
        *,
        max_sleep: float,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        on_claimed: Callable[[int], None] | None = None,
    ):
        self.pool = pool
        self.pipeline = pipeline
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
        """Claim every overdue app now and open its incident; returns how many went down."""
        claimed = 0
        while True:
            count = await self._claim_batch()
            claimed += count
            if count < self.batch_size:
                break
        if claimed:
            self.claimed_total += claimed
            self.on_claimed(claimed)
        return claimed

    async def _claim_batch(self) -> int:
        for attempt in range(self.deadlock_retries + 1):
            try:
                return await self._claim_and_open()
            except asyncpg.DeadlockDetectedError:
                if attempt == self.deadlock_retries:
                    raise
                log.warning("heartbeat_watcher.deadlock_retried", attempt=attempt + 1)
        return 0

    async def _claim_and_open(self) -> int:
        """One transaction: mark up to `batch_size` overdue apps down and ingest their alerts."""
        results: list[IngestResult] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await applications.claim_overdue(conn, limit=self.batch_size)
            if not rows:
                return 0
            async with self.pipeline.reading_once(conn, rows[0]["claimed_at"]):
                for row in rows:
                    app = ClaimedApp.from_row(row)
                    alert = heartbeat_incidents.missed_alert(
                        app, deadline=app.next_deadline, last_heartbeat=app.last_heartbeat, now=app.claimed_at
                    )
                    result = await self.pipeline.ingest_in(conn, alert, now=app.claimed_at, default_channel=app.channel)
                    await heartbeat_incidents.after_firing(conn, result, now=app.claimed_at)
                    results.append(result)
                    log.info("heartbeat.missed", app_id=app.id, app=app.name, deadline=app.next_deadline,
                             incident_id=result.incident_id, outcome=result.outcome)
        self.pipeline.after_commit(results)
        return len(rows)

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
