"""The sidecar while its database goes away under load: every failure is a JSON 503 with
Retry-After, never a 500, and every heartbeat acknowledged with a 200 is in Postgres afterwards.

The outage is real but confined to this test's own database, so the shared server stays up:
`ALTER DATABASE … ALLOW_CONNECTIONS false` refuses reconnects and `pg_terminate_backend()` breaks
every open connection, mid-query or idle, exactly as a Postgres restart would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from alerts.applications import validate_application
from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import applications
from storage.applications import Application
from storage.database import is_database_unavailable
from tests import webhook_senders as send
from tests.admin_api import AUTH, TOKEN
from tests.conftest import eventually, make_settings

CLIENTS = 12  # concurrent heartbeat senders
APPS = 120  # enough apps that the per-UUID rate limit rarely answers for the load


class Outage:
    """Cuts this test's database off from every client, and gives it back."""

    def __init__(self, pg_server: str, database_url: str):
        self.pg_server = pg_server
        self.name = urlsplit(database_url).path.lstrip("/")

    async def _admin(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.pg_server)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def kill_connections(self) -> None:
        """Break every open connection; new ones are still allowed (a restart that came back)."""
        await self._admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'"
            " AND pid <> pg_backend_pid()"
        )

    async def begin(self) -> None:
        """Refuse new connections first, then break the open ones: nothing can get back in."""
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        await self.kill_connections()

    async def end(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@pytest.fixture
async def outage(pg_server: str, database_url: str) -> AsyncIterator[Outage]:
    cut = Outage(pg_server, database_url)
    yield cut
    await cut.end()  # before the sidecar stops and the database is dropped


@pytest.fixture
async def sidecar(database_url: str, outage: Outage) -> AsyncIterator[Runtime]:
    settings = make_settings(DATABASE_URL=database_url, PULSER_ADMIN_TOKEN=TOKEN, **send.SECRETS_ENV)
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    await runtime.start()
    yield runtime
    await outage.end()
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", timeout=30, limits=limits) as client:
        yield client


async def register(runtime: Runtime, name: str) -> Application:
    spec = validate_application({"name": name, "expected_interval": 300}, default_channel="#ops-alerts")
    return await applications.create_application(runtime.pool, spec, created_by="test")


def assert_json_503(response: httpx.Response) -> None:
    """The one answer a client may get while the database is away."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["error"] == "database unavailable" and body["detail"]


@dataclass
class Load:
    """Heartbeats from CLIENTS concurrent senders, each tagged (X-Client-Time) so that every one
    answered 200 can be looked up in the heartbeats table afterwards."""

    http: httpx.AsyncClient
    apps: list[Application]
    statuses: Counter = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    _tags: itertools.count = field(default_factory=itertools.count)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _sender(self, first: int) -> None:
        for i in itertools.count(first, CLIENTS):
            if self._stop.is_set():
                return
            tag = f"load-{next(self._tags)}"
            app = self.apps[i % len(self.apps)]
            response = await self.http.post(f"/heartbeat/{app.uuid}", headers={"X-Client-Time": tag})
            self.statuses[response.status_code] += 1
            if response.status_code == 200:
                self.acknowledged.append(tag)
            elif response.status_code == 503:
                try:
                    assert_json_503(response)
                except (AssertionError, KeyError, ValueError):
                    self.bad.append((response.status_code, response.text))
            elif response.status_code != 429:
                self.bad.append((response.status_code, response.text))

    def start(self) -> list[asyncio.Task]:
        self._tasks = [asyncio.create_task(self._sender(n)) for n in range(CLIENTS)]
        return self._tasks

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def more(self, status: int, than: int):
        """A condition for `eventually`: more answers with `status` than `than`."""
        return lambda: self.statuses[status] > than


async def stored_tags(runtime: Runtime) -> set[str]:
    rows = await runtime.pool.fetch("SELECT client_time FROM heartbeats WHERE client_time LIKE 'load-%'")
    return {row["client_time"] for row in rows}


# --- heartbeats under load ------------------------------------------------------------------------


async def test_heartbeats_under_load_get_only_json_503s_while_the_database_goes_away_and_no_200_is_lost(
    sidecar, http, outage
):
    apps = [await register(sidecar, f"job-{i}") for i in range(APPS)]
    load = Load(http, apps)
    load.start()
    try:
        await eventually(load.more(200, 100), timeout=30)
        # Connections broken mid-batch, several times, while the pool reconnects in between.
        for _ in range(5):
            await outage.kill_connections()
            await eventually(load.more(200, load.statuses[200] + 50), timeout=30)
        # Then a database that refuses every connection for a while.
        await outage.begin()
        await eventually(load.more(503, load.statuses[503] + 200), timeout=30)
        await outage.end()
        await eventually(load.more(200, load.statuses[200] + 50), timeout=30)
    finally:
        await load.stop()
    assert load.bad == []
    assert load.statuses[503] > 0
    assert set(load.statuses) <= {200, 429, 503}
    missing = set(load.acknowledged) - await stored_tags(sidecar)
    assert missing == set(), f"{len(missing)} heartbeats answered 200 are not in the database"


async def test_a_heartbeat_is_a_json_503_with_retry_after_while_connections_are_refused(sidecar, http, outage):
    app = await register(sidecar, "nightly")
    await outage.begin()
    assert_json_503(await http.post(f"/heartbeat/{app.uuid}"))


async def test_a_heartbeat_is_accepted_again_once_the_database_is_back(sidecar, http, outage):
    app = await register(sidecar, "nightly")
    await outage.begin()
    assert (await http.post(f"/heartbeat/{app.uuid}")).status_code == 503
    await outage.end()
    response = await eventually(lambda: _ok(http.post(f"/heartbeat/{app.uuid}")), timeout=30)
    assert response.json()["ok"] is True


async def _ok(request) -> httpx.Response | None:
    response = await request
    return response if response.status_code == 200 else None


async def test_bulk_heartbeats_are_a_json_503_while_connections_are_refused(sidecar, http, outage):
    app = await register(sidecar, "nightly")
    await outage.begin()
    assert_json_503(await http.post("/heartbeats", json=[str(app.uuid)]))


# --- webhooks, events, the API and /health ----------------------------------------------------------


async def test_a_webhook_is_a_json_503_while_connections_are_refused_and_202_once_back(sidecar, http, outage):
    headers, body = send.generic({"title": "disk full", "service": "db"}, idempotency_key="outage-1")
    await outage.begin()
    assert_json_503(await http.post("/webhooks/generic", content=body, headers=headers))
    await outage.end()
    deliver = lambda: _accepted(http.post("/webhooks/generic", content=body, headers=headers))  # noqa: E731
    response = await eventually(deliver, timeout=30)
    assert response.json()["status"] == "accepted"


async def _accepted(request) -> httpx.Response | None:
    response = await request
    return response if response.status_code == 202 else None


async def test_a_platform_event_is_a_json_503_while_connections_are_refused(sidecar, http, outage):
    await outage.begin()
    response = await http.post(
        "/events",
        json={"event_type": "deploy", "status": "started", "service": "billing"},
        headers={"Authorization": f"Bearer {send.WEBHOOK_TOKEN}"},
    )
    assert_json_503(response)


@pytest.mark.parametrize("path", ["/api/applications", "/api/rules", "/api/silences", "/api/events", "/api/status"])
async def test_an_api_route_is_a_json_503_while_connections_are_refused(sidecar, http, outage, path):
    await outage.begin()
    assert_json_503(await http.get(path, headers=AUTH))


async def test_health_is_a_503_saying_the_database_is_down_while_connections_are_refused(sidecar, http, outage):
    await outage.begin()
    response = await http.get("/health")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["status"] == "down" and body["components"]["database"]["status"] == "down"
    assert body["error"] == "database unavailable" and body["detail"]


# --- what counts as the database being unavailable ------------------------------------------------


def test_asyncpg_tripping_over_a_killed_connection_counts_as_the_database_being_unavailable():
    error = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    assert is_database_unavailable(error)


def test_an_error_raised_while_handling_a_database_error_counts_too():
    try:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.PostgresError:
            raise RuntimeError("cleanup failed")  # noqa: B904 — the implicit context is the point
    except RuntimeError as error:
        assert is_database_unavailable(error)


def test_an_error_that_hides_its_database_cause_on_purpose_does_not_count():
    try:
        try:
            raise asyncpg.InterfaceError("pool is closed")
        except asyncpg.InterfaceError:
            raise KeyError("replaced") from None
    except KeyError as error:
        assert not is_database_unavailable(error)


def test_a_plain_bug_is_not_the_database_being_unavailable():
    assert not is_database_unavailable(ValueError("a bug"))
