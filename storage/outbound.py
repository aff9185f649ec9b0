"""SQL for outbound channels and their outbox (`outbound_deliveries`).

A delivery row is written in the same transaction as the step that decided it, under a unique
idempotency key, so a step run twice (a replica, a sweep taken over after a crash) writes it once.
Senders claim due rows most severe first with SKIP LOCKED and name themselves as the claimer; a
row whose claimer died (see `storage.workers`) is due again at once, one whose claimer lives is
left to its lease.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

import asyncpg

from storage.workers import claimer_dead

Conn = asyncpg.Pool | asyncpg.Connection

_CHANNEL_COLUMNS = "id, name, kind, settings, managed_by, created_by, created_at, updated_at"
_DELIVERY_COLUMNS = (
    "id, idempotency_key, method, channel_id, incident_id, action, recipient, reason, severity, status, attempts, "
    "next_attempt_at, claimed_by, claimed_until, last_error, detail, created_at, finished_at"
)
SEVERITY_ORDER = "array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], {})"


def _channel(row: asyncpg.Record | None) -> dict | None:
    if row is None:
        return None
    channel = dict(row)
    if isinstance(channel["settings"], str):
        channel["settings"] = json.loads(channel["settings"])
    return channel


# --- channels ------------------------------------------------------------------------------------


async def list_channels(conn: Conn) -> list[dict]:
    return [_channel(r) for r in await conn.fetch(f"SELECT {_CHANNEL_COLUMNS} FROM outbound_channels ORDER BY id")]


async def get_channel(conn: Conn, channel_id: int) -> dict | None:
    return _channel(await conn.fetchrow(f"SELECT {_CHANNEL_COLUMNS} FROM outbound_channels WHERE id = $1", channel_id))


async def channel_by_name(conn: Conn, name: str) -> dict | None:
    return _channel(await conn.fetchrow(f"SELECT {_CHANNEL_COLUMNS} FROM outbound_channels WHERE name = $1", name))


async def get_channels(conn: Conn, channel_ids: Iterable[int]) -> dict[int, dict]:
    rows = await conn.fetch(f"SELECT {_CHANNEL_COLUMNS} FROM outbound_channels WHERE id = ANY($1::bigint[])", list(channel_ids))
    return {r["id"]: _channel(r) for r in rows}


async def first_channel_of_kind(conn: Conn, kind: str) -> dict | None:
    """The transport for personal pages of that kind (SMS: twilio, e-mail: email): the oldest."""
    return _channel(await conn.fetchrow(
        f"SELECT {_CHANNEL_COLUMNS} FROM outbound_channels WHERE kind = $1 ORDER BY id LIMIT 1", kind
    ))


async def create_channel(conn: Conn, *, name: str, kind: str, settings: Mapping[str, Any], created_by: str | None,
                         managed_by: str | None = None) -> dict:
    row = await conn.fetchrow(
        f"""
        INSERT INTO outbound_channels (name, kind, settings, created_by, managed_by)
        VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING {_CHANNEL_COLUMNS}
        """,
        name, kind, json.dumps(dict(settings)), created_by, managed_by,
    )
    return _channel(row)


async def update_channel(conn: Conn, channel_id: int, *, name: str, settings: Mapping[str, Any],
                         managed_by: str | None = None) -> dict | None:
    row = await conn.fetchrow(
        f"""
        UPDATE outbound_channels SET name = $2, settings = $3::jsonb, managed_by = $4, updated_at = now()
         WHERE id = $1 RETURNING {_CHANNEL_COLUMNS}
        """,
        channel_id, name, json.dumps(dict(settings)), managed_by,
    )
    return _channel(row)


async def delete_channel(conn: Conn, channel_id: int) -> bool:
    """False when no such channel. Raises ForeignKeyViolationError while a policy step names it."""
    return (await conn.execute("DELETE FROM outbound_channels WHERE id = $1", channel_id)) != "DELETE 0"


async def policies_using_channel(conn: Conn, channel_id: int) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT p.name FROM escalation_steps s JOIN escalation_policies p ON p.id = s.policy_id
         WHERE s.channel_id = $1 ORDER BY p.name
        """,
        channel_id,
    )
    return [r["name"] for r in rows]


# --- deliveries ----------------------------------------------------------------------------------


async def enqueue(
    conn: Conn,
    *,
    key: str,
    channel_id: int | None,
    incident_id: int | None,
    action: str,
    severity: str,
    now: datetime,
    recipient: str | None = None,
    reason: str | None = None,
    method: str = "channel",
) -> int | None:
    """A delivery to make, due at once; None when one with this key exists already (the step ran
    before). Due at the earlier of `now` and the database's clock: a step taken for a moment a
    test (or a late sweep) names is never held back past the real present."""
    return await conn.fetchval(
        """
        INSERT INTO outbound_deliveries (idempotency_key, channel_id, incident_id, action, severity, recipient, reason,
                                         next_attempt_at, method)
        VALUES ($1, $2, $3, $4, $5, $6, $7, LEAST($8::timestamptz, now()), $9)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
        """,
        key, channel_id, incident_id, action, severity, recipient, reason, now, method,
    )


async def claim_due(conn: Conn, *, now: datetime, worker: str, lease: timedelta, limit: int = 20) -> list[dict]:
    """Due deliveries, most severe first, then oldest; each leased to `worker` for `lease`."""
    rows = await conn.fetch(
        f"""
        UPDATE outbound_deliveries
           SET claimed_by = $3, claimed_until = $1::timestamptz + $4::interval, attempts = attempts + 1
         WHERE id IN (
               SELECT id FROM outbound_deliveries
                WHERE status = 'pending'
                  AND ((next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1))
                       OR {claimer_dead("claimed_by")})
                ORDER BY {SEVERITY_ORDER.format("severity")}, next_attempt_at, id
                LIMIT $2
                  FOR UPDATE SKIP LOCKED)
        RETURNING {_DELIVERY_COLUMNS}
        """,
        now, limit, worker, lease,
    )
    return [dict(r) for r in rows]


async def delivered(conn: Conn, delivery_id: int, *, detail: str, now: datetime) -> None:
    await conn.execute(
        """
        UPDATE outbound_deliveries
           SET status = 'delivered', detail = left($2, 500), finished_at = $3, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1
        """,
        delivery_id, detail, now,
    )


async def retry(conn: Conn, delivery_id: int, *, error: str, at: datetime, count_attempt: bool = True) -> None:
    """Try again at `at`; a wait for a budget or a dead transport does not count as an attempt."""
    await conn.execute(
        """
        UPDATE outbound_deliveries
           SET next_attempt_at = $3, last_error = left($2, 500), claimed_by = NULL, claimed_until = NULL,
               attempts = CASE WHEN $4 THEN attempts ELSE GREATEST(attempts - 1, 0) END
         WHERE id = $1
        """,
        delivery_id, error, at, count_attempt,
    )


async def failed(conn: Conn, delivery_id: int, *, error: str, now: datetime) -> None:
    await conn.execute(
        """
        UPDATE outbound_deliveries
           SET status = 'failed', last_error = left($2, 500), finished_at = $3, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1
        """,
        delivery_id, error, now,
    )


async def get_delivery(conn: Conn, delivery_id: int) -> dict | None:
    row = await conn.fetchrow(f"SELECT {_DELIVERY_COLUMNS} FROM outbound_deliveries WHERE id = $1", delivery_id)
    return dict(row) if row else None


async def deliveries_for_incident(conn: Conn, incident_id: int) -> list[dict]:
    rows = await conn.fetch(
        f"""
        SELECT d.{_DELIVERY_COLUMNS.replace(', ', ', d.')}, c.name AS channel_name, c.kind AS channel_kind
          FROM outbound_deliveries d LEFT JOIN outbound_channels c ON c.id = d.channel_id
         WHERE d.incident_id = $1 ORDER BY d.id
        """,
        incident_id,
    )
    return [dict(r) for r in rows]


async def recent_deliveries(conn: Conn, *, channel_id: int | None = None, limit: int = 50) -> list[dict]:
    rows = await conn.fetch(
        f"""
        SELECT d.{_DELIVERY_COLUMNS.replace(', ', ', d.')}, c.name AS channel_name, c.kind AS channel_kind
          FROM outbound_deliveries d LEFT JOIN outbound_channels c ON c.id = d.channel_id
         WHERE $1::bigint IS NULL OR d.channel_id = $1
         ORDER BY d.id DESC LIMIT $2
        """,
        channel_id, limit,
    )
    return [dict(r) for r in rows]


# Outbound channels an incident was sent to (a trigger or an escalation), so that its
# acknowledgement and resolution reach them too; $1 is the incident.
PAGED_CHANNELS = """
SELECT DISTINCT channel_id FROM outbound_deliveries
 WHERE incident_id = $1 AND method = 'channel' AND action IN ('trigger', 'escalate') AND status <> 'failed'
 ORDER BY channel_id
"""


async def channels_paged(conn: Conn, incident_id: int) -> list[int]:
    return [r["channel_id"] for r in await conn.fetch(PAGED_CHANNELS, incident_id)]


async def health(conn: Conn, *, since: datetime) -> dict[str, Any]:
    """What /health shows: deliveries waiting, retrying, and failed since `since`, per channel."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS retrying,
               count(*) FILTER (WHERE status = 'failed' AND finished_at >= $1) AS failed
          FROM outbound_deliveries
        """,
        since,
    )
    failures = await conn.fetch(
        """
        SELECT DISTINCT ON (1) CASE d.method WHEN 'channel' THEN c.name ELSE d.method END AS channel, d.last_error,
               d.finished_at
          FROM outbound_deliveries d LEFT JOIN outbound_channels c ON c.id = d.channel_id
         WHERE d.status = 'failed' AND d.finished_at >= $1
         ORDER BY 1, d.finished_at DESC
        """,
        since,
    )
    return {**dict(row), "failures": [dict(r) for r in failures]}


async def totals(conn: Conn) -> list[dict]:
    """Deliveries by channel kind and status, for /metrics."""
    rows = await conn.fetch(
        """
        SELECT CASE WHEN d.method = 'slack_dm' THEN 'slack_dm' ELSE coalesce(c.kind, d.method) END AS kind,
               d.status, count(*) AS n
          FROM outbound_deliveries d LEFT JOIN outbound_channels c ON c.id = d.channel_id
         GROUP BY 1, 2
        """
    )
    return [dict(r) for r in rows]


async def get_ref(conn: Conn, channel_id: int, incident_id: int) -> str | None:
    return await conn.fetchval(
        "SELECT ref FROM outbound_refs WHERE channel_id = $1 AND incident_id = $2", channel_id, incident_id
    )


async def set_ref(conn: Conn, channel_id: int, incident_id: int, ref: str) -> None:
    await conn.execute(
        """
        INSERT INTO outbound_refs (channel_id, incident_id, ref) VALUES ($1, $2, $3)
        ON CONFLICT (channel_id, incident_id) DO UPDATE SET ref = EXCLUDED.ref
        """,
        channel_id, incident_id, ref,
    )
