"""SQL for process liveness: which Pulser processes are running, so that work claimed by one that
died is taken over at once instead of when its lease runs out.

Why a table and not a session advisory lock: a lock lives on one connection, and a connection
pooler in transaction mode (PgBouncer) hands connections around; a row every process refreshes
works behind any pooler. A process is alive while it refreshed its row within `ALIVE_FOR`.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

# How often a process says it is alive, and how long one that stopped saying so is still trusted.
BEAT_EVERY = timedelta(seconds=2)
ALIVE_FOR = timedelta(seconds=10)

def claimer_dead(claimer: str) -> str:
    """SQL: true when the worker named by the column `claimer` said it was alive and then stopped
    (a kill -9, a lost host). Used inside claim queries: such a row is due whatever its lease says.
    A claimer that never said so (a worker outside a running Pulser, e.g. a script) is left to its
    lease; one that stopped cleanly released its claims before it forgot itself."""
    return (
        f"({claimer} IS NOT NULL AND EXISTS (SELECT 1 FROM pulser_workers w"
        f" WHERE w.name = {claimer} AND w.seen_at < now() - interval '{int(ALIVE_FOR.total_seconds())} seconds'))"
    )


async def beat(pool: asyncpg.Pool, name: str) -> None:
    await pool.execute(
        """
        INSERT INTO pulser_workers (name) VALUES ($1)
        ON CONFLICT (name) DO UPDATE SET seen_at = now()
        """,
        name,
    )


async def forget(pool: asyncpg.Pool, name: str) -> None:
    """A clean shutdown: this process has released its claims and will not come back."""
    await pool.execute("DELETE FROM pulser_workers WHERE name = $1", name)


async def prune(pool: asyncpg.Pool, *, older_than: timedelta = timedelta(days=1)) -> int:
    result = await pool.execute("DELETE FROM pulser_workers WHERE seen_at < now() - $1::interval", older_than)
    return int(result.split()[-1])


async def alive(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT name FROM pulser_workers WHERE seen_at > now() - $1::interval ORDER BY name", ALIVE_FOR
    )
    return [r["name"] for r in rows]
