"""SQL for routing rules: the ordered list the pipeline reads per alert, and the editors' changes.

Positions stay 1..n with no gaps. Every change to the order takes an EXCLUSIVE lock on the table
(readers are not blocked) and renumbers inside its transaction; the UNIQUE (position) constraint
is DEFERRABLE INITIALLY DEFERRED, so rows may share a position until the commit.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_COLUMNS = """id, position, name, envs, min_severity, services, sources, tags, continue_matching, channel,
    mention, mention_min_severity, escalate_after_minutes, escalate_to, escalation_levels, runbook_url,
    auto_close_minutes, storm_threshold, group_by, escalation_policy_id, created_by, created_at, updated_at, managed_by"""

# What callers set; the order is the order of $2… in the INSERT and UPDATE below.
EDITABLE: tuple[str, ...] = (
    "name",
    "envs",
    "min_severity",
    "services",
    "sources",
    "tags",
    "continue_matching",
    "channel",
    "mention",
    "mention_min_severity",
    "escalate_after_minutes",
    "escalate_to",
    "escalation_levels",
    "runbook_url",
    "auto_close_minutes",
    "storm_threshold",
    "group_by",
    "escalation_policy_id",
)


def _values(fields: dict[str, Any]) -> list[Any]:
    """The editable columns' values in EDITABLE order; a missing or unknown column is a bug."""
    missing = [c for c in EDITABLE if c not in fields]
    unknown = [c for c in fields if c not in EDITABLE]
    if missing or unknown:
        raise ValueError(f"rule fields: missing {missing}, unknown {unknown}")
    return [list(fields[c]) if c in ("envs", "services", "sources", "group_by") else fields[c] for c in EDITABLE]


async def list_rules(conn: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, Any]]:
    """Every rule in evaluation order (the pipeline calls this per alert: one indexed scan)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM routing_rules ORDER BY position")
    return [dict(r) for r in rows]


async def get_rule(pool: asyncpg.Pool | asyncpg.Connection, rule_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM routing_rules WHERE id = $1", rule_id)
    return dict(row) if row else None


async def create_rule(
    pool: asyncpg.Pool, fields: dict[str, Any], *, created_by: str | None, position: int | None = None
) -> dict[str, Any]:
    """Append the rule, or insert it at `position` (1-based, clamped), moving the rules there down.
    `position` may also come in `fields`."""
    fields = dict(fields)
    position = fields.pop("position", position)
    values = _values(fields)
    async with pool.acquire() as conn, conn.transaction():
        count = await _lock_and_count(conn)
        target = count + 1 if position is None else min(max(position, 1), count + 1)
        await conn.execute("UPDATE routing_rules SET position = position + 1 WHERE position >= $1", target)
        row = await conn.fetchrow(
            f"""
            INSERT INTO routing_rules (position, name, envs, min_severity, services, sources, tags,
                                       continue_matching, channel, mention, mention_min_severity,
                                       escalate_after_minutes, escalate_to, escalation_levels, runbook_url,
                                       auto_close_minutes, storm_threshold, group_by, escalation_policy_id,
                                       created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
            RETURNING {_COLUMNS}
            """,
            target,
            *values,
            created_by,
        )
    return dict(row)


async def update_rule(pool: asyncpg.Pool, rule_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Store every editable column of the rule (its place in the order is `move_rule`'s business)."""
    row = await pool.fetchrow(
        f"""
        UPDATE routing_rules
           SET name = $2, envs = $3, min_severity = $4, services = $5, sources = $6, tags = $7,
               continue_matching = $8, channel = $9, mention = $10, mention_min_severity = $11,
               escalate_after_minutes = $12, escalate_to = $13, escalation_levels = $14, runbook_url = $15,
               auto_close_minutes = $16, storm_threshold = $17, group_by = $18, escalation_policy_id = $19,
               updated_at = now()
         WHERE id = $1
        RETURNING {_COLUMNS}
        """,
        rule_id,
        *_values(fields),
    )
    return dict(row) if row else None


async def delete_rule(pool: asyncpg.Pool, rule_id: int) -> bool:
    """Delete the rule and close the gap, so positions stay 1..n."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_and_count(conn)
        position = await conn.fetchval("DELETE FROM routing_rules WHERE id = $1 RETURNING position", rule_id)
        if position is None:
            return False
        await conn.execute("UPDATE routing_rules SET position = position - 1 WHERE position > $1", position)
    return True


async def move_rule(pool: asyncpg.Pool, rule_id: int, position: int) -> dict[str, Any] | None:
    """Put the rule at `position` (1-based, clamped to 1..n); the rules in between shift by one."""
    async with pool.acquire() as conn, conn.transaction():
        count = await _lock_and_count(conn)
        current = await conn.fetchval("SELECT position FROM routing_rules WHERE id = $1", rule_id)
        if current is None:
            return None
        target = min(max(position, 1), count)
        if target == current:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM routing_rules WHERE id = $1", rule_id)
            return dict(row)
        await conn.execute(
            """
            UPDATE routing_rules
               SET position = position + CASE WHEN $2::int < $1::int THEN 1 ELSE -1 END
             WHERE position BETWEEN least($1::int, $2::int) AND greatest($1::int, $2::int) AND position <> $1::int
            """,
            current,
            target,
        )
        row = await conn.fetchrow(
            f"UPDATE routing_rules SET position = $2, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            rule_id,
            target,
        )
    return dict(row)


async def _lock_and_count(conn: asyncpg.Connection) -> int:
    """Serialize changes to the order (readers still read), then count the rules."""
    await conn.execute("LOCK TABLE routing_rules IN EXCLUSIVE MODE")
    return await conn.fetchval("SELECT count(*) FROM routing_rules")
