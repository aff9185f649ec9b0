"""The per-UUID heartbeat rate limit: its limits, and that no flood of other keys resets it.

The limiter runs on a clock the test moves, so "2 per second" is checked without sleeping. The
HTTP tests serve a real sidecar (real Postgres, the batching writer) with such a limiter.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import AsyncIterator

import asyncpg
import httpx
import pytest

from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatWriter
from alerts.pipeline import AlertPipeline, PipelineSettings
from bot.metrics import Metrics
from bot.sidecar import build_sidecar, start_sidecar
from handlers.http.heartbeats import BULK_LIMIT
from handlers.http.rate_limit import RateLimiter
from storage import applications
from storage.applications import Application
from tests.conftest import StoppedClock

FLOOD = 50_000



@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock()


def limiter_on(clock: StoppedClock, max_keys: int = 200_000) -> RateLimiter:
    return RateLimiter(capacity=20, rate=2.0, max_keys=max_keys, clock=clock)


def throttle(limiter: RateLimiter, key: object) -> None:
    """Spend `key`'s whole burst, so its next request is refused."""
    for _ in range(20):
        assert limiter.acquire(key) == 0.0
    assert limiter.acquire(key) > 0


# --- the limits -----------------------------------------------------------------------------------


def test_a_uuid_may_send_a_burst_of_20_and_the_21st_waits_half_a_second(clock):
    limiter = limiter_on(clock)
    key = uuid.uuid4()
    assert [limiter.acquire(key) for _ in range(20)] == [0.0] * 20
    wait = limiter.acquire(key)
    assert wait == pytest.approx(0.5)
    assert limiter.retry_after(wait) == 1


def test_after_its_burst_a_uuid_regains_two_heartbeats_a_second(clock):
    limiter = limiter_on(clock)
    key = uuid.uuid4()
    throttle(limiter, key)
    clock.advance(1.0)
    assert [limiter.acquire(key) == 0.0 for _ in range(3)] == [True, True, False]


def test_the_limit_is_per_key(clock):
    limiter = limiter_on(clock)
    throttle(limiter, "noisy")
    assert limiter.acquire("quiet") == 0.0


def test_a_bucket_that_has_refilled_is_dropped_as_if_it_never_existed(clock):
    limiter = limiter_on(clock)
    limiter.acquire("once")
    clock.advance(0.5)  # one token back: full again
    limiter.acquire("other")
    assert len(limiter) == 1


# --- floods ---------------------------------------------------------------------------------------


def test_a_throttled_key_stays_throttled_after_a_flood_of_unknown_keys_the_sidecar_forgets(clock):
    limiter = limiter_on(clock, max_keys=1000)
    throttle(limiter, "abused")
    for _ in range(FLOOD):  # what the handler does for each unknown UUID: charge, look up, forget
        key = uuid.uuid4()
        limiter.acquire(key)
        limiter.forget(key)
    assert len(limiter) == 1
    assert limiter.retry_after(limiter.acquire("abused")) >= 1


def test_a_throttled_key_stays_throttled_even_when_new_keys_fill_the_cap(clock):
    limiter = limiter_on(clock, max_keys=1000)
    throttle(limiter, "abused")
    refused = sum(1 for _ in range(FLOOD) if limiter.acquire(uuid.uuid4()))
    assert len(limiter) == 1000
    assert refused == FLOOD - 999
    assert limiter.acquire("abused") > 0


def test_memory_stays_within_the_cap_under_a_flood_of_distinct_known_keys(clock):
    limiter = limiter_on(clock, max_keys=1000)
    largest = 0
    for _ in range(FLOOD):
        limiter.acquire(uuid.uuid4())
        largest = max(largest, len(limiter))
        clock.advance(0.0001)  # 10,000 new apps a second: far more than the cap refills
    assert largest == 1000


def test_a_new_key_at_the_cap_waits_until_the_oldest_bucket_is_full_again(clock):
    limiter = limiter_on(clock, max_keys=2)
    limiter.acquire("first")
    limiter.acquire("second")
    limiter.acquire("second")
    assert limiter.acquire("third") == pytest.approx(0.5)  # "first" needs one token back
    clock.advance(0.5)
    assert limiter.acquire("third") == 0.0
    assert len(limiter) == 2  # "first" made room; "second", two tokens short, is kept


# --- over HTTP ------------------------------------------------------------------------------------


class Sidecar:
    """A served sidecar with heartbeat routes and a rate limiter the test holds."""

    def __init__(self, pool: asyncpg.Pool, limiter: RateLimiter):
        self.pool = pool
        self.limiter = limiter
        self.writer = HeartbeatWriter(pool, AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts")))

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.writer.start()
        app = build_sidecar(
            metrics=Metrics("test"), health_report=_no_report, max_body_bytes=65536, pool=self.pool,
            writer=self.writer, rate_limiter=self.limiter,
        )  # fmt: skip
        self.runner, port = await start_sidecar(app, "127.0.0.1", 0)
        limits = httpx.Limits(max_connections=32)
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits)
        return self.http

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.runner.cleanup()
        await self.writer.stop()


async def _no_report() -> dict:
    return {"components": {}}


@pytest.fixture
async def limiter(clock: StoppedClock) -> RateLimiter:
    """A cap small enough to flood over HTTP, yet one bulk request (1,000 UUIDs, each charged
    before the lookup) fits."""
    return limiter_on(clock, max_keys=BULK_LIMIT)


@pytest.fixture
async def http(pool: asyncpg.Pool, limiter: RateLimiter) -> AsyncIterator[httpx.AsyncClient]:
    async with Sidecar(pool, limiter) as client:
        yield client


async def register(pool: asyncpg.Pool, name: str = "nightly-backup") -> Application:
    spec = validate_application({"name": name, "expected_interval": 300}, default_channel="#ops-alerts")
    return await applications.create_application(pool, spec, created_by="test")


async def statuses(http: httpx.AsyncClient, paths: list[str], senders: int = 16) -> list[int]:
    """POST each path, `senders` at a time (thousands of waiters queued on httpx's connection
    pool cost more than the requests), and return the status codes in order."""
    codes = [0] * len(paths)
    todo = iter(enumerate(paths))

    async def sender() -> None:
        for i, path in todo:
            codes[i] = (await http.post(path)).status_code

    await asyncio.gather(*(sender() for _ in range(senders)))
    return codes


async def test_over_http_a_uuid_gets_20_then_429_with_retry_after_then_2_a_second(pool, http, clock):
    app = await register(pool)
    path = f"/heartbeat/{app.uuid}"
    assert [(await http.post(path)).status_code for _ in range(20)] == [200] * 20
    refused = await http.post(path)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    clock.advance(1.0)
    assert [(await http.post(path)).status_code for _ in range(3)] == [200, 200, 429]


async def test_concurrent_heartbeats_of_one_uuid_cannot_overrun_its_burst(pool, http):
    app = await register(pool)
    codes = await statuses(http, [f"/heartbeat/{app.uuid}"] * 60)
    assert codes.count(200) == 20 and codes.count(429) == 40
    assert await pool.fetchval("SELECT count(*) FROM heartbeats") == 20


async def test_unknown_uuids_answer_404_and_keep_no_bucket(http, limiter):
    codes = await statuses(http, [f"/heartbeat/{uuid.uuid4()}" for _ in range(1000)])
    assert set(codes) == {404}
    assert len(limiter) == 0


async def test_unknown_uuids_in_a_bulk_request_keep_no_bucket(pool, http, limiter):
    app = await register(pool)
    unknown = [str(uuid.uuid4()) for _ in range(999)]
    response = await http.post("/heartbeats", json=[str(app.uuid), *unknown])
    assert response.json()["accepted"] == [str(app.uuid)] and len(response.json()["unknown"]) == 999
    assert len(limiter) == 1


async def test_a_throttled_app_stays_throttled_after_a_flood_of_unknown_uuids(pool, http, clock, limiter):
    app = await register(pool)
    path = f"/heartbeat/{app.uuid}"
    assert await statuses(http, [path] * 20) == [200] * 20
    flood = await statuses(http, [f"/heartbeat/{uuid.uuid4()}" for _ in range(3 * limiter.max_keys)])
    assert set(flood) == {404}
    refused = await http.post(path)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    clock.advance(0.5)
    assert (await http.post(path)).status_code == 200
