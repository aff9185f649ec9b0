"""The envelope ledger: record-if-new, outcome marking, and claiming rows to retry.

Concurrent duplicates are the normal case (Slack redelivers, webhook senders retry), so
recording is one atomic `INSERT … ON CONFLICT DO NOTHING`: exactly one caller gets the row id,
the others get None and must not process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage.workers import claimer_dead

STATUSES = ("received", "processed", "failed")


@dataclass(frozen=True)
class Envelope:
    id: int
    source: str
    scope: str
    envelope_id: str
    kind: str
    payload: Any
    headers: dict
    status: str
    attempts: int
    last_error: str | None
    claimed_by: str | None
    next_attempt_at: datetime | None
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Envelope":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


_COLUMNS = ", ".join(Envelope.__dataclass_fields__)


async def record_envelope(
    pool: asyncpg.Pool,
    *,
    source: str,
    scope: str,
    envelope_id: str,
    kind: str,
    payload: Any,
    headers: dict | None = None,
    claimed_by: str | None = None,
    lease: timedelta = timedelta(minutes=5),
) -> int | None:
    """Insert the envelope unless its (source, scope, envelope_id) is known; returns the new id or None.

    With `claimed_by`, the caller processes the row itself now (attempt 1) and the lease marks when
    the retry worker may treat it as stuck. Without, the row is due for the worker at once.
    """
    return await pool.fetchval(
        """
        INSERT INTO envelopes (source, scope, envelope_id, kind, payload, headers,
                               attempts, claimed_by, claimed_at, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6,
                CASE WHEN $7::text IS NULL THEN 0 ELSE 1 END, $7,
                CASE WHEN $7::text IS NULL THEN NULL ELSE now() END,
                CASE WHEN $7::text IS NULL THEN now() ELSE now() + $8::interval END)
        ON CONFLICT ON CONSTRAINT envelopes_natural_key DO NOTHING
        RETURNING id
        """,
        source,
        scope,
        envelope_id,
        kind,
        payload,
        headers or {},
        claimed_by,
        lease,
    )


async def record_new_envelope(
    pool: asyncpg.Pool,
    *,
    source: str,
    envelope_id: str,
    kind: str,
    payload: Any,
    headers: dict,
    claimed_by: str,
    scope: str = "",
    lease: timedelta = timedelta(minutes=5),
) -> Envelope | None:
    """`record_envelope` for a caller that processes the row itself right away: returns the whole
    row (so nothing has to read it back), or None for a duplicate."""
    row = await pool.fetchrow(
        f"""
        INSERT INTO envelopes (source, scope, envelope_id, kind, payload, headers,
                               attempts, claimed_by, claimed_at, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, 1, $7, now(), now() + $8::interval)
        ON CONFLICT ON CONSTRAINT envelopes_natural_key DO NOTHING
        RETURNING {_COLUMNS}
        """,
        source,
        scope,
        envelope_id,
        kind,
        payload,
        headers,
        claimed_by,
        lease,
    )
    return Envelope.from_row(row) if row else None


async def mark_processed(pool: asyncpg.Pool, envelope_pk: int) -> bool:
    """Mark a row processed; False if it was already processed (nothing changes then)."""
    result = await pool.execute(
        """
        UPDATE envelopes
           SET status = 'processed', processed_at = now(), updated_at = now(),
               next_attempt_at = NULL, claimed_by = NULL, claimed_at = NULL
         WHERE id = $1 AND status <> 'processed'
        """,
        envelope_pk,
    )
    return result.endswith(" 1")


async def mark_failed(
    pool: asyncpg.Pool,
    envelope_pk: int,
    error: str,
    *,
    max_attempts: int,
    base_delay: timedelta = timedelta(seconds=10),
    max_delay: timedelta = timedelta(hours=1),
) -> datetime | None:
    """Record a failure; schedule the next try with exponential backoff, or give up (returns None).

    A row already marked processed stays processed: a late error report must not undo an outcome.
    """
    return await pool.fetchval(
        """
        UPDATE envelopes
           SET status = 'failed', last_error = left($2, 2000), updated_at = now(),
               claimed_by = NULL, claimed_at = NULL,
               next_attempt_at = CASE
                   WHEN attempts >= $3 THEN NULL
                   ELSE now() + LEAST($5::interval, $4::interval * power(2, GREATEST(attempts - 1, 0)))
               END
         WHERE id = $1 AND status <> 'processed'
        RETURNING next_attempt_at
        """,
        envelope_pk,
        error,
        max_attempts,
        base_delay,
        max_delay,
    )


async def claim_due(
    pool: asyncpg.Pool,
    *,
    worker: str,
    sources: list[str],
    limit: int,
    max_attempts: int,
    lease: timedelta = timedelta(minutes=5),
) -> list[Envelope]:
    """Claim rows the worker should (re)process: failed rows whose backoff has passed, and
    received rows whose lease ran out or whose process has died (`storage.workers`: seconds
    after a kill -9, not when the lease ends). Only `sources` this process can
    handle are claimed. SKIP LOCKED keeps two workers apart."""
    rows = await pool.fetch(
        f"""
        UPDATE envelopes
           SET status = 'received', attempts = attempts + 1, claimed_by = $1, claimed_at = now(),
               next_attempt_at = now() + $4::interval, updated_at = now()
         WHERE id IN (
               SELECT id FROM envelopes
                WHERE (next_attempt_at <= now() OR (status = 'received' AND {claimer_dead("claimed_by")}))
                  AND status <> 'processed' AND attempts < $3
                  AND source = ANY($5::text[])
                ORDER BY next_attempt_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
        RETURNING {_COLUMNS}
        """,
        worker,
        limit,
        max_attempts,
        lease,
        sources,
    )
    return [Envelope.from_row(r) for r in rows]


async def abandon_exhausted(pool: asyncpg.Pool, *, max_attempts: int) -> int:
    """Rows stuck in `received` with no attempts left become `failed` for good (visible, not retried)."""
    result = await pool.execute(
        """
        UPDATE envelopes
           SET status = 'failed', next_attempt_at = NULL, claimed_by = NULL, claimed_at = NULL,
               updated_at = now(),
               last_error = coalesce(last_error || '; ', '') || 'abandoned: no outcome after ' || attempts || ' attempts'
         WHERE next_attempt_at <= now() AND status = 'received' AND attempts >= $1
        """,
        max_attempts,
    )
    return int(result.split()[-1])


async def release_claims(pool: asyncpg.Pool, worker: str, envelope_pks: list[int]) -> int:
    """Hand unfinished rows back at shutdown so another process retries them at once."""
    if not envelope_pks:
        return 0
    result = await pool.execute(
        """
        UPDATE envelopes
           SET claimed_by = NULL, claimed_at = NULL, next_attempt_at = now(), updated_at = now()
         WHERE id = ANY($2::bigint[]) AND claimed_by = $1 AND status = 'received'
        """,
        worker,
        envelope_pks,
    )
    return int(result.split()[-1])


async def get_envelope(pool: asyncpg.Pool, *, source: str, scope: str, envelope_id: str) -> Envelope | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM envelopes WHERE source = $1 AND scope = $2 AND envelope_id = $3",
        source,
        scope,
        envelope_id,
    )
    return Envelope.from_row(row) if row else None


async def get_envelope_by_pk(pool: asyncpg.Pool, envelope_pk: int) -> Envelope | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM envelopes WHERE id = $1", envelope_pk)
    return Envelope.from_row(row) if row else None


async def count_envelopes(pool: asyncpg.Pool, *, source: str, envelope_id: str | None = None) -> int:
    if envelope_id is None:
        return await pool.fetchval("SELECT count(*) FROM envelopes WHERE source = $1", source)
    return await pool.fetchval(
        "SELECT count(*) FROM envelopes WHERE source = $1 AND envelope_id = $2", source, envelope_id
    )


async def status_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM envelopes GROUP BY status")
    counts = {status: 0 for status in STATUSES}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def delete_processed_before(pool: asyncpg.Pool, *, days: int, batch: int = 10000) -> int:
    """Drop processed rows older than `days` (in batches, so a big backlog never locks for long)."""
    total = 0
    while True:
        result = await pool.execute(
            """
            DELETE FROM envelopes WHERE id IN (
                SELECT id FROM envelopes
                 WHERE status = 'processed' AND received_at < now() - make_interval(days => $1)
                 LIMIT $2)
            """,
            days,
            batch,
        )
        deleted = int(result.split()[-1])
        total += deleted
        if deleted < batch:
            return total


async def last_received_by_source(pool: asyncpg.Pool, sources: list[str]) -> dict[str, datetime | None]:
    """When each source last delivered anything (one index probe per source)."""
    rows = await pool.fetch(
        """
        SELECT s.source, (SELECT max(received_at) FROM envelopes e WHERE e.source = s.source) AS last
          FROM unnest($1::text[]) AS s(source)
        """,
        sources,
    )
    return {r["source"]: r["last"] for r in rows}


async def source_figures(pool: asyncpg.Pool, sources: list[str], *, since: datetime) -> dict[str, dict[str, Any]]:
    """Per source: the last delivery, deliveries and failed ones since `since`, and the last
    processing error (a row whose last attempt failed), from the (source, received_at) index."""
    rows = await pool.fetch(
        """
        SELECT s.source,
               (SELECT max(received_at) FROM envelopes e WHERE e.source = s.source) AS last_delivery,
               (SELECT count(*) FROM envelopes e WHERE e.source = s.source AND e.received_at >= $2) AS deliveries,
               (SELECT count(*) FROM envelopes e
                 WHERE e.source = s.source AND e.received_at >= $2 AND e.status = 'failed') AS failed,
               (SELECT jsonb_build_object('at', e.updated_at, 'error', e.last_error) FROM envelopes e
                 WHERE e.source = s.source AND e.last_error IS NOT NULL
                 ORDER BY e.received_at DESC LIMIT 1) AS last_error
          FROM unnest($1::text[]) AS s(source)
        """,
        sources,
        since,
    )
    return {
        r["source"]: {
            "last_delivery": r["last_delivery"],
            "deliveries": r["deliveries"],
            "failed": r["failed"],
            "last_error": dict(r["last_error"]) if r["last_error"] else None,
        }
        for r in rows
    }
