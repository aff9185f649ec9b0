"""SQL for incidents (alert groups), their Slack messages and occurrences.

Time is always passed in (`now`) rather than read from the database clock, so that the pipeline,
the sweeps and the noise benchmark can run on simulated time with the same statements.

The message outbox is `incident_messages.render_due_at`: set means "post or update this message
at that time". A claim pushes it one lease ahead (a crashed notifier's claim comes back), and a
finished render clears it unless the incident changed meanwhile (`incidents.version`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

import asyncpg

from storage.storms import NO_STORM, StormPolicy, fold_decision, touch_for_incident
from storage.workers import claimer_dead

Conn = asyncpg.Pool | asyncpg.Connection

# A digest is rewritten no sooner than this after its last rewrite: chat.update is Tier 3 (about 50
# a minute for the workspace), and incident messages need their share of it during a storm.
DIGEST_DEBOUNCE = timedelta(seconds=3)

# Columns the pipeline and the buttons may change through `update_incident`.
UPDATABLE = frozenset(
    {
        "title", "description", "link", "labels", "source_severity", "severity", "status", "count",
        "last_seen", "spike_window_start", "spike_window_count", "spiked_at", "last_alert",
        "suppressed_by", "acked_by", "acked_at", "snoozed_by", "snoozed_until", "investigator",
        "investigating_at", "resolved_by", "resolved_at", "resolve_reason", "reopened_count",
        "auto_close_minutes",
    }
)

_MESSAGE_COLUMNS = (
    "id, incident_id, rule_id, channel, mention, mention_min_severity, runbook_url, escalate_after_minutes, "
    "escalate_to, escalation_levels, escalation_level, next_escalation_at, slack_channel, slack_ts, "
    "render_due_at, rendered_version, last_rendered_at, attempts, last_error, failed, created_at, escalation_of, "
    "digest_id, folded"
)


async def lock_group_key(conn: asyncpg.Connection, group_key: str) -> None:
    """Serialize everything done to one group key until the transaction ends (firing vs resolved
    for the same problem arriving in two envelopes at once)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 42))", group_key)


async def latest_for_key(conn: asyncpg.Connection, group_key: str) -> dict | None:
    """The newest incident for a key, firing or not, locked for this transaction."""
    row = await conn.fetchrow(
        "SELECT * FROM incidents WHERE group_key = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE", group_key
    )
    return dict(row) if row else None


async def insert_incident(conn: asyncpg.Connection, fields: Mapping[str, Any]) -> dict:
    """Open an incident. The partial unique index refuses a second firing incident per key."""
    columns = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *",
        *fields.values(),
    )
    return dict(row)


async def update_incident(conn: Conn, incident_id: int, changes: Mapping[str, Any], *, now: datetime) -> dict | None:
    """Apply `changes` (UPDATABLE columns only) and bump the version every message renders from."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=3)]
    row = await conn.fetchrow(
        f"""
        UPDATE incidents SET {', '.join(sets + ['version = version + 1', 'updated_at = $2'])}
         WHERE id = $1 RETURNING *
        """,
        incident_id,
        now,
        *changes.values(),
    )
    return dict(row) if row else None


async def get_incident(conn: Conn, incident_id: int, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM incidents WHERE id = $1{lock}", incident_id)
    return dict(row) if row else None


class Busy:
    """`lock_unless_busy`'s answer when another transaction holds the incident."""


BUSY = Busy()


async def lock_unless_busy(conn: asyncpg.Connection, incident_id: int) -> dict | None | Busy:
    """The incident, locked for this transaction; BUSY when another transaction holds it (an ack,
    the pipeline), None when it is gone. For work that holds other locks first (the escalation
    engine holds its runs): waiting here, while the holder waits for those, would deadlock."""
    row = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1 FOR UPDATE SKIP LOCKED", incident_id)
    if row is not None:
        return dict(row)
    return BUSY if await conn.fetchval("SELECT 1 FROM incidents WHERE id = $1", incident_id) else None


async def get_incidents(conn: Conn, incident_ids: Iterable[int]) -> dict[int, dict]:
    rows = await conn.fetch("SELECT * FROM incidents WHERE id = ANY($1::bigint[])", list(set(incident_ids)))
    return {r["id"]: dict(r) for r in rows}


async def list_incidents(conn: Conn, *, status: str | None = None, limit: int = 100) -> list[dict]:
    rows = await conn.fetch(
        "SELECT * FROM incidents WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2", status, limit
    )
    return [dict(r) for r in rows]


async def count_by_status(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM incidents GROUP BY status")
    counts = {"firing": 0, "resolved": 0}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def add_occurrence(
    conn: asyncpg.Connection, incident_id: int, *, received_at: datetime, status: str, alert: Mapping[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO alert_occurrences (incident_id, received_at, status, alert) VALUES ($1, $2, $3, $4)",
        incident_id,
        received_at,
        status,
        alert,
    )


async def recent_occurrences(conn: Conn, incident_id: int, *, limit: int = 10) -> tuple[list[dict], int]:
    """The newest `limit` occurrences and how many there are in all."""
    rows = await conn.fetch(
        "SELECT received_at, status, alert FROM alert_occurrences WHERE incident_id = $1 ORDER BY id DESC LIMIT $2",
        incident_id,
        limit,
    )
    total = await conn.fetchval("SELECT count(*) FROM alert_occurrences WHERE incident_id = $1", incident_id)
    return [dict(r) for r in rows], total


async def delete_occurrences_beyond(pool: asyncpg.Pool, *, keep: int) -> int:
    """Retention: keep the newest `keep` occurrences of each incident (Investigate shows ten) and
    its first one, which the incident timeline opens with."""
    result = await pool.execute(
        """
        DELETE FROM alert_occurrences o
         USING (SELECT id FROM (
                    SELECT id, row_number() OVER (PARTITION BY incident_id ORDER BY id DESC) AS n,
                           row_number() OVER (PARTITION BY incident_id ORDER BY id) AS from_first
                      FROM alert_occurrences) ranked
                 WHERE n > $1 AND from_first > 1) old
         WHERE o.id = old.id
        """,
        keep,
    )
    return int(result.split()[-1])


# --- inhibition ------------------------------------------------------------------------------------


async def firing_with_labels(
    conn: Conn, subset: Mapping[str, str], *, exclude_group_key: str, limit: int = 20
) -> list[dict]:
    """Firing incidents whose labels contain `subset` (GIN-indexed), other than the key's own."""
    rows = await conn.fetch(
        """
        SELECT id, labels FROM incidents
         WHERE status = 'firing' AND labels @> $1::jsonb AND group_key <> $2
         ORDER BY id DESC LIMIT $3
        """,
        dict(subset),
        exclude_group_key,
        limit,
    )
    return [dict(r) for r in rows]


async def firing_suppressed(conn: Conn, *, limit: int = 100) -> list[dict]:
    rows = await conn.fetch(
        "SELECT * FROM incidents WHERE status = 'firing' AND suppressed_by IS NOT NULL ORDER BY id LIMIT $1", limit
    )
    return [dict(r) for r in rows]


# --- messages --------------------------------------------------------------------------------------


async def add_messages(
    conn: asyncpg.Connection,
    incident_id: int,
    routes: Sequence[Mapping[str, Any]],
    *,
    due_at: datetime,
    severity: str | None = None,
    storms: StormPolicy | None = None,
) -> int:
    """One message per route (channel); routes the incident already has are skipped. With
    `storms`, a channel in a storm folds the message into its digest instead of posting it."""
    added = 0
    for route in routes:
        exists = await conn.fetchval(
            "SELECT 1 FROM incident_messages WHERE incident_id = $1 AND channel = $2 AND escalation_of IS NULL",
            incident_id,
            route["channel"],
        )
        if exists:
            continue
        fold = NO_STORM
        if storms is not None and severity is not None:
            fold = await fold_decision(
                conn, route["channel"], severity, now=due_at, policy=storms, threshold=route.get("storm_threshold")
            )
        result = await conn.execute(
            """
            INSERT INTO incident_messages (incident_id, rule_id, channel, mention, mention_min_severity, runbook_url,
                                           escalate_after_minutes, escalate_to, escalation_levels, render_due_at,
                                           digest_id, folded, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (incident_id, channel) WHERE escalation_of IS NULL DO NOTHING
            """,
            incident_id,
            route["rule_id"],
            route["channel"],
            route["mention"],
            route["mention_min_severity"],
            route["runbook_url"],
            route["escalate_after_minutes"],
            route["escalate_to"],
            route["escalation_levels"],
            None if fold.folded else due_at,
            fold.digest_id,
            fold.folded,
            due_at,
        )
        added += int(result.split()[-1])
    return added


async def add_escalation_post(conn: Conn, escalated: Mapping[str, Any], *, target: str, level: int, due_at: datetime) -> int:
    """A fresh post in the escalated message's channel, paging `target` at `level`. It is a message
    of the incident like any other, so every later change of the incident re-renders it; it never
    escalates itself (no levels)."""
    return await conn.fetchval(
        """
        INSERT INTO incident_messages (incident_id, rule_id, channel, runbook_url, escalate_to, escalation_level,
                                       escalation_of, render_due_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING id
        """,
        escalated["incident_id"],
        escalated["rule_id"],
        escalated["slack_channel"] or escalated["channel"],
        escalated["runbook_url"],
        target,
        level,
        escalated["id"],
        due_at,
    )


async def messages_for(conn: Conn, incident_id: int, *, escalation_posts: bool = True) -> list[dict]:
    """The incident's messages, oldest first; `escalation_posts=False` keeps the routed ones only
    (where thread notices go)."""
    rows = await conn.fetch(
        f"SELECT {_MESSAGE_COLUMNS} FROM incident_messages WHERE incident_id = $1 AND ($2 OR escalation_of IS NULL) ORDER BY id",
        incident_id,
        escalation_posts,
    )
    return [dict(r) for r in rows]


async def get_message(conn: Conn, message_id: int) -> dict | None:
    row = await conn.fetchrow(f"SELECT {_MESSAGE_COLUMNS} FROM incident_messages WHERE id = $1", message_id)
    return dict(row) if row else None


async def message_by_slack(conn: Conn, channel: str, ts: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS} FROM incident_messages WHERE slack_channel = $1 AND slack_ts = $2", channel, ts
    )
    return dict(row) if row else None


async def schedule_render(conn: Conn, incident_id: int, *, now: datetime, debounce: timedelta) -> None:
    """A repeat: update the messages, but no sooner than `debounce` after their last render.
    A render already scheduled (or in flight) keeps its time — that is the debounce."""
    await conn.execute(
        """
        UPDATE incident_messages
           SET render_due_at = coalesce(render_due_at, GREATEST($2, last_rendered_at + $3::interval, $2))
         WHERE incident_id = $1 AND NOT failed AND NOT folded
        """,
        incident_id,
        now,
        debounce,
    )
    await touch_for_incident(conn, incident_id, now=now, debounce=max(debounce, DIGEST_DEBOUNCE))


async def render_now(conn: Conn, incident_id: int, *, now: datetime) -> None:
    """A state change people must see at once (a click, a resolve). A message not yet posted keeps
    its schedule, so an in-flight first post is never sent twice."""
    await conn.execute(
        """
        UPDATE incident_messages
           SET render_due_at = CASE WHEN slack_ts IS NULL THEN coalesce(render_due_at, $2) ELSE $2 END
         WHERE incident_id = $1 AND NOT failed AND NOT folded
        """,
        incident_id,
        now,
    )
    await touch_for_incident(conn, incident_id, now=now, debounce=DIGEST_DEBOUNCE)


async def claim_due_messages(
    pool: asyncpg.Pool, *, now: datetime, limit: int, lease: timedelta, worker: str | None = None
) -> list[dict]:
    """Claim messages to post or update, the most severe incident first, then the longest due (a
    critical never waits behind mediums for Slack's budget); the lease returns them if this
    process dies mid-send."""
    rows = await pool.fetch(
        f"""
        UPDATE incident_messages
           SET render_due_at = $1::timestamptz + $3::interval, attempts = attempts + 1, claimed_by = $4
         WHERE id IN (
               SELECT m.id FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
                WHERE (m.render_due_at <= $1 OR (m.render_due_at IS NOT NULL AND {claimer_dead("m.claimed_by")}))
                  AND NOT m.failed
                ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], i.severity),
                         m.render_due_at, m.id
                LIMIT $2
                  FOR UPDATE OF m SKIP LOCKED)
        RETURNING {_MESSAGE_COLUMNS}
        """,
        now,
        limit,
        lease,
        worker,
    )
    return [dict(r) for r in rows]


async def message_rendered(
    pool: asyncpg.Pool,
    message_id: int,
    *,
    version: int,
    claimed_until: datetime,
    channel: str | None,
    ts: str | None,
    now: datetime,
    debounce: timedelta,
) -> None:
    """Record a successful post/update. If the incident changed while we were sending, schedule the
    next render one debounce later; if someone rescheduled the message meanwhile, keep theirs. The
    first post also arms escalation.

    The incident row is locked first (FOR SHARE, in the same statement). A repeat commits its
    version bump and its `schedule_render` together; without the lock this UPDATE could read the
    version from before that commit, wait on the message row the repeat holds, then clear the
    schedule the repeat kept for it — and the message would show the count before the last
    repeats until the next one came. A locked row is read in its latest committed version.
    """
    await pool.execute(
        """
        WITH i AS (
            SELECT i.id, i.version, i.status, i.acked_by
              FROM incidents i JOIN incident_messages m ON m.incident_id = i.id
             WHERE m.id = $1
               FOR SHARE OF i
        )
        UPDATE incident_messages m
           SET slack_channel = coalesce(m.slack_channel, $3),
               slack_ts = coalesce(m.slack_ts, $4),
               claimed_by = NULL,
               rendered_version = GREATEST(m.rendered_version, $2),
               last_rendered_at = $5,
               attempts = 0,
               last_error = NULL,
               next_escalation_at = CASE
                   WHEN m.slack_ts IS NULL AND m.escalate_after_minutes IS NOT NULL AND m.escalation_levels > 0
                        AND i.status = 'firing' AND i.acked_by IS NULL
                   THEN $5::timestamptz + make_interval(mins => m.escalate_after_minutes)
                   ELSE m.next_escalation_at END,
               render_due_at = CASE
                   WHEN m.render_due_at IS DISTINCT FROM $7 THEN m.render_due_at
                   WHEN i.version > $2 THEN $5::timestamptz + $6::interval
                   ELSE NULL END
          FROM i
         WHERE m.id = $1 AND i.id = m.incident_id
        """,
        message_id,
        version,
        channel,
        ts,
        now,
        debounce,
        claimed_until,
    )


async def message_retry(pool: asyncpg.Pool, message_id: int, *, error: str, retry_at: datetime, count_attempt: bool = True) -> None:
    """Try again at `retry_at` (backoff, or Slack's Retry-After). A throttle is not an attempt."""
    await pool.execute(
        """
        UPDATE incident_messages
           SET render_due_at = $3, last_error = left($2, 2000), claimed_by = NULL,
               attempts = CASE WHEN $4 THEN attempts ELSE GREATEST(attempts - 1, 0) END
         WHERE id = $1
        """,
        message_id,
        error,
        retry_at,
        count_attempt,
    )


async def message_lost(pool: asyncpg.Pool, message_id: int, *, error: str, now: datetime) -> None:
    """The Slack message is gone (deleted, or too old to edit): forget it and post it again now.
    Escalation keeps its level; the new post re-arms its countdown like a first post."""
    await pool.execute(
        """
        UPDATE incident_messages
           SET slack_channel = NULL, slack_ts = NULL, render_due_at = $3, last_error = left($2, 2000), attempts = 0
         WHERE id = $1
        """,
        message_id,
        error,
        now,
    )


async def release_held_messages(conn: Conn, channel: str, errors: Sequence[str], *, now: datetime, lease: timedelta) -> int:
    """The app was let into `channel`: messages held for it (their last try refused with one of
    `errors`) are due now; returns how many. One due later than a claim's lease is not in flight,
    so it cannot be posted twice; one due sooner goes out within the lease anyway."""
    result = await conn.execute(
        """
        UPDATE incident_messages SET render_due_at = $2
         WHERE channel = $1 AND slack_ts IS NULL AND NOT failed AND NOT folded
           AND render_due_at > $2::timestamptz + $4::interval AND last_error = ANY($3::text[])
        """,
        channel,
        now,
        [f"slack: {e}" for e in errors],
        lease,
    )
    return int(result.split()[-1])


async def held_messages(conn: Conn, errors: Sequence[str]) -> dict[str, str]:
    """Unposted messages whose last try Slack refused for their channel: channel → the error."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (channel) channel, last_error FROM incident_messages
         WHERE slack_ts IS NULL AND NOT failed AND render_due_at IS NOT NULL AND last_error = ANY($1::text[])
         ORDER BY channel
        """,
        [f"slack: {e}" for e in errors],
    )
    return {r["channel"]: r["last_error"].removeprefix("slack: ") for r in rows}


async def message_failed(pool: asyncpg.Pool, message_id: int, *, error: str) -> None:
    """Give up: an error no retry can fix (channel gone, token revoked) or attempts exhausted."""
    await pool.execute(
        "UPDATE incident_messages SET render_due_at = NULL, failed = true, last_error = left($2, 2000) WHERE id = $1",
        message_id,
        error,
    )


async def stop_escalation(conn: Conn, incident_id: int) -> None:
    await conn.execute("UPDATE incident_messages SET next_escalation_at = NULL WHERE incident_id = $1", incident_id)


async def rearm_escalation(conn: Conn, incident_id: int, *, now: datetime) -> None:
    """After a snooze ends or a resolved incident fires again: the countdown starts over."""
    await conn.execute(
        """
        UPDATE incident_messages
           SET next_escalation_at = $2::timestamptz + make_interval(mins => escalate_after_minutes)
         WHERE incident_id = $1 AND escalate_after_minutes IS NOT NULL
           AND escalation_level < escalation_levels AND slack_ts IS NOT NULL
        """,
        incident_id,
        now,
    )


async def claim_due_escalations(pool: asyncpg.Pool, *, now: datetime, limit: int = 50) -> list[dict]:
    """Messages whose incident is still firing, unacked and not snoozed past their deadline: bump
    the level, schedule the next one (or none after the last level), return them."""
    rows = await pool.fetch(
        f"""
        UPDATE incident_messages m
           SET escalation_level = m.escalation_level + 1,
               next_escalation_at = CASE WHEN m.escalation_level + 1 < m.escalation_levels
                                         THEN $1::timestamptz + make_interval(mins => m.escalate_after_minutes) END
         WHERE m.id IN (
               SELECT m2.id FROM incident_messages m2 JOIN incidents i ON i.id = m2.incident_id
                WHERE m2.next_escalation_at <= $1 AND m2.slack_ts IS NOT NULL AND m2.escalation_of IS NULL
                  AND i.status = 'firing' AND i.acked_by IS NULL AND i.suppressed_by IS NULL
                  AND (i.snoozed_until IS NULL OR i.snoozed_until <= $1)
                ORDER BY m2.next_escalation_at
                LIMIT $2
                  FOR UPDATE OF m2 SKIP LOCKED)
        RETURNING {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))}
        """,
        now,
        limit,
    )
    return [dict(r) for r in rows]


async def claim_auto_close(pool: asyncpg.Pool, *, now: datetime, limit: int = 100) -> list[dict]:
    """Firing incidents quiet for longer than their route's auto-close: resolve them."""
    rows = await pool.fetch(
        """
        UPDATE incidents
           SET status = 'resolved', resolve_reason = 'auto_close', resolved_at = $1,
               version = version + 1, updated_at = $1
         WHERE id IN (
               SELECT id FROM incidents
                WHERE status = 'firing' AND auto_close_minutes IS NOT NULL
                  AND last_seen + make_interval(mins => auto_close_minutes) <= $1
                LIMIT $2
                  FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        now,
        limit,
    )
    return [dict(r) for r in rows]


async def claim_snooze_ended(pool: asyncpg.Pool, *, now: datetime, limit: int = 100) -> list[dict]:
    """Firing incidents whose snooze ran out: clear it and return them (they notify again)."""
    rows = await pool.fetch(
        """
        UPDATE incidents
           SET snoozed_until = NULL, snoozed_by = NULL, version = version + 1, updated_at = $1
         WHERE id IN (
               SELECT id FROM incidents
                WHERE snoozed_until IS NOT NULL AND snoozed_until <= $1
                LIMIT $2
                  FOR UPDATE SKIP LOCKED)
        RETURNING *
        """,
        now,
        limit,
    )
    return [dict(r) for r in rows]


async def delivery_backlog(conn: Conn) -> dict[str, int]:
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE render_due_at IS NOT NULL AND NOT failed) AS pending,
               count(*) FILTER (WHERE failed) AS failed
          FROM incident_messages
        """
    )
    return dict(row)


# --- members of a group_by incident ------------------------------------------------------------------


async def upsert_member(conn: Conn, incident_id: int, member_key: str, alert: Any, *, status: str, now: datetime) -> None:
    """Record one alert of a grouped incident: new, a repeat, or its resolution."""
    await conn.execute(
        """
        INSERT INTO incident_members (incident_id, member_key, title, service, env, severity, status, first_seen, last_seen)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
        ON CONFLICT (incident_id, member_key) DO UPDATE
           SET title = excluded.title, severity = excluded.severity, status = excluded.status,
               count = incident_members.count + (excluded.status = 'firing')::int,
               last_seen = GREATEST(incident_members.last_seen, excluded.last_seen)
        """,
        incident_id,
        member_key,
        alert.title,
        alert.service,
        alert.env,
        alert.severity,
        status,
        now,
    )


async def firing_members(conn: Conn, incident_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM incident_members WHERE incident_id = $1 AND status = 'firing'", incident_id
    )


async def members_of(conn: Conn, incident_id: int, *, limit: int = 10) -> tuple[list[dict], int, int]:
    """A grouped incident's members to show (firing first, then the latest), how many in all, and
    how many fire."""
    rows = await conn.fetch(
        """
        SELECT title, service, env, severity, status, count, last_seen FROM incident_members
         WHERE incident_id = $1 ORDER BY (status = 'firing') DESC, last_seen DESC LIMIT $2
        """,
        incident_id,
        limit,
    )
    totals = await conn.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'firing') AS firing FROM incident_members WHERE incident_id = $1",
        incident_id,
    )
    return [dict(r) for r in rows], totals["total"], totals["firing"]
