"""The audit log: who did what to which thing, and when. Every interactive action writes here."""

from __future__ import annotations

from typing import Any

import asyncpg


async def record_action(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int | None,
    details: dict[str, Any] | None = None,
) -> int:
    return await conn.fetchval(
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


async def list_actions(pool: asyncpg.Pool, *, target_type: str, target_id: str | int, limit: int = 50) -> list[dict]:
    rows = await pool.fetch(
        "SELECT actor, action, details, at FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY at DESC, id DESC LIMIT $3",
        target_type,
        str(target_id),
        limit,
    )
    return [dict(r) for r in rows]
