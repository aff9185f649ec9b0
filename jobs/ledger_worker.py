"""Retries ledger rows that failed or got stuck, with backoff, up to a limit.

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

Processor = Callable[[Envelope], Awaitable[None]]


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

    async def _process(self, row: Envelope) -> None:
        bound = log.bind(source=row.source, envelope_id=row.envelope_id, attempt=row.attempts)
        try:
            await self._processors[row.source](row)
        except Exception as exc:  # a processor's failure is data for the ledger, not a crash
            retry_at = await envelopes.mark_failed(self.pool, row.id, _describe(exc), max_attempts=self.max_attempts)
            self._on_outcome(row.source, "failed")
            bound.warning("ledger.retry_failed", error=_describe(exc), next_attempt_at=retry_at)
        else:
            await envelopes.mark_processed(self.pool, row.id)
            self._on_outcome(row.source, "processed")
            bound.info("ledger.retry_processed")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
