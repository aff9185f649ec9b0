"""The Slack delivery log: one row per Web API call the alert pipeline makes, for /health,
`GET /api/delivery` and post-mortems ("did Slack get it, when, what did it say?")."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def record_delivery(
    pool: asyncpg.Pool,
    *,
    method: str,
    channel: str | None,
    ok: bool,
    latency_ms: float,
    error: str | None = None,
    incident_id: int | None = None,
    notification_id: int | None = None,
) -> None:
    await pool.execute(
        """
        INSERT INTO slack_deliveries (method, channel, incident_id, notification_id, ok, error, latency_ms)
        VALUES ($1, $2, $3, $4, $5, left($6, 500), $7)
        """,
        method,
        channel,
        incident_id,
        notification_id,
        ok,
        error,
        latency_ms,
    )


async def last_success(pool: asyncpg.Pool) -> datetime | None:
    return await pool.fetchval("SELECT max(at) FROM slack_deliveries WHERE ok")


async def recent_failures(pool: asyncpg.Pool, *, limit: int = 20) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT at, method, channel, incident_id, notification_id, error, latency_ms
          FROM slack_deliveries WHERE NOT ok ORDER BY at DESC LIMIT $1
        """,
        limit,
    )
    return [dict(r) for r in rows]


async def summary_since(pool: asyncpg.Pool, since: datetime) -> dict[str, float | int | None]:
    row = await pool.fetchrow(
        """
        SELECT count(*) FILTER (WHERE ok) AS ok,
               count(*) FILTER (WHERE NOT ok) AS failed,
               count(*) FILTER (WHERE error = 'ratelimited') AS rate_limited,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE ok) AS p50_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE ok) AS p99_ms
          FROM slack_deliveries WHERE at >= $1
        """,
        since,
    )
    return dict(row)


async def deliveries_for_incident(pool: asyncpg.Pool, incident_id: int) -> list[dict]:
    rows = await pool.fetch(
        "SELECT at, method, channel, ok, error, latency_ms FROM slack_deliveries WHERE incident_id = $1 ORDER BY id",
        incident_id,
    )
    return [dict(r) for r in rows]


async def delete_before(pool: asyncpg.Pool, *, days: int) -> int:
    result = await pool.execute("DELETE FROM slack_deliveries WHERE at < now() - make_interval(days => $1)", days)
    return int(result.split()[-1])
