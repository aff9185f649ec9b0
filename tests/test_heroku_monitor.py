"""Heroku monitoring end to end: the poller against a fake Heroku API, the monitor's state in
Postgres, alerts through the pipeline to Slack messages in the sandbox, webhooks, and the budget."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alerts.heroku_monitor import HerokuMonitor, HerokuSettings
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.sources.heroku_api import HerokuClient
from jobs.heroku_poller import HOURLY_BUDGET, HerokuPoller, cycle_budget
from storage import heroku, incidents
from tests.conftest import eventually, make_settings
from tests.fake_heroku import FakeHeroku, addon, dyno
from tests.fixtures import fixture_bytes

SECRET_VALUE = "s3cr3t-p@ssw0rd-value"
WEBHOOK_SECRET = "heroku-webhook-secret"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def fake():
    server = FakeHeroku()
    await server.start()
    server.add_app("shop-api")
    server.set_dynos("shop-api", [dyno("web.1", "web"), dyno("web.2", "web"), dyno("worker.1", "worker")])
    server.add_release("shop-api", 41, description="Deploy 1111111")
    server.add_release("shop-api", 42, description="Deploy 2222222", current=True)
    server.set_config("shop-api", {"DATABASE_URL": SECRET_VALUE, "DEBUG": "false"})
    server.set_addons("shop-api", [addon("shop-db", "heroku-postgresql", "essential-0")])
    yield server
    await server.stop()


@pytest.fixture
async def monitor(pool, fake):
    client = HerokuClient(fake.api_key, fake.base_url)
    pipeline = AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts"))
    yield HerokuMonitor(
        pool, client, pipeline, first_settings=HerokuSettings(("shop-api",), "#heroku", 1), api_key=fake.api_key
    )
    await client.close()


async def poll(monitor, at):
    return await HerokuPoller(monitor).tick(now=at)


async def titles(pool):
    return sorted(i["title"] for i in await incidents.list_incidents(pool))


# --- detection through the poller -------------------------------------------------------------------


async def test_the_first_poll_is_a_silent_baseline(pool, monitor):
    assert await poll(monitor, T0) == 4
    assert await incidents.list_incidents(pool) == []
    state = (await heroku.app_states(pool))["shop-api"]
    assert state["last_release_version"] == 42 and set(state["dynos"]) == {"web.1", "web.2", "worker.1"}


async def test_a_crashed_dyno_alerts_once_and_its_recovery_resolves_the_same_incident(pool, monitor, fake):
    await poll(monitor, T0)
    fake.set_dynos("shop-api", [dyno("web.1", "web", "crashed"), dyno("web.2", "web"), dyno("worker.1", "worker")])
    await poll(monitor, T0 + timedelta(minutes=1))
    await poll(monitor, T0 + timedelta(minutes=2))
    [crash] = await incidents.list_incidents(pool)
    assert "Dyno Crash Detected" in crash["title"] and crash["severity"] == "critical" and crash["status"] == "firing"
    fake.set_dynos("shop-api", [dyno("web.1", "web"), dyno("web.2", "web"), dyno("worker.1", "worker")])
    await poll(monitor, T0 + timedelta(minutes=3))
    [after] = await incidents.list_incidents(pool)
    assert after["id"] == crash["id"] and after["status"] == "resolved" and after["resolve_reason"] == "source"


async def test_a_new_release_alerts_with_who_and_a_rollback_target(pool, monitor, fake):
    await poll(monitor, T0)
    fake.add_release("shop-api", 43, description="Deploy 3333333", user_email="ana@example.com", current=True)
    # The releases are a slow part: give the round-robin a few cycles to reach them.
    for minute in range(1, 5):
        await poll(monitor, T0 + timedelta(minutes=minute))
    [deploy] = await incidents.list_incidents(pool)
    assert "New Deploy Detected" in deploy["title"] and "v43" in deploy["title"]
    assert "ana@example.com" in deploy["description"]
    assert deploy["labels"]["rollback_target_version"] == "42"
    messages = await incidents.messages_for(pool, deploy["id"])
    assert [m["channel"] for m in messages] == ["#heroku"]


async def test_config_changes_name_the_keys_and_never_the_values(pool, monitor, fake, caplog):
    caplog.set_level(logging.DEBUG)
    await poll(monitor, T0)
    fake.set_config("shop-api", {"DATABASE_URL": SECRET_VALUE + "-rotated", "NEW_FLAG": "on"})
    for minute in range(1, 5):
        await poll(monitor, T0 + timedelta(minutes=minute))
    [config] = await incidents.list_incidents(pool)
    text = json.dumps(config, default=str)
    assert "DATABASE_URL" in config["description"] and "NEW_FLAG" in config["description"] and "DEBUG" in config["description"]
    assert SECRET_VALUE not in text and "rotated" not in text and "on\"" not in config["description"]
    assert SECRET_VALUE not in caplog.text
    stored = json.dumps((await heroku.app_states(pool))["shop-api"], default=str)
    digest = hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    assert SECRET_VALUE not in stored and digest not in stored


async def test_a_restart_neither_misses_nor_repeats_an_alert(pool, monitor, fake):
    await poll(monitor, T0)
    fake.set_dynos("shop-api", [dyno("web.1", "web", "crashed"), dyno("web.2", "web"), dyno("worker.1", "worker")])
    await poll(monitor, T0 + timedelta(minutes=1))
    restarted = HerokuMonitor(
        pool, monitor.client, monitor.pipeline, first_settings=HerokuSettings(("shop-api",), "#heroku", 1), api_key=fake.api_key
    )
    await poll(restarted, T0 + timedelta(minutes=2))
    [crash] = await incidents.list_incidents(pool)
    assert crash["count"] == 1


async def test_a_heroku_error_is_recorded_and_the_next_poll_goes_on(pool, monitor, fake):
    await poll(monitor, T0)
    fake.fail_next("/apps/shop-api/dynos", 404)
    await poll(monitor, T0 + timedelta(minutes=1))
    assert "shop-api" in monitor.status.errors_by_app and monitor.status.last_error
    await poll(monitor, T0 + timedelta(minutes=2))
    assert "shop-api" not in monitor.status.errors_by_app


async def test_a_settings_change_applies_to_the_next_tick_and_survives_a_restart(pool, monitor, fake):
    fake.add_app("shop-worker")
    fake.set_dynos("shop-worker", [dyno("worker.1", "worker")])
    await poll(monitor, T0)
    await monitor.save_settings(HerokuSettings(("shop-api", "shop-worker"), "#deploys", 5), user="U0ADA")
    await poll(monitor, T0 + timedelta(seconds=20))  # not due by the old interval; the change cleared the claim
    assert "shop-worker" in await heroku.app_states(pool)
    restarted = HerokuMonitor(
        pool, monitor.client, monitor.pipeline, first_settings=HerokuSettings(("shop-api",), "#heroku", 1), api_key=fake.api_key
    )
    assert await restarted.settings() == HerokuSettings(
        ("shop-api", "shop-worker"), "#deploys", 5, "U0ADA", (await restarted.settings()).updated_at
    )


async def test_a_cycle_is_not_polled_twice_within_its_interval(pool, monitor, fake):
    assert await poll(monitor, T0) == 4
    assert await poll(monitor, T0 + timedelta(seconds=30)) is None
    assert await poll(monitor, T0 + timedelta(minutes=1)) is not None


# --- the rate budget ---------------------------------------------------------------------------------


async def test_fifty_apps_every_minute_stay_under_herokus_hourly_budget(pool, fake):
    apps = [f"app-{i:02d}" for i in range(50)]
    for app in apps:
        fake.add_app(app)
        fake.set_dynos(app, [dyno("web.1", "web")])
        fake.add_release(app, 1, current=True)
    client = HerokuClient(fake.api_key, fake.base_url)
    monitor = HerokuMonitor(
        pool, client, AlertPipeline(pool, PipelineSettings(default_channel="#ops")),
        first_settings=HerokuSettings(tuple(apps), "#heroku", 1), api_key=fake.api_key,
    )
    poller = HerokuPoller(monitor)
    try:  # twenty minutes of it: each cycle keeps to its budget, and sixty such fit in the hour's
        for minute in range(20):
            await poller.tick(now=T0 + timedelta(minutes=minute))
    finally:
        await client.close()
    assert client.requests_made <= cycle_budget(1) * 20 and cycle_budget(1) * 60 < HOURLY_BUDGET
    assert set(await heroku.app_states(pool)) == set(apps)


# --- webhooks ----------------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url, sandbox, fake):
    sandbox.add_channel("C0HEROKU", "heroku")
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        HEROKU_API_KEY=fake.api_key,
        HEROKU_API_URL=fake.base_url,
        HEROKU_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MONITORED_APP_NAME="shop-api",
        SLACK_CHANNEL="#heroku",
    )


def heroku_delivery(payload: dict) -> tuple[dict, bytes]:
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "Heroku-Webhook-Hmac-SHA256": signature}, body


def release_event(version: int, status: str = "succeeded") -> dict:
    payload = json.loads(fixture_bytes("heroku", "webhook-api-release-create.json"))
    payload["data"].update(version=version, status=status, current=True)
    payload["data"]["app"]["name"] = "shop-api"
    payload["webhook_metadata"] = {"delivery": {"id": f"delivery-{version}-{status}"}}
    return payload


async def test_a_release_seen_by_webhook_and_then_by_poll_alerts_once_in_slack(pulser, sandbox, fake):
    await eventually(lambda: _baselined(pulser), timeout=30)
    headers, body = heroku_delivery(release_event(43))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}") as http:
        response = await http.post("/webhooks/heroku", headers=headers, content=body)
        assert response.status_code == 202
        forged = await http.post("/webhooks/heroku", headers={**headers, "Heroku-Webhook-Hmac-SHA256": "AAAA"}, content=body)
        assert forged.status_code == 401
    def deploy_posts():
        return [m for m in sandbox.messages.get("C0HEROKU", []) if "v43" in m.get("text", "") and not m.get("thread_ts")]

    await eventually(deploy_posts, timeout=30)
    fake.add_release("shop-api", 43, description="Deploy 3333333", current=True)
    for minute in range(1, 5):
        await pulser.heroku_poller.poll(["shop-api"], 1, now=datetime.now(timezone.utc) + timedelta(minutes=minute))
    assert len(deploy_posts()) == 1
    [deploy] = await incidents.list_incidents(pulser.pool)
    assert deploy["count"] == 1 and "v43" in deploy["title"]


async def _baselined(pulser):
    return "shop-api" in await heroku.app_states(pulser.pool)


async def test_health_reports_heroku_monitoring(pulser, fake):
    await eventually(lambda: _baselined(pulser), timeout=30)
    part = (await pulser.health_report())["components"]["heroku"]
    assert part["status"] == "up" and part["apps"] == ["shop-api"] and part["last_successful_poll"]
    assert part["rate_limit_remaining"] is not None


async def test_fewer_dynos_after_a_scale_down_is_not_an_outage(pool, monitor, fake):
    await poll(monitor, T0)
    fake.set_formation("shop-api", {"web": 1, "worker": 1})
    fake.set_dynos("shop-api", [dyno("web.1", "web"), dyno("worker.1", "worker")])
    await poll(monitor, T0 + timedelta(minutes=1))
    assert await incidents.list_incidents(pool) == []
    assert fake.requests_to("GET", "/apps/shop-api/formation")


async def test_fewer_dynos_than_the_formation_asks_for_is_dynos_down(pool, monitor, fake):
    await poll(monitor, T0)
    fake.set_formation("shop-api", {"web": 2, "worker": 1})
    fake.set_dynos("shop-api", [dyno("web.1", "web"), dyno("worker.1", "worker")])
    await poll(monitor, T0 + timedelta(minutes=1))
    [down] = await incidents.list_incidents(pool)
    assert "Dynos Down" in down["title"] and down["severity"] == "high"
