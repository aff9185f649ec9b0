"""SQL for the notification outbox: incident thread replies and one-off posts.

A notification is written in the same transaction as the change that causes it (an escalation, a
note, a recovery, a lowered severity), so the change and "Slack must be told" commit together or
not at all. The incident notifier claims due rows (SKIP LOCKED, with a lease so a crashed
deliverer's rows come back) and records what Slack answered. Heartbeat alerts used to have rows
here of their own; they are incidents now (alerts.heartbeat_incidents).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

import asyncpg

from storage.workers import claimer_dead

# Delivered by the incident notifier: a thread reply to an incident message, or a fresh post.
INCIDENT_KINDS = ("incident_reply", "incident_post")
# NOTIFY'd (in the enqueuing transaction, so at commit) to wake a notifier in another process.
NOTIFY_CHANNEL = "pulser_notifications"

_COLUMNS = "id, kind, app_id, incident_id, payload, status, attempts, last_error, created_at, slack_channel, slack_ts"


@dataclass(frozen=True)
class NewNotification:
    kind: str  # incident_reply | incident_post
    app_id: int | None
    payload: dict[str, Any]
    incident_id: int | None = None


async def enqueue_notifications(conn: asyncpg.Connection, rows: Sequence[NewNotification]) -> None:
    """One statement for all of a batch's notifications; pending, due now."""
    if not rows:
        return
    # jsonb goes over the wire as text: the pool's codec covers jsonb values, not jsonb[] arrays.
    await conn.execute(
        """
        INSERT INTO notifications (kind, app_id, payload, incident_id)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]::jsonb[], $4::bigint[])
        """,
        [r.kind for r in rows],
        [r.app_id for r in rows],
        [json.dumps(r.payload, separators=(",", ":")) for r in rows],
        [r.incident_id for r in rows],
    )
    await announce(conn)


async def announce(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Tell notifiers in every process that rows are due (delivered when the transaction commits)."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


async def claim_due(
    pool: asyncpg.Pool,
    *,
    kinds: Sequence[str],
    limit: int = 100,
    lease: timedelta = timedelta(seconds=60),
    worker: str | None = None,
) -> list[dict]:
    """Claim due rows of the given kinds: each notifier delivers only what it knows how to render.
    A row claimed by a process that has died is due at once, whatever its lease says."""
    rows = await pool.fetch(
        f"""
        UPDATE notifications
           SET attempts = attempts + 1, next_attempt_at = now() + $2::interval, claimed_by = $4
         WHERE id IN (
               SELECT id FROM notifications
                WHERE status = 'pending' AND (next_attempt_at <= now() OR {claimer_dead("claimed_by")})
                  AND kind = ANY($3::text[])
                ORDER BY id
                LIMIT $1
                  FOR UPDATE SKIP LOCKED)
        RETURNING {_COLUMNS}
        """,
        limit,
        lease,
        list(kinds),
        worker,
    )
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def mark_sent(pool: asyncpg.Pool, notification_id: int, *, channel: str | None, ts: str | None) -> None:
    await pool.execute(
        "UPDATE notifications SET status = 'sent', sent_at = now(), slack_channel = $2, slack_ts = $3, last_error = NULL WHERE id = $1",
        notification_id,
        channel,
        ts,
    )


async def mark_suppressed(pool: asyncpg.Pool, notification_id: int, reason: str) -> None:
    await pool.execute(
        "UPDATE notifications SET status = 'suppressed', sent_at = now(), last_error = $2 WHERE id = $1",
        notification_id,
        reason,
    )


async def mark_failed(pool: asyncpg.Pool, notification_id: int, error: str) -> None:
    """Give up at once: an error no retry can fix (the channel is gone, the token revoked)."""
    await pool.execute(
        "UPDATE notifications SET status = 'failed', last_error = left($2, 2000) WHERE id = $1",
        notification_id,
        error,
    )


async def mark_retry(
    pool: asyncpg.Pool,
    notification_id: int,
    error: str,
    *,
    max_attempts: int,
    wait: timedelta,
    count_attempt: bool = True,
) -> bool:
    """Schedule another try `wait` from now (the caller's backoff, or Slack's Retry-After); False
    once given up. `count_attempt=False` is for faults that are not this row's (a rate limit,
    Slack refusing the token while it is rotated): the row waits, its attempts are given back, and
    it is never given up for them."""
    status = await pool.fetchval(
        """
        UPDATE notifications
           SET last_error = left($2, 2000), claimed_by = NULL,
               attempts = CASE WHEN $5 THEN attempts ELSE GREATEST(attempts - 1, 0) END,
               status = CASE WHEN $5 AND attempts >= $3 THEN 'failed' ELSE 'pending' END,
               next_attempt_at = now() + $4::interval
         WHERE id = $1
        RETURNING status
        """,
        notification_id,
        error,
        max_attempts,
        wait,
        count_attempt,
    )
    return status == "pending"


async def get_notification(pool: asyncpg.Pool, notification_id: int) -> dict | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM notifications WHERE id = $1", notification_id)
    return dict(row) if row else None


async def status_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY status")
    counts = {s: 0 for s in ("pending", "sent", "suppressed", "failed")}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def last_delivery(pool: asyncpg.Pool) -> datetime | None:
    return await pool.fetchval("SELECT max(sent_at) FROM notifications WHERE status = 'sent'")
