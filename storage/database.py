"""The asyncpg pool, with JSON codecs so jsonb columns read and write Python objects."""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable

import asyncpg

# What "the database is unavailable" looks like to a caller: refused or dropped connections, a
# closed pool, a timeout, or a server-side error. InternalClientError is asyncpg's own state
# machine tripping over a connection the server has just killed ("cannot switch to state 15;
# another operation is in progress"): a pooled connection whose FATAL arrived while it was idle.
DATABASE_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database could not serve the call (answer 503, retry later), not a
    bug (500). Follows the exception's cause chain: cleanup code (a ROLLBACK on a dead connection,
    a pool release) often raises something else while handling the original database error.
    An explicit `raise … from None` hides the cause on purpose and is respected."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DATABASE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: Pulser never SETs, LISTENs or keeps cursors on pool connections,
    and its advisory locks are transaction-scoped (the migration lock is released in `finally`).
    asyncpg still rolls back an open transaction first. Skipping the default reset query
    (unlock_all; CLOSE ALL; UNLISTEN *; RESET ALL) saves a round trip per pool call — about 40 %
    of the cost of a short query (bench/pipeline.py)."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; every connection speaks UTC so timestamptz values never shift."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"timezone": "UTC", "application_name": "pulser"},
        command_timeout=30,
    )


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> None:
    """Raise if the database does not answer a trivial query within `timeout` seconds."""
    async with pool.acquire(timeout=timeout) as conn:
        await conn.fetchval("SELECT 1", timeout=timeout)


async def connect_listener(dsn: str) -> asyncpg.Connection:
    """A connection of its own for LISTEN: held for the life of the process, so never a pool's."""
    return await asyncpg.connect(dsn, server_settings={"application_name": "pulser-listen"})


class Listener:
    """LISTEN on one channel over a dedicated connection, calling `on_notify()` per NOTIFY.

    Wake-ups are an optimisation: every user also runs on a timer, so a lost connection only
    costs latency. `ensure()` (re)opens it and is cheap to call on every loop iteration.
    """

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]] | None, channel: str,
                 on_notify: Callable[[str], None]):
        self._connect = connect
        self.channel = channel
        self._on_notify = on_notify
        self._conn: asyncpg.Connection | None = None

    async def ensure(self) -> bool:
        if self._connect is None:
            return False
        if self._conn is not None and not self._conn.is_closed():
            return True
        try:
            self._conn = await self._connect()
            await self._conn.add_listener(self.channel, self._callback)
        except DATABASE_ERRORS:
            self._conn = None
            return False
        return True

    def _callback(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._on_notify(payload)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 2)
        except (*DATABASE_ERRORS, asyncio.TimeoutError):
            conn.terminate()
