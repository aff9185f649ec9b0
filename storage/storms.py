"""SQL for storm digests: when a channel's new incidents fold into one message, and what it says.

A storm is decided where an incident's message is added (`fold_decision`, in the routing
transaction), under a per-channel advisory lock, so concurrent pipeline workers agree on whether a
storm is open and never open two. Time is passed in, like everywhere in `storage.incidents`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage.workers import claimer_dead

Conn = asyncpg.Pool | asyncpg.Connection

_DIGEST_COLUMNS = (
    "id, channel, opened_at, last_folded_at, closed_at, own_criticals, version, rendered_version, "
    "slack_channel, slack_ts, render_due_at, last_rendered_at, attempts, last_error"
)


@dataclass(frozen=True)
class StormPolicy:
    """When a channel's new incidents stop getting a message each.

    `threshold` new incidents within `window` are posted one by one; from the next one on, the
    channel is in a storm and further incidents fold into its digest, until none has arrived for
    `quiet`. During a storm up to `own_criticals` critical incidents still get a message of their
    own (the rest are named first in the digest). `threshold` 0 never folds."""

    threshold: int = 4
    window: timedelta = timedelta(seconds=60)
    quiet: timedelta = timedelta(minutes=2)
    own_criticals: int = 3


@dataclass(frozen=True)
class Fold:
    digest_id: int | None  # the storm this message belongs to (None: no storm)
    folded: bool  # True: named by the digest, not posted on its own


NO_STORM = Fold(None, False)


async def fold_decision(
    conn: asyncpg.Connection, channel: str, severity: str, *, now: datetime, policy: StormPolicy, threshold: int | None
) -> Fold:
    """Whether a new incident message for `channel` is posted alone or folds into a storm digest.
    Must run in the transaction that inserts the message (it counts the channel's recent ones;
    a storm declared over starts the count afresh)."""
    limit = policy.threshold if threshold is None else threshold
    if limit <= 0:
        return NO_STORM
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pulser.storm'), hashtext($1))", channel)
    digest = await conn.fetchrow(
        "SELECT id, last_folded_at, own_criticals FROM storm_digests WHERE channel = $1 AND closed_at IS NULL FOR UPDATE",
        channel,
    )
    if digest is not None and digest["last_folded_at"] < now - policy.quiet:
        await _close(conn, digest["id"], now)
        digest = None
    if digest is None:
        recent = await conn.fetchval(
            """
            SELECT count(*) FROM incident_messages
             WHERE channel = $1 AND escalation_of IS NULL AND created_at > $2
               AND created_at > coalesce((SELECT max(closed_at) FROM storm_digests WHERE channel = $1), '-infinity')
            """,
            channel,
            now - policy.window,
        )
        if recent < limit:
            return NO_STORM
        digest_id = await conn.fetchval(
            """
            INSERT INTO storm_digests (channel, opened_at, last_folded_at, render_due_at)
            VALUES ($1, $2, $2, $2) RETURNING id
            """,
            channel,
            now,
        )
        own_criticals = 0
    else:
        digest_id, own_criticals = digest["id"], digest["own_criticals"]
    alone = severity == "critical" and own_criticals < policy.own_criticals
    await conn.execute(
        """
        UPDATE storm_digests
           SET last_folded_at = $2, own_criticals = own_criticals + $3::int, version = version + 1,
               render_due_at = coalesce(render_due_at, $2)
         WHERE id = $1
        """,
        digest_id,
        now,
        int(alone),
    )
    return Fold(digest_id, folded=not alone)


async def _close(conn: Conn, digest_id: int, now: datetime) -> None:
    await conn.execute(
        """
        UPDATE storm_digests SET closed_at = $2, version = version + 1, render_due_at = coalesce(render_due_at, $2)
         WHERE id = $1 AND closed_at IS NULL
        """,
        digest_id,
        now,
    )


async def close_quiet(conn: Conn, *, now: datetime, quiet: timedelta) -> int:
    """Storms nothing has folded into for `quiet` are over: their digests say so (re-rendered)."""
    result = await conn.execute(
        """
        UPDATE storm_digests SET closed_at = $1, version = version + 1, render_due_at = coalesce(render_due_at, $1)
         WHERE closed_at IS NULL AND last_folded_at < $1::timestamptz - $2::interval
        """,
        now,
        quiet,
    )
    return int(result.split()[-1])


async def touch_for_incident(conn: Conn, incident_id: int, *, now: datetime, debounce: timedelta) -> None:
    """An incident that is folded into a digest changed (a repeat, an ack, a resolve): the digest
    re-renders, no sooner than `debounce` after its last render (chat.update is Tier 3)."""
    await conn.execute(
        """
        UPDATE storm_digests d
           SET version = d.version + 1,
               render_due_at = coalesce(d.render_due_at, GREATEST($2, d.last_rendered_at + $3::interval))
         WHERE d.id IN (SELECT digest_id FROM incident_messages WHERE incident_id = $1 AND digest_id IS NOT NULL)
        """,
        incident_id,
        now,
        debounce,
    )


async def get_digest(conn: Conn, digest_id: int) -> dict | None:
    row = await conn.fetchrow(f"SELECT {_DIGEST_COLUMNS} FROM storm_digests WHERE id = $1", digest_id)
    return dict(row) if row else None


async def digest_by_slack(conn: Conn, channel: str, ts: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {_DIGEST_COLUMNS} FROM storm_digests WHERE slack_channel = $1 AND slack_ts = $2", channel, ts
    )
    return dict(row) if row else None


async def claim_due(
    pool: asyncpg.Pool, *, now: datetime, lease: timedelta, limit: int = 20, worker: str | None = None
) -> list[dict]:
    rows = await pool.fetch(
        f"""
        UPDATE storm_digests SET render_due_at = $1::timestamptz + $3::interval, attempts = attempts + 1, claimed_by = $4
         WHERE id IN (SELECT id FROM storm_digests
                       WHERE render_due_at <= $1 OR (render_due_at IS NOT NULL AND {claimer_dead("claimed_by")})
                       ORDER BY render_due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING {_DIGEST_COLUMNS}
        """,
        now,
        limit,
        lease,
        worker,
    )
    return [dict(r) for r in rows]


async def after_round(
    pool: asyncpg.Pool,
    digest_id: int,
    *,
    rendered_version: int,
    channel: str | None,
    ts: str | None,
    rendered_at: datetime | None,
    names_due: datetime | None,
    claimed_until: datetime,
    now: datetime,
    update_every: timedelta,
) -> None:
    """Record a digest round: what was rendered (`rendered_at` None: the message was left as it
    was) and when the next round is due — at `names_due` when folded incidents still wait to be
    named, and when the message is behind (folded into meanwhile) no sooner than `update_every`
    after its last rewrite: chat.update is Tier 3, shared with every incident message. A
    reschedule made by someone else meanwhile (a storm declared over) is kept."""
    await pool.execute(
        """
        UPDATE storm_digests
           SET slack_channel = coalesce(slack_channel, $3), slack_ts = coalesce(slack_ts, $4), claimed_by = NULL,
               attempts = 0, last_error = NULL,
               rendered_version = GREATEST(rendered_version, $2),
               last_rendered_at = coalesce($5, last_rendered_at),
               render_due_at = CASE
                   WHEN render_due_at IS DISTINCT FROM $7 THEN render_due_at
                   ELSE LEAST($6, CASE WHEN version > GREATEST(rendered_version, $2)
                                       THEN GREATEST($8::timestamptz, coalesce($5, last_rendered_at) + $9::interval) END)
                   END
         WHERE id = $1
        """,
        digest_id,
        rendered_version,
        channel,
        ts,
        rendered_at,
        names_due,
        claimed_until,
        now,
        update_every,
    )


async def retry(pool: asyncpg.Pool, digest_id: int, *, error: str, retry_at: datetime, count_attempt: bool = True) -> None:
    await pool.execute(
        """
        UPDATE storm_digests SET render_due_at = $3, last_error = $2, claimed_by = NULL,
               attempts = CASE WHEN $4 THEN attempts ELSE greatest(attempts - 1, 0) END
         WHERE id = $1
        """,
        digest_id,
        error,
        retry_at,
        count_attempt,
    )


async def summary(conn: Conn, digest_id: int, *, listed: int = 15) -> dict[str, Any]:
    """What a digest message shows: counts by status, severity, service and source, and the
    incidents to list (criticals first, then the newest)."""
    counts = await conn.fetch(
        """
        SELECT i.status, i.severity, i.service, i.source, (i.acked_by IS NOT NULL) AS acked, count(*) AS n
          FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE m.digest_id = $1
         GROUP BY 1, 2, 3, 4, 5
        """,
        digest_id,
    )
    shown = await conn.fetch(
        """
        SELECT i.id, i.title, i.severity, i.service, i.env, i.status, i.acked_by, m.folded, m.slack_channel, m.slack_ts
          FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE m.digest_id = $1
         ORDER BY (i.severity = 'critical') DESC, (i.status = 'firing') DESC, m.id DESC
         LIMIT $2
        """,
        digest_id,
        listed,
    )
    return {"counts": [dict(r) for r in counts], "listed": [dict(r) for r in shown]}


async def unnamed(conn: Conn, digest_id: int, *, limit: int) -> list[dict]:
    """Folded incidents no thread reply of the digest has named yet, oldest first."""
    rows = await conn.fetch(
        """
        SELECT m.id AS message_id, i.id, i.title, i.severity, i.service, i.env, i.status
          FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE m.digest_id = $1 AND m.folded AND m.named_at IS NULL
         ORDER BY m.id
         LIMIT $2
        """,
        digest_id,
        limit,
    )
    return [dict(r) for r in rows]


async def mark_named(conn: Conn, message_ids: list[int], *, now: datetime) -> None:
    await conn.execute("UPDATE incident_messages SET named_at = $2 WHERE id = ANY($1::bigint[])", message_ids, now)


async def members(conn: Conn, digest_id: int, *, offset: int = 0, limit: int = 20, firing_only: bool = False) -> tuple[list[dict], int]:
    """The digest's incidents for Show all (a page) and Ack all / Resolve all (firing ones)."""
    total = await conn.fetchval(
        """
        SELECT count(*) FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE m.digest_id = $1 AND (NOT $2 OR i.status = 'firing')
        """,
        digest_id,
        firing_only,
    )
    rows = await conn.fetch(
        """
        SELECT i.id, i.title, i.severity, i.service, i.env, i.status, i.acked_by, i.count
          FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE m.digest_id = $1 AND (NOT $2 OR i.status = 'firing')
         ORDER BY (i.severity = 'critical') DESC, m.id
        OFFSET $3 LIMIT $4
        """,
        digest_id,
        firing_only,
        offset,
        limit,
    )
    return [dict(r) for r in rows], total
