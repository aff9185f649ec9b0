"""SQL for silences and inhibition rules. Rows come back as plain dicts; `matchers`,
`source_matchers` and `target_matchers` are the jsonb lists of `{"name", "op", "value"}` as stored
(the pool's codec decodes them), `equal` a list of label names.

Read functions take a pool or a connection: the alert pipeline asks inside its own transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

_SILENCE = "id, matchers, comment, created_by, starts_at, ends_at, expired_by, created_at, managed_by"
_RULE = "id, name, source_matchers, target_matchers, equal, created_by, created_at, managed_by"
# The table demands ends_at > starts_at, so a silence ended before it began keeps this sliver.
_SLIVER = timedelta(microseconds=1)


async def create_silence(
    pool: Conn,
    *,
    matchers: list[dict[str, str]],
    starts_at: datetime | None,
    ends_at: datetime,
    comment: str,
    created_by: str,
) -> dict[str, Any]:
    """Insert a silence; `starts_at=None` means the database's now."""
    row = await pool.fetchrow(
        f"""
        INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by)
        VALUES ($1, coalesce($2, now()), $3, $4, $5)
        RETURNING {_SILENCE}
        """,
        matchers,
        starts_at,
        ends_at,
        comment,
        created_by,
    )
    return dict(row)


async def get_silence(pool: Conn, silence_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_SILENCE} FROM silences WHERE id = $1", silence_id)
    return dict(row) if row else None


async def active_silences(conn: Conn, now: datetime) -> list[dict[str, Any]]:
    """Silences in force at `now`, oldest first (so the first match is the longest-standing one)."""
    rows = await conn.fetch(
        f"""
        SELECT {_SILENCE} FROM silences
         WHERE starts_at <= $1 AND ends_at > $1 AND expired_by IS NULL
         ORDER BY id
        """,
        now,
    )
    return [dict(r) for r in rows]


async def list_silences(
    pool: Conn, *, now: datetime, include_expired: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Active and pending silences, soonest-ending first; with `include_expired`, ended ones
    follow, most recently ended first."""
    rows = await pool.fetch(
        f"""
        SELECT {_SILENCE} FROM silences
         WHERE $2 OR (ends_at > $1 AND expired_by IS NULL)
         ORDER BY (ends_at > $1 AND expired_by IS NULL) DESC,
                  CASE WHEN ends_at > $1 AND expired_by IS NULL THEN ends_at END ASC,
                  ends_at DESC, id DESC
         LIMIT $3
        """,
        now,
        include_expired,
        limit,
    )
    return [dict(r) for r in rows]


async def expire_silence(pool: Conn, silence_id: int, *, by: str, now: datetime) -> dict[str, Any] | None:
    """End a silence at `now` (a pending one never starts); None if unknown or already ended."""
    row = await pool.fetchrow(
        f"""
        UPDATE silences
           SET ends_at = $3, expired_by = $2, starts_at = least(starts_at, $3 - $4::interval)
         WHERE id = $1 AND ends_at > $3 AND expired_by IS NULL
        RETURNING {_SILENCE}
        """,
        silence_id,
        by,
        now,
        _SLIVER,
    )
    return dict(row) if row else None


async def create_inhibition_rule(
    pool: Conn,
    *,
    name: str,
    source_matchers: list[dict[str, str]],
    target_matchers: list[dict[str, str]],
    equal: list[str],
    created_by: str,
) -> dict[str, Any]:
    row = await pool.fetchrow(
        f"""
        INSERT INTO inhibition_rules (name, source_matchers, target_matchers, equal, created_by)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING {_RULE}
        """,
        name,
        source_matchers,
        target_matchers,
        equal,
        created_by,
    )
    return dict(row)


async def list_inhibition_rules(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_RULE} FROM inhibition_rules ORDER BY id")
    return [dict(r) for r in rows]


async def count_inhibition_rules(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM inhibition_rules")


async def get_inhibition_rule(pool: Conn, rule_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_RULE} FROM inhibition_rules WHERE id = $1", rule_id)
    return dict(row) if row else None


async def delete_inhibition_rule(pool: Conn, rule_id: int) -> bool:
    result = await pool.execute("DELETE FROM inhibition_rules WHERE id = $1", rule_id)
    return result.endswith(" 1")
