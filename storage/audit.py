"""The audit log: who did what to which thing, and when. Every interactive action writes here.

Each entry is also a platform event of type "action", so the event timeline (`GET /api/events`)
shows what people did next to what CI, deploys and monitors reported.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from storage import platform_events


async def record_action(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int | None,
    details: dict[str, Any] | None = None,
) -> int:
    """Write the entry and its "action" event; on a pool both commit together, on a connection
    they join the caller's transaction."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as connection, connection.transaction():
            return await record_action(
                connection, actor=actor, action=action, target_type=target_type, target_id=target_id, details=details
            )
    target = target_type if target_id is None else f"{target_type}:{target_id}"
    audit_id = await conn.fetchval(
        """
        INSERT INTO audit_log (actor, action, target_type, target_id, details)
        VALUES ($1, $2, $3, $4, $5) RETURNING id
        """,
        actor,
        action,
        target_type,
        None if target_id is None else str(target_id),
        details or {},
    )
    await platform_events.insert_action(conn, actor=actor, action=action, target=target, details=details)
    return audit_id


async def list_actions(pool: asyncpg.Pool, *, target_type: str, target_id: str | int, limit: int = 50) -> list[dict]:
    rows = await pool.fetch(
        "SELECT actor, action, details, at FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY at DESC, id DESC LIMIT $3",
        target_type,
        str(target_id),
        limit,
    )
    return [dict(r) for r in rows]
