"""SQL for Heroku rollbacks started from Slack: one at a time per incident, across every process.

A double click on Rollback, or two people clicking at once, may land on two replicas. Each attempt
holds a transaction-scoped advisory lock keyed by the incident for as long as it talks to Heroku;
a second attempt does not wait for it but is told one is under way. Transaction-scoped, because
the pool does not reset sessions: a lock can never outlive the attempt, even if its process dies.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import AsyncIterator

import asyncpg

# Namespaces the lock key, so it cannot collide with another advisory lock's key.
_LOCK_PREFIX = "pulser.heroku_rollback:"


@contextlib.asynccontextmanager
async def claim(pool: asyncpg.Pool, incident_id: int) -> AsyncIterator[asyncpg.Connection | None]:
    """A connection inside a transaction holding the incident's rollback lock, or None when another
    attempt (in any process) holds it. Writes made on the connection commit as the lock is let go."""
    async with pool.acquire() as conn, conn.transaction():
        got = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"{_LOCK_PREFIX}{incident_id}"
        )
        yield conn if got else None


async def last_success(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> tuple[str, datetime] | None:
    """(who, when) of the incident's last rollback that Heroku accepted, from the audit log."""
    row = await conn.fetchrow(
        """
        SELECT actor, at FROM audit_log
         WHERE target_type = 'incident' AND target_id = $1 AND action = 'heroku.rollback'
           AND details->>'outcome' = 'ok'
         ORDER BY at DESC, id DESC
         LIMIT 1
        """,
        str(incident_id),
    )
    return (row["actor"], row["at"]) if row else None
