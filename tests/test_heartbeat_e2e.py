"""The whole heartbeat path as a user meets it: register over the API, ping over HTTP, get an
incident in Slack, recover — one `pulser run` against the sandbox and a real Postgres."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import eventually, make_settings

TOKEN = "e2e-admin-token"


@pytest.fixture
async def pulser_with_api(database_url, sandbox) -> AsyncIterator[Runtime]:
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    settings = make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-e2e",
        SLACK_APP_TOKEN="xapp-e2e",
        SLACK_API_URL=sandbox.api_url,
        PULSER_ADMIN_TOKEN=TOKEN,
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    await runtime.wait_connected()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(pulser_with_api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser_with_api.http_port}", timeout=5) as client:
        yield client


async def test_a_failure_alerts_at_once_and_the_next_success_recovers_in_place(http, sandbox):
    created = await http.post(
        "/api/applications",
        json={"name": "invoice-run", "expected_interval": 3600, "grace_period": 300, "channel": "#ops-alerts"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert created.status_code == 201
    app = created.json()

    assert (await http.post(f"/heartbeat/{app['uuid']}/start")).status_code == 200
    assert (await http.post(f"/ping/{app['uuid']}/3", content=b"disk full")).status_code == 200

    [alert] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert alert.params["text"] == ":large_orange_circle: [HIGH] invoice-run reported failure (exit code 3) — invoice-run"

    assert (await http.get(f"/heartbeat/{app['uuid']}")).status_code == 200
    updates = await eventually(lambda: [c for c in sandbox.calls_to("chat.update") if "Resolved" in c.params["text"]], timeout=30)
    [posted] = [m for messages in sandbox.messages.values() for m in messages if not m.get("thread_ts")]
    assert updates[0].params["ts"] == posted["ts"], "the incident's one message, updated in place"
    assert updates[0].params["text"].startswith(":white_check_mark: Resolved: [HIGH] invoice-run reported failure")
    assert "recovered after" in str(updates[0].params["attachments"])

    history = await http.get(f"/api/applications/{app['id']}/heartbeats", headers={"Authorization": f"Bearer {TOKEN}"})
    rows = history.json()["heartbeats"]
    assert [(h["kind"], h["exit_code"]) for h in rows][:3] == [("success", None), ("fail", 3), ("start", None)]
    assert rows[1]["body"] == "disk full" and rows[1]["duration_ms"] is not None


async def test_health_and_metrics_follow_the_outage(http, sandbox, pulser_with_api):
    created = await http.post(
        "/api/applications",
        json={"name": "cron-a", "expected_interval": 60},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    uuid = created.json()["uuid"]
    await http.post(f"/heartbeat/{uuid}/fail")
    await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)

    async def down_counted():
        return (await http.get("/health")).json()["components"]["applications"]["down"] == 1

    await eventually(down_counted)

    async def alert_counted():
        metrics = (await http.get("/metrics")).text
        return 'pulser_alerts_total{severity="high",source="heartbeat"} 1.0' in metrics

    await eventually(alert_counted)
