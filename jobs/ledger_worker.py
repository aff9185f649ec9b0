"""Processes ledger rows: fresh ones at once (`process_soon`), failed or stuck ones with backoff.

Each source registers a processor (an async function of one Envelope). A processor that returns
marks the row processed; one that raises marks it failed, and `mark_failed` schedules the next
try (exponential backoff) or gives up after `max_attempts`, leaving the row visible as failed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg
import structlog

from storage import envelopes
from storage.database import DATABASE_ERRORS
from storage.envelopes import Envelope

log = structlog.get_logger(__name__)

# A processor may mark the row processed itself, in the transaction of its effects (exactly-once);
# it returns True then, and the worker skips its own mark.
Processor = Callable[[Envelope], Awaitable[bool | None]]


def worker_name() -> str:
    """Identifies this process in `claimed_by`, so a release at shutdown touches only its rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LedgerWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_attempts: int,
        batch_size: int = 20,
        lease: timedelta = timedelta(minutes=5),
        name: str | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
    ):
        self.pool = pool
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.lease = lease
        self.name = name or worker_name()
        self._processors: dict[str, Processor] = {}
        self._on_outcome = on_outcome or (lambda source, outcome: None)
        self._lock = asyncio.Lock()
        self._inflight: dict[int, asyncio.Task] = {}
        # Fresh deliveries processed at once, this many at a time; the rest wait their turn.
        self._slots = asyncio.Semaphore(16)

    def register(self, source: str, processor: Processor) -> None:
        self._processors[source] = processor

    @property
    def sources(self) -> list[str]:
        return sorted(self._processors)

    async def run_once(self) -> int:
        """Claim and process one batch of due rows; returns how many were handled."""
        if not self._processors:
            return 0
        async with self._lock:  # one pass at a time in this process; other processes use SKIP LOCKED
            try:
                await envelopes.abandon_exhausted(self.pool, max_attempts=self.max_attempts)
                due = await envelopes.claim_due(
                    self.pool,
                    worker=self.name,
                    sources=self.sources,
                    limit=self.batch_size,
                    max_attempts=self.max_attempts,
                    lease=self.lease,
                )
            except DATABASE_ERRORS as exc:
                log.warning("ledger.worker_database_unavailable", error=f"{type(exc).__name__}: {exc}")
                return 0
            for row in due:
                await self._process(row)
            return len(due)

    def process_soon(self, envelope: int | Envelope) -> None:
        """Process a row this process just recorded (and holds the lease on), in the background:
        the sender already has its 202. If we die first, the lease runs out and `run_once` retries.
        Given the row itself, nothing is read back; given its id, it is fetched first."""
        pk = envelope if isinstance(envelope, int) else envelope.id
        task = asyncio.create_task(self._process_fresh(envelope), name=f"envelope-{pk}")
        self._inflight[pk] = task
        task.add_done_callback(lambda _: self._inflight.pop(pk, None))

    async def _process_fresh(self, envelope: int | Envelope) -> None:
        async with self._slots:
            row: Envelope | None
            if isinstance(envelope, int):
                try:
                    row = await envelopes.get_envelope_by_pk(self.pool, envelope)
                except DATABASE_ERRORS as exc:
                    log.warning("ledger.fresh_unavailable", envelope_pk=envelope, error=_describe(exc))
                    return  # the lease expires and the retry pass takes it
            else:
                row = envelope
            if row is not None and row.status != "processed" and row.source in self._processors:
                await self._process(row)

    async def drain(self, timeout: float) -> list[int]:
        """At shutdown: let in-flight fresh rows finish; return the ones that did not."""
        pending = list(self._inflight.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return [pk for pk, task in self._inflight.items() if not task.done()]

    async def _process(self, row: Envelope) -> None:
        bound = log.bind(source=row.source, envelope_id=row.envelope_id, attempt=row.attempts)
        try:
            marked = await self._processors[row.source](row)
        except Exception as exc:  # a processor's failure is data for the ledger, not a crash
            try:
                retry_at = await envelopes.mark_failed(self.pool, row.id, _describe(exc), max_attempts=self.max_attempts)
            except DATABASE_ERRORS:
                retry_at = None  # the lease runs out and the row comes back anyway
            self._on_outcome(row.source, "failed")
            bound.warning("ledger.process_failed", error=_describe(exc), next_attempt_at=retry_at)
        else:
            try:
                if not marked:
                    await envelopes.mark_processed(self.pool, row.id)
            except DATABASE_ERRORS as exc:
                bound.warning("ledger.mark_processed_failed", error=_describe(exc))
                return
            self._on_outcome(row.source, "processed")
            bound.info("ledger.processed")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
