"""Durable heartbeat writes, grouped into one transaction per batch (group commit).

Postgres commits single-row transactions on a small machine at only ~1,750/s, but writes a batched
statement at ~100k rows/s. So the HTTP handler does not write: it submits the event here and awaits
the commit of the batch that carries it, and the 200 goes out after that commit. One flusher task
takes whatever is queued (up to `max_batch`; when idle it waits for the first event and then
gathers more for at most `max_delay`) and, in one transaction, locks the apps' clocks, runs every
event through the clock rules in arrival order, and writes clocks and history back. A `/fail` (or
non-zero exit code) and a recovery go through the alert pipeline in that same transaction — the
failure opens the app's incident, the recovery resolves it — so an app's state and its incident
never disagree, whatever crashes when.

Up to `max_in_flight` batches are written at once (while one waits for Postgres, the next is
prepared), but a batch only takes its row locks after the batch before it holds its own: an app in
both waits for the first to commit and then reads its result, so each app's events apply in arrival
order. The events that arrive while batches commit form the next one, so the batch size grows with
the load instead of the latency.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

import asyncpg
import structlog

from alerts import heartbeat_incidents
from alerts.applications import effective_status
from alerts.heartbeat_rules import apply_heartbeat
from alerts.pipeline import AlertPipeline, IngestResult
from storage import applications, heartbeats
from storage.applications import AppClock
from storage.database import is_database_unavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HeartbeatEvent:
    uuid: UUID
    kind: str  # success | start | fail
    exit_code: int | None
    received_at: datetime  # server receipt time, UTC: the truth
    client_time: str | None = None  # what the client claimed; stored only
    method: str = "POST"
    remote_addr: str | None = None
    user_agent: str | None = None
    body: str | None = None
    metadata: Any = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    found: bool
    status: str | None = None  # new | up | late | down | paused, right after the event


NOT_FOUND = SubmitResult(found=False)


class HeartbeatRejected(ValueError):
    """The database refused this event's data; the rest of its batch was written."""


class WriterStopped(RuntimeError):
    """submit() after stop(): the process is shutting down."""


class HeartbeatWriter:
    # A batch Postgres aborted to break a deadlock (its incidents folding into storm digests in the
    # opposite order of another transaction's) committed nothing: it is written again at once.
    deadlock_retries: int = 3

    def __init__(
        self,
        pool: asyncpg.Pool,
        pipeline: AlertPipeline,
        *,
        max_batch: int = 500,
        max_delay: float = 0.002,
        max_in_flight: int = 2,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.pool = pool
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._on_batch = on_batch
        self._queue: list[tuple[HeartbeatEvent, asyncio.Future]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._stopping = False
        # Counters for metrics and tests: committed batches, and the events and alerts in them.
        self.batches = 0
        self.events_written = 0
        self.alerts_ingested = 0
        self.failed_batches = 0

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="heartbeat-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop. Never raises: a failed last batch fails its waiters."""
        self._stopping = True
        self._arrived.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._fail_all(WriterStopped("the heartbeat writer has stopped"))

    async def submit(self, event: HeartbeatEvent) -> SubmitResult:
        """Queue one event and wait until the batch carrying it has committed.

        Raises what the batch's transaction raised (the database is down: nothing was written).
        """
        if self._stopping or self._task is None:
            raise WriterStopped("the heartbeat writer is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._arrived.set()
        return await future

    # --- the flusher -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                if len(self._queue) < self.max_batch and not self._stopping:
                    await asyncio.sleep(self.max_delay)  # let a burst's other events join this batch
                continue
            await self._slots.acquire()  # events keep queuing meanwhile: a fuller next batch
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            locked = asyncio.Event()
            task = asyncio.create_task(self._flush(batch, locked))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
            await locked.wait()  # the next batch locks only after this one holds its rows

    def _done(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _flush(self, batch: list[tuple[HeartbeatEvent, asyncio.Future]], locked: asyncio.Event) -> None:
        """Write a batch; a failure fails its waiters, never the writer."""
        try:
            await self._write_retrying(batch, locked)
        except asyncpg.DataError as exc:
            # Data the database refuses (a NUL in a text, a lone surrogate) is one event's fault:
            # halve the batch until it is isolated, so the others still commit.
            if len(batch) > 1:
                middle = len(batch) // 2
                await self._flush(batch[:middle], locked)
                await self._flush(batch[middle:], locked)
                return
            self.failed_batches += 1
            log.warning("heartbeat_writer.event_rejected", error=f"{type(exc).__name__}: {exc}")
            self._fail(batch, HeartbeatRejected(str(exc)))
        except Exception as exc:
            self.failed_batches += 1
            if is_database_unavailable(exc):  # an outage, not a bug: no trace
                log.warning("heartbeat_writer.batch_failed", size=len(batch), error=f"{type(exc).__name__}: {exc}")
            else:
                log.exception("heartbeat_writer.batch_failed", size=len(batch))
            self._fail(batch, exc)
        finally:
            locked.set()

    async def _write_retrying(self, batch: list[tuple[HeartbeatEvent, asyncio.Future]], locked: asyncio.Event) -> None:
        for attempt in range(self.deadlock_retries + 1):
            try:
                return await self._write(batch, locked)
            except asyncpg.DeadlockDetectedError:
                if attempt == self.deadlock_retries:
                    raise
                log.warning("heartbeat_writer.deadlock_retried", size=len(batch), attempt=attempt + 1)

    async def _write(self, batch: list[tuple[HeartbeatEvent, asyncio.Future]], locked_event: asyncio.Event) -> None:
        results: list[SubmitResult] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                locked = await applications.lock_clocks(conn, list({event.uuid for event, _ in batch}))
                locked_event.set()
                clocks: dict[UUID, AppClock] = dict(locked)
                durations: dict[UUID, int] = {}
                rows: list[heartbeats.HeartbeatRow] = []
                changes: list[StateChange] = []
                for event, _ in batch:
                    clock = clocks.get(event.uuid)
                    if clock is None:
                        results.append(NOT_FOUND)
                        continue
                    effect = apply_heartbeat(clock, event.kind, event.received_at)
                    clocks[event.uuid] = effect.clock
                    if effect.duration_ms is not None:
                        durations[event.uuid] = effect.duration_ms
                    rows.append(_history_row(clock.id, event, effect.duration_ms))
                    if effect.notification is not None:
                        changes.append(StateChange(effect.notification, clock, event))
                    results.append(SubmitResult(True, _status(effect.clock, event.received_at)))

                changed = [u for u, before in locked.items() if clocks[u] != before]
                await applications.save_clocks(conn, [(clocks[u], durations.get(u)) for u in changed])
                await heartbeats.insert_heartbeats(conn, rows)
                ingested = await self._ingest(conn, changes)
                woken = [clocks[u].next_deadline for u in changed if _wakes_watcher(locked[u], clocks[u])]
                if woken:
                    await applications.notify_deadline(conn, min(woken))
            # Committed: answer now, without waiting for the connection's reset on release.
            self._committed(batch, results, written=len(rows), ingested=ingested)

    async def _ingest(self, conn: asyncpg.Connection, changes: list["StateChange"]) -> list[IngestResult]:
        """Failures open (or reopen) the app's incident, recoveries resolve it, in event order."""
        if not changes:
            return []
        apps = await applications.get_applications(conn, sorted({c.before.id for c in changes}))
        results = []
        for change in changes:
            app, at = apps.get(change.before.id), change.event.received_at
            if app is None:
                continue
            if change.kind == "heartbeat_fail":
                alert = heartbeat_incidents.failed_alert(
                    app, exit_code=change.event.exit_code, previous_heartbeat=change.before.last_heartbeat, now=at
                )
                result = await self.pipeline.ingest_in(conn, alert, now=at, default_channel=app.channel)
                await heartbeat_incidents.after_firing(conn, result, now=at)
            else:  # heartbeat_recovered
                result = await heartbeat_incidents.recover_in(
                    self.pipeline, conn, app, down_since=change.before.down_since, now=at
                )
            results.append(result)
        return results

    def _committed(
        self, batch: list[tuple[HeartbeatEvent, asyncio.Future]], results: list[SubmitResult], *, written: int,
        ingested: list[IngestResult],
    ) -> None:
        self.batches += 1
        self.events_written += written
        self.alerts_ingested += len(ingested)
        for (_, future), result in zip(batch, results):
            if not future.done():  # the client may have gone away
                future.set_result(result)
        if self._on_batch is not None:
            self._on_batch(len(batch))
        if ingested:
            self.pipeline.after_commit(ingested)  # wakes the incident notifier

    def _fail_all(self, exc: Exception) -> None:
        queued, self._queue = self._queue, []
        self._fail(queued, exc)

    @staticmethod
    def _fail(batch: list[tuple[HeartbeatEvent, asyncio.Future]], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)


def _wakes_watcher(before: AppClock, after: AppClock) -> bool:
    """Whether a watcher's plan may not include this deadline, so it must be told.

    A watcher sleeps until the earliest deadline of the apps that are `up`. A deadline it could
    sleep past is one that appears (a first heartbeat, a recovery, a resume) or moves earlier;
    steady heartbeats only move deadlines later and wake nobody. A recovered app's row still holds
    the deadline it missed, which is in the past, so "earlier than before" is no test for it.
    """
    if after.state != "up" or after.next_deadline is None:
        return False
    if before.state != "up" or before.next_deadline is None:
        return True
    return after.next_deadline < before.next_deadline


def _status(clock: AppClock, now: datetime) -> str:
    return effective_status(is_active=clock.is_active, state=clock.state, due_at=clock.due_at, now=now)


def _history_row(app_id: int, event: HeartbeatEvent, duration_ms: int | None) -> heartbeats.HeartbeatRow:
    return heartbeats.HeartbeatRow(
        app_id=app_id,
        kind=event.kind,
        exit_code=event.exit_code,
        received_at=event.received_at,
        client_time=event.client_time,
        duration_ms=duration_ms,
        method=event.method,
        remote_addr=event.remote_addr,
        user_agent=event.user_agent,
        body=event.body,
        metadata=event.metadata,
    )


@dataclass(frozen=True, slots=True)
class StateChange:
    """An event that changed whether the app is down: `kind` is heartbeat_fail or heartbeat_recovered,
    `before` the app's clock before it (the outage's start, the previous heartbeat)."""

    kind: str
    before: AppClock
    event: HeartbeatEvent
