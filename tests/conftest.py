"""Shared fixtures: a real Postgres, a fresh database per test, the Slack sandbox, a running Pulser.

Postgres is the embedded server (started once per session in a temp dir) unless
TEST_DATABASE_URL names one. Each test gets its own database cloned from a template that already
has every migration applied, so tests are isolated and cost ~20 ms each to set up.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from storage import database
from storage.embedded import EmbeddedPostgres
from storage.migrations import apply_migrations

# Every answer a sidecar gives in the suite is checked against the OpenAPI document. The outbound
# channels' stand-ins (Discord, Teams, GitHub, Twilio, PagerDuty, SMTP) are fixtures for every file.
pytest_plugins = ["tests.openapi_conformance", "tests.outbound_fixtures"]

# One template per xdist worker: workers sharing a TEST_DATABASE_URL server must not drop each
# other's template while cloning it.
TEMPLATE_DB = "pulser_test_template_" + os.environ.get("PYTEST_XDIST_WORKER", "main")

# The SDK reads proxy variables and ignores NO_PROXY; tests talk to loopback only.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)


def with_database(dsn: str, name: str) -> str:
    """The same server DSN pointing at another database (keeps query-string host sockets)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[str]:
    """Admin DSN of the test server (database `postgres`)."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="pulser-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp), database="postgres")
        dsn = await server.start()
        await _throwaway_durability(dsn)
        try:
            yield dsn
        finally:
            await server.stop()


async def _throwaway_durability(dsn: str) -> None:
    """A test server's data dies with the test run, so it need not survive a power cut."""
    admin = await asyncpg.connect(dsn)
    try:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            await admin.execute(f"ALTER SYSTEM SET {setting} = off")
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def admin(pg_server: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the server's `postgres` database for creating and emptying test databases."""
    conn = await asyncpg.connect(pg_server)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def template_database(pg_server: str, admin: asyncpg.Connection) -> str:
    await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
    await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    pool = await database.create_pool(with_database(pg_server, TEMPLATE_DB), max_size=1)
    try:
        await apply_migrations(pool)
    finally:
        await pool.close()
    return TEMPLATE_DB


async def _create_database(admin: asyncpg.Connection, template: str | None) -> str:
    name = "pulser_test_" + uuid.uuid4().hex[:12]
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"')
    return name


async def _drop_database(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Databases a finished test left empty again, ready for the next test of this worker. Creating and
# dropping a database costs ~120 ms of the kernel's time each (file copies and checkpoints), on a
# machine of 2 cores running 4 workers; emptying one costs a few milliseconds.
_emptied_databases: list[str] = []


async def _empty_again(pg_server: str, admin: asyncpg.Connection, name: str) -> bool:
    """Put `name` back as the template left it: no sessions, no rows, sequences at 1, no database
    settings. False when it cannot be (a test changed the schema): it is dropped instead."""
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true CONNECTION LIMIT -1')
        await admin.execute(f'ALTER DATABASE "{name}" RESET ALL')
        await _end_sessions(admin, name)
        conn = await asyncpg.connect(with_database(pg_server, name))
        try:
            tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            if set(tables) != await _template_tables(pg_server):
                return False
            if await _schema_fingerprint(conn) != await _template_fingerprint(pg_server):
                return False  # a constraint, column, index, trigger or function a test added or dropped
            # Only the tables a test wrote to: truncating all sixty-odd costs ~0.4 s (new files for
            # each table and index), asking which hold rows is one statement.
            holding = await conn.fetch(" UNION ALL ".join(
                f"SELECT '{t}' AS t WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables if t != "schema_migrations"
            ))
            if holding:
                await conn.execute(f"TRUNCATE {', '.join(chr(34) + r['t'] + chr(34) for r in holding)} CASCADE")
            # Every sequence a test advanced starts at 1 again (rolled-back inserts advance them too).
            await conn.execute(
                "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) FROM pg_sequences"
                " WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
        finally:
            await conn.close()
        return True
    except (asyncpg.PostgresError, OSError, asyncio.TimeoutError):
        return False


async def _end_sessions(admin: asyncpg.Connection, name: str) -> None:
    """Terminate whatever a test left connected and wait until those sessions are gone."""
    for _ in range(500):
        left = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        if not left:
            return
        await asyncio.sleep(0.01)
    raise asyncio.TimeoutError(f"sessions on {name} did not end")


_template_table_names: set[str] = set()
_template_fingerprints: list[str] = []

# Everything of the public schema a test could change besides rows: relations (tables, indexes,
# sequences), columns, constraints, functions and triggers.
_SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
    SELECT 'r:' || c.relname || ':' || c.relkind::text FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'a:' || c.relname || ':' || a.attname || ':' || a.atttypid::text || ':' || a.attnotnull::text FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'c:' || con.conname || ':' || pg_get_constraintdef(con.oid) FROM pg_constraint con
      JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'f:' || p.proname || ':' || md5(p.prosrc) FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
    UNION ALL
    SELECT 't:' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
) s(x)
"""


async def _schema_fingerprint(conn: asyncpg.Connection) -> str:
    return await conn.fetchval(_SCHEMA_FINGERPRINT)


async def _template_fingerprint(pg_server: str) -> str:
    if not _template_fingerprints:
        conn = await asyncpg.connect(with_database(pg_server, TEMPLATE_DB))
        try:
            _template_fingerprints.append(await _schema_fingerprint(conn))
        finally:
            await conn.close()
    return _template_fingerprints[0]


async def _template_tables(pg_server: str) -> set[str]:
    if not _template_table_names:
        conn = await asyncpg.connect(with_database(pg_server, TEMPLATE_DB))
        try:
            _template_table_names.update(
                r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        finally:
            await conn.close()
    return _template_table_names


@pytest.fixture
async def database_url(pg_server: str, template_database: str, admin: asyncpg.Connection) -> AsyncIterator[str]:
    """A fully migrated database with no rows, for this test alone."""
    name = _emptied_databases.pop() if _emptied_databases else await _create_database(admin, template_database)
    yield with_database(pg_server, name)
    if await _empty_again(pg_server, admin, name):
        _emptied_databases.append(name)
    else:
        await _drop_database(admin, name)


@pytest.fixture
async def empty_database_url(pg_server: str, admin: asyncpg.Connection) -> AsyncIterator[str]:
    """A fresh database with no tables at all (for migration tests)."""
    name = await _create_database(admin, None)
    yield with_database(pg_server, name)
    await _drop_database(admin, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await database.create_pool(database_url, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def writer(pool: asyncpg.Pool) -> AsyncIterator:
    """The sidecar's real batching heartbeat writer on the test's database (failures and
    recoveries go through a real alert pipeline; SLACK_CHANNEL does not matter to them)."""
    from alerts.heartbeat_writer import HeartbeatWriter
    from alerts.pipeline import AlertPipeline, PipelineSettings

    writer = HeartbeatWriter(pool, AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts")))
    await writer.start()
    yield writer
    await writer.stop()


@pytest.fixture(autouse=True)
def fresh_admin_answers():
    """Each test is a fresh workspace: no cached users.info answers from an earlier sandbox."""
    from handlers.slack.admin import forget_answers

    forget_answers()


@pytest.fixture
async def sandbox() -> AsyncIterator:
    from sandbox import SlackSandbox

    sb = SlackSandbox(host="127.0.0.1", port=0)
    await sb.start()
    yield sb
    await sb.stop()


def make_settings(**env: str) -> Settings:
    base = {"PULSER_HTTP_PORT": "0", "LOG_FORMAT": "json"}
    base.update(env)
    return load_settings(base)


@pytest.fixture
def settings(database_url: str, sandbox) -> Settings:
    """Settings of a Pulser pointed at the sandbox as if it were Slack (tokens set, SLACK_API_URL)."""
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
    )


@pytest.fixture
async def pulser(settings: Settings, sandbox) -> AsyncIterator[Runtime]:
    """A started `pulser run`, connected to the sandbox over Socket Mode."""
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected(timeout=30)  # generous: a loaded CI machine is slow, a fast one returns at once
        await sandbox.wait_for_connection(timeout=30)
        yield runtime
    finally:
        await runtime.stop()


class StoppedClock:
    """A monotonic clock that moves only when the test says so (`advance`), for limits, caches and
    backoffs that would otherwise make a test depend on how busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll an async or sync predicate until it returns a truthy value; returns that value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def handled(pool, envelope: dict, *, team_id: str = "T0SANDBOX", timeout: float = 30.0):
    """Wait until a Slack envelope's ledger row is `processed`: its listener has returned, so all it
    was going to do is done — the positive signal after which a test may assert that something
    did not happen. Returns the row."""
    from bot.socket_mode import ledger_key
    from storage import envelopes

    key = ledger_key(envelope["type"], envelope.get("payload") or {}, envelope["envelope_id"])

    async def processed():
        row = await envelopes.get_envelope(pool, source="slack", scope=team_id, envelope_id=key)
        return row if row is not None and row.status == "processed" else None

    return await eventually(processed, timeout=timeout)
