"""Platform events end to end: a running Pulser (sidecar, ledger worker, event notifier, Bolt over
Socket Mode) against the sandbox, driven over HTTP and Slack like a CI system and a person would."""

from __future__ import annotations

import json

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from blocks.events import ACK, INVESTIGATE
from blocks.incidents import ACK as INCIDENT_ACK
from bot.metrics import Metrics
from bot.sidecar import build_sidecar
from handlers.slack.admin import forget_answers
from storage import envelopes
from storage import platform_events as store
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings
from tests.fixtures import load_fixture

ALERTS, DEPLOYS, CI = "C0ALERTS", "C0DEPLOY", "C0CI"
ADMIN, MEMBER = "U0ADA", "U0BOB"
AUTH = {"Authorization": f"Bearer {send.WEBHOOK_TOKEN}"}
ADMIN_API = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.add_channel(DEPLOYS, "ops-deploy")
    sandbox.add_channel(CI, "ops-ci")
    forget_answers()
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        PULSER_ADMIN_TOKEN="admin-token",
        **send.SECRETS_ENV,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as client:
        yield client


async def send_event(http, event: dict, headers: dict | None = None) -> httpx.Response:
    return await http.post("/events", json=event, headers={**AUTH, **(headers or {})})


def posts(sandbox, channel=ALERTS) -> list[dict]:
    return [m for m in sandbox.messages.get(channel, []) if not m.get("thread_ts")]


def rendered(message: dict) -> str:
    """Everything a person reads in a message: fallback text plus all block text."""
    return message.get("text", "") + json.dumps([message.get("attachments", []), message.get("blocks", [])], ensure_ascii=False)


async def posted_with(sandbox, words: str, channel=ALERTS) -> dict:
    found = await eventually(lambda: [m for m in posts(sandbox, channel) if words in rendered(m)], timeout=30)
    return found[0]


def current(sandbox, message: dict) -> dict:
    return sandbox.state.find_message(message["channel"], message["ts"])


# --- POST /events ------------------------------------------------------------------------------------


async def test_each_event_type_lands_in_the_channel_routed_for_it(pulser, sandbox, http):
    await store.set_route(pulser.pool, "deploy", "#ops-deploy", updated_by=ADMIN)
    await store.set_route(pulser.pool, "ci", CI, updated_by=ADMIN)
    events = [
        {"event_type": "deploy", "status": "started", "service": "billing"},
        {"event_type": "ci", "status": "passed", "service": "billing"},
        {"event_type": "error_rate", "status": "exceeded", "service": "billing"},
        {"event_type": "scheduled_task", "status": "completed", "service": "nightly-backup"},
        {"event_type": "manual", "status": "maintenance begins", "service": "db"},
    ]
    for event in events:
        assert (await send_event(http, event)).status_code == 202
    await posted_with(sandbox, "Deploy of billing started", DEPLOYS)
    await posted_with(sandbox, "CI passed: billing", CI)
    await posted_with(sandbox, "Error rate exceeded: billing")
    await posted_with(sandbox, "Scheduled task completed: nightly-backup")
    await posted_with(sandbox, "db: maintenance begins")
    await eventually(lambda: _events_delivered(pulser, 5), timeout=30)  # nothing left to post or retry
    assert len(posts(sandbox, DEPLOYS)) == 1 and len(posts(sandbox, CI)) == 1 and len(posts(sandbox)) == 3


async def test_a_deployment_that_starts_and_completes_is_one_message_updated_in_place(pulser, sandbox, http):
    deployment = {"event_type": "deploy", "service": "billing", "env": "prod", "deployment_id": "billing-v42"}
    await send_event(http, {**deployment, "status": "started", "occurred_at": "2026-11-23T10:00:00Z"})
    message = await posted_with(sandbox, "Deploy of billing to production started")
    await send_event(http, {**deployment, "status": "completed", "occurred_at": "2026-11-23T10:07:00Z"})
    await eventually(lambda: "took 7 min" in rendered(current(sandbox, message)), timeout=30)
    assert "Deploy of billing to production completed" in rendered(current(sandbox, message))
    assert len(posts(sandbox)) == 1


async def test_a_finished_deployment_is_counted_with_its_duration(pulser, http):
    deployment = {"event_type": "deploy", "service": "ledger", "env": "prod", "deployment_id": "ledger-v7"}
    await send_event(http, {**deployment, "status": "started", "occurred_at": "2026-11-23T10:00:00Z"})
    await send_event(http, {**deployment, "status": "completed", "occurred_at": "2026-11-23T10:03:00Z"})
    registry = pulser.metrics.registry

    def observed():
        return registry.get_sample_value("pulser_deployment_duration_seconds_sum", {"service": "ledger"})

    assert await eventually(observed, timeout=30) == 180.0
    assert registry.get_sample_value("pulser_deployments_total", {"service": "ledger", "status": "completed"}) == 1


async def test_a_deployment_whose_end_arrives_before_its_start_is_counted_with_its_duration(pulser, http):
    deployment = {"event_type": "deploy", "service": "ledger", "env": "prod", "deployment_id": "ledger-v8"}
    await send_event(http, {**deployment, "status": "completed", "occurred_at": "2026-11-23T10:03:00Z"})
    await eventually(lambda: _events_recorded(pulser, 1), timeout=30)
    await send_event(http, {**deployment, "status": "started", "occurred_at": "2026-11-23T10:00:00Z"})
    registry = pulser.metrics.registry

    def observed():
        return registry.get_sample_value("pulser_deployment_duration_seconds_sum", {"service": "ledger"})

    assert await eventually(observed, timeout=30) == 180.0
    assert registry.get_sample_value("pulser_deployment_duration_seconds_count", {"service": "ledger"}) == 1


async def _events_recorded(pulser, count: int) -> bool:
    return len(await store.list_events(pulser.pool, event_type="deploy")) >= count


async def test_a_malformed_event_is_refused_naming_each_wrong_field_and_nothing_is_stored(pulser, http):
    response = await send_event(http, {"event_type": "deploy", "status": "done", "link": "ftp://x", "sevrity": "high"})
    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"status", "link", "sevrity"}
    assert await envelopes.count_envelopes(pulser.pool, source="events") == 0
    assert await store.list_events(pulser.pool, event_type="deploy") == []


async def test_a_wrong_token_is_refused_and_nothing_is_stored(pulser, http):
    response = await send_event(http, {"event_type": "ci", "status": "passed"}, {"Authorization": "Bearer guess"})
    assert response.status_code == 401 and "PULSER_WEBHOOK_TOKEN" in response.json()["detail"]
    assert await envelopes.count_envelopes(pulser.pool, source="events") == 0


async def test_without_a_webhook_token_configured_events_are_refused_naming_the_variable(pool):
    app = build_sidecar(metrics=Metrics("test"), health_report=None, max_body_bytes=65536, pool=pool,
                        webhook_secrets={}, accept_envelope=lambda pk: None)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/events", json={"event_type": "ci", "status": "passed"}, headers=AUTH)
        assert response.status == 401
        assert "PULSER_WEBHOOK_TOKEN is not set" in (await response.json())["detail"]


async def test_a_replayed_event_is_acknowledged_as_a_duplicate_and_posted_once(pulser, sandbox, http):
    event = {"event_type": "scheduled_task", "status": "failed", "service": "backup", "event_id": "backup-2026-11-23"}
    first = await send_event(http, event)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    await posted_with(sandbox, "Scheduled task failed: backup")
    replay = await send_event(http, event)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    await eventually(lambda: _events_delivered(pulser, 1), timeout=30)  # posted, no retry left to post it again
    assert len(await store.list_events(pulser.pool, event_type="scheduled_task")) == 1
    assert len(posts(sandbox)) == 1


async def _events_delivered(pulser, count: int) -> bool:
    """`count` events arrived through the ledger, each processed, and the event outbox is drained."""
    deliveries = await pulser.pool.fetch("SELECT status FROM envelopes WHERE source = 'events'")
    events = [e for e in await store.list_events(pulser.pool) if e["event_type"] != "action"]
    return (
        len(deliveries) == count and all(d["status"] == "processed" for d in deliveries)
        and len(events) == count and all(e["render_due_at"] is None for e in events)
    )


# --- GitHub ------------------------------------------------------------------------------------------


async def github_failure(http) -> dict:
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    headers, body = send.github(payload, "workflow_run")
    assert (await http.post("/webhooks/github", headers=headers, content=body)).status_code == 202
    return payload


async def test_a_github_workflow_failure_also_posts_a_ci_event_with_its_buttons_where_ci_is_routed(pulser, sandbox, http):
    await store.set_route(pulser.pool, "ci", "#ops-ci", updated_by=ADMIN)
    payload = await github_failure(http)
    [event] = await eventually(lambda: store.list_events(pulser.pool, event_type="ci"), timeout=30)
    assert event["status"] == "failed" and event["service"] == payload["repository"]["full_name"]
    message = await posted_with(sandbox, ACK, CI)
    assert INVESTIGATE in rendered(message) and ":construction_worker:" in rendered(message)
    await posted_with(sandbox, INCIDENT_ACK)  # the alert pipeline still opens its incident


async def test_without_a_ci_route_a_github_failure_is_recorded_but_posted_once_as_its_incident(pulser, sandbox, http):
    await github_failure(http)
    [event] = await eventually(lambda: store.list_events(pulser.pool, event_type="ci"), timeout=30)
    await posted_with(sandbox, INCIDENT_ACK)
    await eventually(lambda: _github_delivery_done(pulser), timeout=30)  # all it was going to post is posted
    assert event["render_due_at"] is None and event["slack_channel"] is None
    assert len(posts(sandbox)) == 1


async def _github_delivery_done(pulser) -> bool:
    """The GitHub delivery processed, its incident's message posted and nothing left in either outbox."""
    from storage import incidents

    deliveries = await pulser.pool.fetch("SELECT status FROM envelopes WHERE source = 'github'")
    messages = [m for i in await incidents.list_incidents(pulser.pool) for m in await incidents.messages_for(pulser.pool, i["id"])]
    events = [e for e in await store.list_events(pulser.pool) if e["event_type"] != "action"]
    return (
        bool(deliveries) and all(d["status"] == "processed" for d in deliveries)
        and bool(messages) and all(m["slack_ts"] and m["render_due_at"] is None for m in messages)
        and all(e["render_due_at"] is None for e in events)
    )


# --- buttons -----------------------------------------------------------------------------------------


async def failed_deploy(http, sandbox) -> tuple[dict, int]:
    await send_event(http, {"event_type": "deploy", "status": "failed", "service": "billing", "deployment_id": "d-9"})
    message = await posted_with(sandbox, "Deploy of billing failed")
    button = next(
        e for b in message["attachments"][0]["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == ACK
    )
    return message, int(button["value"])


async def test_ack_on_a_failed_event_updates_its_message_and_is_audited_as_an_action_event(pulser, sandbox, http):
    message, event_id = await failed_deploy(http, sandbox)
    await sandbox.send_block_action(ACK, str(event_id), user_id=MEMBER, channel_id=message["channel"], message_ts=message["ts"])
    await eventually(lambda: f"Acked by <@{MEMBER}>" in rendered(current(sandbox, message)), timeout=30)
    assert f'"action_id": "{ACK}"' not in rendered(current(sandbox, message))
    [action] = await eventually(lambda: store.list_events(pulser.pool, event_type="action"), timeout=30)
    assert (action["actor"], action["status"]) == (MEMBER, "event.ack")
    assert action["details"]["target"] == f"platform_event:{event_id}"


async def test_investigate_on_a_failed_event_names_the_investigator(pulser, sandbox, http):
    message, event_id = await failed_deploy(http, sandbox)
    await sandbox.send_block_action(
        INVESTIGATE, str(event_id), user_id=MEMBER, channel_id=message["channel"], message_ts=message["ts"]
    )
    await eventually(lambda: f"Investigating: <@{MEMBER}>" in rendered(current(sandbox, message)), timeout=30)
    assert (await store.get_event(pulser.pool, event_id))["details"]["investigator"] == MEMBER


# --- /pulser events ----------------------------------------------------------------------------------


async def test_an_admin_routes_deploy_events_to_a_channel_from_slack(pulser, sandbox, http):
    ack = await sandbox.send_slash_command(text="events route deploy <#C0DEPLOY|ops-deploy>", user_id=ADMIN)
    assert "now go to <#C0DEPLOY>" in json.dumps(ack["payload"])
    assert await store.list_routes(pulser.pool) == {"deploy": DEPLOYS}
    await send_event(http, {"event_type": "deploy", "status": "started", "service": "api"})
    await posted_with(sandbox, "Deploy of api started", DEPLOYS)
    [action] = await store.list_events(pulser.pool, event_type="action")
    assert (action["actor"], action["status"]) == (ADMIN, "event_route.set")


async def test_a_member_cannot_change_routes_but_can_list_them(pulser, sandbox):
    refused = await sandbox.send_slash_command(text="events route deploy #ops-deploy", user_id=MEMBER)
    assert "Only Pulser admins" in json.dumps(refused["payload"])
    assert await store.list_routes(pulser.pool) == {}
    listing = await sandbox.send_slash_command(text="events", user_id=MEMBER)
    assert f"<#{ALERTS}> _(default)_" in json.dumps(listing["payload"])  # SLACK_CHANNEL=#ops-alerts, as its ID


# --- the admin API -----------------------------------------------------------------------------------


async def test_the_api_replaces_routes_and_lists_events_newest_first(pulser, sandbox, http):
    response = await http.put("/api/event-routes", json={"deploy": "#ops-deploy", "ci": None}, headers=ADMIN_API)
    assert response.status_code == 200 and response.json() == {"deploy": DEPLOYS}  # the name, saved as its ID
    bad = await http.put("/api/event-routes", json={"deploys": "#x", "ci": "not a channel"}, headers=ADMIN_API)
    assert bad.status_code == 400 and set(bad.json()["detail"]) == {"deploys", "ci"}
    await send_event(http, {"event_type": "ci", "status": "passed", "service": "a"})
    await send_event(http, {"event_type": "ci", "status": "failed", "service": "b"})
    listed = await eventually(
        lambda: _listed(http, "/api/events?type=ci&limit=5"), timeout=5
    )
    assert [e["service"] for e in listed] == ["b", "a"]
    assert (await http.get("/api/events", headers={"Authorization": "Bearer nope"})).status_code == 401


async def _listed(http, path: str) -> list[dict] | None:
    events = (await http.get(path, headers=ADMIN_API)).json()["events"]
    return events if len(events) == 2 else None
