"""The dead-man's switch: Pulser pings an outside check while healthy, and stops when it is not."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import web

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import make_settings


@pytest.fixture
async def outside_check() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in for healthchecks.io: records every ping's path."""
    pings: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        pings.append(request.path)
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/{tail:.*}", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/ping/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278", pings
    await runner.cleanup()


@pytest.fixture
async def pulser_with_switch(database_url, sandbox, outside_check) -> AsyncIterator[Runtime]:
    url, _ = outside_check
    settings = make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-t", SLACK_APP_TOKEN="xapp-t", SLACK_API_URL=sandbox.api_url,
        PULSER_SELF_PING_URL=url,
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    await runtime.wait_connected()
    yield runtime
    await runtime.stop()


async def test_a_healthy_pulser_pings_its_check(pulser_with_switch, outside_check):
    assert await pulser_with_switch.self_ping.run_once() == "sent"
    assert outside_check[1] == ["/ping/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"]
    assert "self-ping" in [job.id for job in pulser_with_switch.scheduler.get_jobs()]


async def test_a_pulser_with_a_part_down_stays_silent_so_the_check_alerts(pulser_with_switch, outside_check):
    await pulser_with_switch.pool.close()
    assert await pulser_with_switch.self_ping.run_once() == "skipped"
    assert outside_check[1] == []


async def test_an_unreachable_check_is_counted_not_raised(database_url, sandbox):
    settings = make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-t", SLACK_APP_TOKEN="xapp-t", SLACK_API_URL=sandbox.api_url,
        PULSER_SELF_PING_URL="http://127.0.0.1:9/ping/x",
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected()
        assert await runtime.self_ping.run_once() == "failed"
        assert 'pulser_self_pings_total{outcome="failed"} 1.0' in runtime.metrics.render().decode()
    finally:
        await runtime.stop()


def test_the_ping_url_is_treated_as_a_secret():
    settings = make_settings(PULSER_SELF_PING_URL="https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278")
    assert "https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278" in settings.secrets()
    assert "5bf66975" not in repr(settings)


async def test_a_sandbox_pulser_on_a_real_database_does_not_ping_its_check(database_url, outside_check):
    # /health answers 503 there; the dead-man's switch must not say otherwise.
    url, pings = outside_check
    settings = make_settings(
        DATABASE_URL=database_url, PULSER_SANDBOX="1", PULSER_SANDBOX_PORT="0", PULSER_SELF_PING_URL=url
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected(timeout=30)
        assert await runtime.self_ping.run_once() == "skipped"
    finally:
        await runtime.stop()
    assert pings == []
