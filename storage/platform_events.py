"""SQL for platform events (CI, deploys, error rates, scheduled tasks, manual notes, the audit of
interactive actions) and for event routes (which channel each event type goes to).

The Slack message outbox is `render_due_at`, as for incident messages: set means "post or update
this event's message at that time". Before the first post, `slack_channel` holds the channel the
message is meant for and `slack_ts` is NULL; the post replaces it with the channel ID Slack answered.

Events with the same (event_type, correlation) form a *chain* — a deployment's started, completed,
failed — that shares one Slack message. The newest event of a chain owns the message; a claim never
takes an event while an earlier one of its chain is still pending, so one chain is never posted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

ACTION = "action"  # event_type of the audit entries: never posted to Slack
CHAIN_SHOWN = 20

_INSERTED = (
    "event_type", "status", "service", "env", "severity", "title", "link", "occurred_at", "received_at",
    "correlation", "actor", "details", "envelope_pk", "slack_channel", "slack_ts", "render_due_at",
)  # fmt: skip


async def lock_chain(conn: asyncpg.Connection, event_type: str, correlation: str) -> None:
    """Serialize events of one chain until the transaction ends (two envelopes of one deployment)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 43))", f"{event_type}\x1f{correlation}")


async def latest_in_chain(conn: asyncpg.Connection, event_type: str, correlation: str) -> dict | None:
    row = await conn.fetchrow(
        """
        SELECT * FROM platform_events
         WHERE correlation = $2 AND event_type = $1
         ORDER BY id DESC LIMIT 1
        """,
        event_type,
        correlation,
    )
    return dict(row) if row else None


async def insert_event(conn: Conn, fields: Mapping[str, Any]) -> dict:
    """One event; `fields` holds any of the insertable columns (the rest take their defaults)."""
    unknown = set(fields) - set(_INSERTED)
    if unknown:
        raise ValueError(f"not insertable: {sorted(unknown)}")
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO platform_events ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *",
        *fields.values(),
    )
    return dict(row)


async def insert_action(
    conn: Conn, *, actor: str, action: str, target: str, details: Mapping[str, Any] | None = None
) -> int:
    """The audit of an interactive action as an event of type "action" (no render_due_at: not posted)."""
    return await conn.fetchval(
        """
        INSERT INTO platform_events (event_type, status, title, occurred_at, actor, details)
        VALUES ('action', $2, $3, now(), $1, $4) RETURNING id
        """,
        actor,
        action,
        f"{action} {target}".strip(),
        {"target": target, **(details or {})},
    )


async def has_event_for_envelope(conn: Conn, envelope_pk: int, event_types: list[str]) -> bool:
    """Whether a delivery already produced its event (a retried GitHub delivery must not add one)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM platform_events WHERE envelope_pk = $1 AND event_type = ANY($2::text[]))",
        envelope_pk,
        event_types,
    )


async def get_event(conn: Conn, event_id: int, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM platform_events WHERE id = $1{lock}", event_id)
    return dict(row) if row else None


async def chain_of(conn: Conn, event: Mapping[str, Any], *, limit: int = CHAIN_SHOWN) -> list[dict]:
    """The events sharing `event`'s message, oldest first (just `event` when it has no correlation)."""
    if not event["correlation"]:
        return [dict(event)]
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT * FROM platform_events
             WHERE correlation = $2 AND event_type = $1
             ORDER BY id DESC LIMIT $3) newest
         ORDER BY id
        """,
        event["event_type"],
        event["correlation"],
        limit,
    )
    return [dict(r) for r in rows]


async def merge_details(conn: Conn, event_id: int, changes: Mapping[str, Any]) -> dict | None:
    """Add or replace keys of an event's details (who acked it, who investigates)."""
    row = await conn.fetchrow(
        "UPDATE platform_events SET details = details || $2::jsonb WHERE id = $1 RETURNING *", event_id, dict(changes)
    )
    return dict(row) if row else None


async def render_chain_now(conn: Conn, event_id: int, *, now: datetime) -> None:
    """Re-render the message `event_id` is shown in, through the newest event of its chain. An
    event not yet posted keeps its schedule, so an in-flight first post is never sent twice."""
    await conn.execute(
        """
        UPDATE platform_events
           SET render_due_at = CASE WHEN slack_ts IS NULL THEN coalesce(render_due_at, $2) ELSE $2 END
         WHERE id = (
               SELECT coalesce(
                        (SELECT max(c.id) FROM platform_events c
                          WHERE c.correlation = e.correlation AND c.event_type = e.event_type),
                        e.id)
                 FROM platform_events e WHERE e.id = $1)
           AND event_type <> 'action'
        """,
        event_id,
        now,
    )


async def claim_due(pool: asyncpg.Pool, *, now: datetime, limit: int, lease: timedelta) -> list[dict]:
    """Claim events to post or update; the lease returns them if this process dies mid-send. An
    event waits while an earlier event of its chain is still due or in flight (leased)."""
    rows = await pool.fetch(
        """
        UPDATE platform_events
           SET render_due_at = $1::timestamptz + $3::interval, attempts = attempts + 1
         WHERE id IN (
               SELECT p.id FROM platform_events p
                WHERE p.render_due_at <= $1
                  AND NOT EXISTS (
                      SELECT 1 FROM platform_events earlier
                       WHERE p.correlation IS NOT NULL
                         AND earlier.correlation = p.correlation AND earlier.event_type = p.event_type
                         AND earlier.id < p.id AND earlier.render_due_at IS NOT NULL)
                ORDER BY p.render_due_at, p.id
                LIMIT $2
                  FOR UPDATE OF p SKIP LOCKED)
        RETURNING *
        """,
        now,
        limit,
        lease,
    )
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def event_rendered(
    pool: asyncpg.Pool, event: Mapping[str, Any], *, claimed_until: datetime, channel: str | None, ts: str | None
) -> None:
    """Record a successful post/update. A re-render asked for meanwhile keeps its time; a first
    post hands its channel and ts to the later events of the chain that have none yet."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE platform_events
               SET slack_channel = CASE WHEN slack_ts IS NULL AND $2::text IS NOT NULL THEN $2 ELSE slack_channel END,
                   slack_ts = coalesce(slack_ts, $3),
                   attempts = 0,
                   last_error = NULL,
                   render_due_at = CASE WHEN render_due_at IS DISTINCT FROM $4 THEN render_due_at END
             WHERE id = $1
            """,
            event["id"],
            channel,
            ts,
            claimed_until,
        )
        if ts is not None and event["correlation"]:
            await conn.execute(
                """
                UPDATE platform_events SET slack_channel = $4, slack_ts = $5
                 WHERE correlation = $2 AND event_type = $1 AND id > $3 AND slack_ts IS NULL
                """,
                event["event_type"],
                event["correlation"],
                event["id"],
                channel,
                ts,
            )


async def adopt_message(pool: asyncpg.Pool, event_id: int, *, channel: str, ts: str) -> None:
    """An event renders into a message its chain already has (a post it missed by a moment)."""
    await pool.execute(
        "UPDATE platform_events SET slack_channel = $2, slack_ts = $3 WHERE id = $1 AND slack_ts IS NULL",
        event_id,
        channel,
        ts,
    )


async def event_retry(
    pool: asyncpg.Pool, event_id: int, *, error: str, retry_at: datetime, count_attempt: bool = True
) -> None:
    """Try again at `retry_at` (backoff, or Slack's Retry-After). A throttle is not an attempt."""
    await pool.execute(
        """
        UPDATE platform_events
           SET render_due_at = $3, last_error = left($2, 2000),
               attempts = CASE WHEN $4 THEN attempts ELSE GREATEST(attempts - 1, 0) END
         WHERE id = $1
        """,
        event_id,
        error,
        retry_at,
        count_attempt,
    )


async def event_rerouted(pool: asyncpg.Pool, event_id: int, *, channel: str, error: str, now: datetime) -> None:
    """Slack refuses the event's channel: it goes to `channel` instead, now (not a failed try)."""
    await pool.execute(
        """
        UPDATE platform_events
           SET slack_channel = $2, render_due_at = $4, last_error = left($3, 2000), attempts = GREATEST(attempts - 1, 0)
         WHERE id = $1 AND slack_ts IS NULL
        """,
        event_id,
        channel,
        error,
        now,
    )


async def event_failed(pool: asyncpg.Pool, event_id: int, *, error: str) -> None:
    """Give up on the message: an error no retry fixes (channel gone, token revoked) or too many tries."""
    await pool.execute(
        "UPDATE platform_events SET render_due_at = NULL, last_error = left($2, 2000) WHERE id = $1", event_id, error
    )


async def list_events(conn: Conn, *, event_type: str | None = None, limit: int = 50) -> list[dict]:
    """Newest first; all types (actions included) unless `event_type` names one."""
    rows = await conn.fetch(
        """
        SELECT * FROM platform_events
         WHERE ($1::text IS NULL OR event_type = $1)
         ORDER BY received_at DESC, id DESC LIMIT $2
        """,
        event_type,
        limit,
    )
    return [dict(r) for r in rows]


async def delivery_backlog(conn: Conn) -> dict[str, int]:
    """Event messages waiting to be posted or updated, and those given up on."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE render_due_at IS NOT NULL) AS pending,
               count(*) FILTER (WHERE render_due_at IS NULL AND last_error IS NOT NULL AND slack_ts IS NULL
                                AND event_type <> 'action') AS failed
          FROM platform_events
        """
    )
    return dict(row)


# --- routes ----------------------------------------------------------------------------------------


async def route_for(conn: Conn, event_type: str) -> str | None:
    """The channel set for an event type, or None (the caller falls back to the default channel)."""
    return await conn.fetchval("SELECT channel FROM event_routes WHERE event_type = $1", event_type)


async def list_routes(conn: Conn) -> dict[str, str]:
    rows = await conn.fetch("SELECT event_type, channel FROM event_routes ORDER BY event_type")
    return {r["event_type"]: r["channel"] for r in rows}


async def managed_routes(conn: Conn) -> set[str]:
    """The event types whose route the config file defines (read-only elsewhere)."""
    rows = await conn.fetch("SELECT event_type FROM event_routes WHERE managed_by IS NOT NULL")
    return {r["event_type"] for r in rows}


async def set_route(conn: Conn, event_type: str, channel: str, *, updated_by: str) -> str | None:
    """Send `event_type` to `channel`; returns the channel it went to before (None: the default)."""
    return await conn.fetchval(
        """
        WITH before AS (SELECT channel FROM event_routes WHERE event_type = $1)
        INSERT INTO event_routes AS r (event_type, channel, updated_by, updated_at)
        VALUES ($1, $2, $3, now())
        ON CONFLICT (event_type) DO UPDATE SET channel = $2, updated_by = $3, updated_at = now()
        RETURNING (SELECT channel FROM before)
        """,
        event_type,
        channel,
        updated_by,
    )


async def delete_route(conn: Conn, event_type: str) -> str | None:
    """Send `event_type` back to the default channel; returns the channel it had (None: none)."""
    return await conn.fetchval("DELETE FROM event_routes WHERE event_type = $1 RETURNING channel", event_type)
