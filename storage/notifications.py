"""SQL for the notification outbox: enqueue, claim for delivery, record outcomes, alert state.

A notification is written in the same transaction as the state change that causes it (a `fail`
heartbeat, a recovery, a missed deadline), so "the app went down" and "Slack must be told" commit
together or not at all. The notifier claims due rows (SKIP LOCKED, with a lease so a crashed
deliverer's rows come back) and records what Slack answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

import asyncpg

from storage.workers import claimer_dead

ALERT_KINDS = ("heartbeat_down", "heartbeat_fail")
HEARTBEAT_KINDS = (*ALERT_KINDS, "heartbeat_recovered")
# Delivered by the incident notifier: a thread reply to an incident message, or a fresh post.
INCIDENT_KINDS = ("incident_reply", "incident_post")
# NOTIFY'd (in the enqueuing transaction, so at commit) to wake a notifier in another process.
NOTIFY_CHANNEL = "pulser_notifications"

_COLUMNS = "id, kind, app_id, incident_id, payload, status, attempts, last_error, created_at, slack_channel, slack_ts"


@dataclass(frozen=True)
class NewNotification:
    kind: str  # heartbeat_fail | heartbeat_recovered | …
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
    base_delay: timedelta = timedelta(seconds=5),
    not_before: timedelta | None = None,
    count_attempt: bool = True,
) -> bool:
    """Schedule another try with exponential backoff (capped at 10 min), but no sooner than
    `not_before` (Slack's Retry-After); False once given up. `count_attempt=False` is for faults
    that are not this row's (Slack refusing the token while it is rotated): the row waits, its
    attempts are given back, and it is never given up for them."""
    status = await pool.fetchval(
        """
        UPDATE notifications
           SET last_error = left($2, 2000), claimed_by = NULL,
               attempts = CASE WHEN $6 THEN attempts ELSE GREATEST(attempts - 1, 0) END,
               status = CASE WHEN $6 AND attempts >= $3 THEN 'failed' ELSE 'pending' END,
               next_attempt_at = now() + CASE
                   WHEN $6 THEN GREATEST(
                       coalesce($5::interval, interval '0'),
                       LEAST(interval '10 minutes', $4::interval * power(2, GREATEST(attempts - 1, 0))))
                   -- not this row's fault (a rate limit, a refused token, a summary updated a moment
                   -- ago): wait exactly as long as asked, no backoff on top
                   ELSE coalesce($5::interval, $4::interval) END
         WHERE id = $1
        RETURNING status
        """,
        notification_id,
        error,
        max_attempts,
        base_delay,
        not_before,
        count_attempt,
    )
    return status == "pending"


async def outage_alert(pool: asyncpg.Pool, app_id: int, *, before_id: int) -> dict | None:
    """The down/fail notification that opened the outage a recovery closes."""
    row = await pool.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM notifications
         WHERE app_id = $1 AND kind = ANY($3::text[]) AND id < $2
         ORDER BY id DESC LIMIT 1
        """,
        app_id,
        before_id,
        list(ALERT_KINDS),
    )
    return dict(row) if row else None


async def alert_by_message(pool: asyncpg.Pool, channel: str, ts: str) -> dict | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM notifications WHERE slack_channel = $1 AND slack_ts = $2 ORDER BY id DESC LIMIT 1",
        channel,
        ts,
    )
    return dict(row) if row else None


async def get_notification(pool: asyncpg.Pool, notification_id: int) -> dict | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM notifications WHERE id = $1", notification_id)
    return dict(row) if row else None


async def merge_alert_state(pool: asyncpg.Pool, notification_id: int, patch: dict[str, Any]) -> dict | None:
    """Add state (acked_by, snoozed_until, recovered_at, …) to an alert, atomically; returns the row."""
    row = await pool.fetchrow(
        f"UPDATE notifications SET payload = payload || $2::jsonb WHERE id = $1 RETURNING {_COLUMNS}",
        notification_id,
        patch,
    )
    return dict(row) if row else None


async def set_app_alert(pool: asyncpg.Pool, app_id: int, channel: str, ts: str) -> None:
    await pool.execute(
        "UPDATE applications SET alert_channel = $2, alert_ts = $3 WHERE id = $1", app_id, channel, ts
    )


async def list_for_app(pool: asyncpg.Pool, app_id: int) -> list[dict]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM notifications WHERE app_id = $1 ORDER BY id", app_id)
    return [dict(r) for r in rows]


async def status_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY status")
    counts = {s: 0 for s in ("pending", "sent", "suppressed", "failed")}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def last_delivery(pool: asyncpg.Pool) -> datetime | None:
    return await pool.fetchval("SELECT max(sent_at) FROM notifications WHERE status = 'sent'")


async def mark_many_sent(pool: asyncpg.Pool, notification_ids: list[int], *, channel: str, ts: str, patch: dict) -> None:
    """Several alerts delivered as one (storm) message."""
    await pool.execute(
        """
        UPDATE notifications
           SET status = 'sent', sent_at = now(), slack_channel = $2, slack_ts = $3, last_error = NULL,
               payload = payload || $4::jsonb
         WHERE id = ANY($1::bigint[])
        """,
        notification_ids,
        channel,
        ts,
        patch,
    )


# --- heartbeat storms: one summary per channel, found in the outbox rather than kept in memory ------


async def heartbeat_alerts_sent_since(pool: asyncpg.Pool, channel: str, *, since: datetime) -> int:
    """Heartbeat alerts posted for apps of `channel` since `since` (one by one or in a summary)."""
    return await pool.fetchval(
        """
        SELECT count(*) FROM notifications n JOIN applications a ON a.id = n.app_id
         WHERE a.channel = $1 AND n.kind = ANY($3::text[]) AND n.status = 'sent' AND n.sent_at > $2
        """,
        channel,
        since,
        list(ALERT_KINDS),
    )


async def ongoing_heartbeat_storm(pool: asyncpg.Pool, channel: str, *, since: datetime) -> dict | None:
    """The summary message of `channel`'s heartbeat storm, if anything touched it since `since`:
    its Slack address and when it was last changed (the newest row that went out with it)."""
    row = await pool.fetchrow(
        """
        SELECT n.slack_channel, n.slack_ts, max(n.sent_at) AS touched_at
          FROM notifications n JOIN applications a ON a.id = n.app_id
         WHERE a.channel = $1 AND n.status = 'sent' AND n.payload->>'storm' = 'true' AND n.slack_ts IS NOT NULL
         GROUP BY 1, 2
        HAVING max(n.sent_at) > $2
         ORDER BY 3 DESC
         LIMIT 1
        """,
        channel,
        since,
    )
    return dict(row) if row else None


async def heartbeat_storm_apps(pool: asyncpg.Pool, channel: str, ts: str) -> tuple[list[str], list[str]]:
    """The apps a storm summary stands for, and those of them that are up again."""
    rows = await pool.fetch(
        """
        SELECT DISTINCT a.name, a.state FROM notifications n JOIN applications a ON a.id = n.app_id
         WHERE n.slack_channel = $1 AND n.slack_ts = $2 AND n.kind = ANY($3::text[])
        """,
        channel,
        ts,
        list(ALERT_KINDS),
    )
    return [r["name"] for r in rows], [r["name"] for r in rows if r["state"] == "up"]


async def release_held_alerts(conn: asyncpg.Connection, channel: str, errors: Sequence[str]) -> int:
    """Heartbeat alerts held because Slack refused `channel` (`errors`) are due now: Pulser was
    let into it. Returns how many."""
    result = await conn.execute(
        """
        UPDATE notifications n SET next_attempt_at = now()
          FROM applications a
         WHERE a.id = n.app_id AND a.channel = $1 AND n.status = 'pending' AND n.kind = ANY($3::text[])
           AND n.last_error = ANY($2::text[]) AND n.claimed_by IS NULL
        """,
        channel,
        [f"slack: {e}" for e in errors],
        list(ALERT_KINDS),
    )
    return int(result.split()[-1])


# The reason a heartbeat alert waits for its storm summary's next rewrite (see alerts.outbound.heartbeats).
JOINS_STORM = "joins the storm summary's next update"


async def defer_many(pool: asyncpg.Pool, notification_ids: list[int], *, wait: timedelta, reason: str) -> None:
    """Several claimed rows wait `wait`, without using up a try: one statement for a storm's worth."""
    await pool.execute(
        """
        UPDATE notifications
           SET next_attempt_at = now() + $2::interval, last_error = $3, claimed_by = NULL,
               attempts = GREATEST(attempts - 1, 0)
         WHERE id = ANY($1::bigint[]) AND status = 'pending'
        """,
        notification_ids,
        wait,
        reason,
    )


async def claim_storm_joiners(
    pool: asyncpg.Pool, channel: str, *, worker: str | None, within: timedelta, lease: timedelta = timedelta(seconds=60)
) -> list[dict]:
    """Heartbeat alerts of `channel` waiting for its storm summary's next rewrite (due within
    `within`): the rewrite being made now takes them all, not one delivery round's worth."""
    rows = await pool.fetch(
        f"""
        UPDATE notifications
           SET attempts = attempts + 1, next_attempt_at = now() + $4::interval, claimed_by = $3
         WHERE id IN (
               SELECT n.id FROM notifications n JOIN applications a ON a.id = n.app_id
                WHERE n.status = 'pending' AND n.last_error = $5 AND a.channel = $1
                  AND n.next_attempt_at <= now() + $2::interval
                  FOR UPDATE OF n SKIP LOCKED)
        RETURNING {_COLUMNS}
        """,
        channel,
        within,
        worker,
        lease,
        JOINS_STORM,
    )
    return [dict(r) for r in rows]
