"""SQL for heartbeat history: bulk insert, the newest events of an app, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import asyncpg


@dataclass(frozen=True)
class HeartbeatRow:
    app_id: int
    kind: str
    exit_code: int | None
    received_at: datetime
    client_time: str | None
    duration_ms: int | None
    method: str
    remote_addr: str | None
    user_agent: str | None
    body: str | None
    metadata: Any


async def insert_heartbeats(conn: asyncpg.Connection, rows: Sequence[HeartbeatRow]) -> None:
    """One statement for a whole batch (the writer's group commit)."""
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO heartbeats (app_id, kind, exit_code, received_at, client_time, duration_ms, method,
                                remote_addr, user_agent, body, metadata)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::bigint[],
                             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]::jsonb[])
        """,
        [r.app_id for r in rows],
        [r.kind for r in rows],
        [r.exit_code for r in rows],
        [r.received_at for r in rows],
        [r.client_time for r in rows],
        [r.duration_ms for r in rows],
        [r.method for r in rows],
        [r.remote_addr for r in rows],
        [r.user_agent for r in rows],
        [r.body for r in rows],
        [None if r.metadata is None else _json(r.metadata) for r in rows],
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


async def list_heartbeats(pool: asyncpg.Pool, app_id: int, *, limit: int = 100) -> list[dict]:
    rows = await pool.fetch(
        """
        SELECT id, kind, exit_code, received_at, client_time, duration_ms, method, remote_addr, user_agent,
               body, metadata
          FROM heartbeats WHERE app_id = $1 ORDER BY id DESC LIMIT $2
        """,
        app_id,
        limit,
    )
    return [dict(r) for r in rows]


async def prune_heartbeats(pool: asyncpg.Pool, *, keep: int, batch_apps: int = 500) -> int:
    """Delete all but the newest `keep` events of every app; returns how many rows went."""
    result = await pool.execute(
        """
        DELETE FROM heartbeats h
         USING (
            SELECT app_id, id AS cutoff FROM (
                SELECT app_id, id, row_number() OVER (PARTITION BY app_id ORDER BY id DESC) AS rn
                  FROM heartbeats
                 WHERE app_id IN (SELECT app_id FROM heartbeats GROUP BY app_id HAVING count(*) > $1 LIMIT $2)
            ) ranked WHERE rn = $1
         ) c
         WHERE h.app_id = c.app_id AND h.id < c.cutoff
        """,
        keep,
        batch_apps,
    )
    return int(result.split()[-1])
