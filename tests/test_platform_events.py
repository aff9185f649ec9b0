"""Platform events below Slack: validation, storage, routing, correlation (one message per
deployment), GitHub deliveries as events, the audit as "action" events, the message blocks, and the
event notifier against the sandbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from alerts.applications import ValidationError
from alerts.outbound.slack import SlackDelivery
from alerts.outbound.events import EventNotifier
from alerts.platform_events import PlatformEvents, event_view, github_event, record_action, validate_event
from blocks.events import ACK, INVESTIGATE, event_message, routes_message
from storage import audit, envelopes
from storage import platform_events as store
from tests.fixtures import load_fixture

DEFAULT = "#ops-alerts"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def events(pool) -> PlatformEvents:
    return PlatformEvents(pool, default_channel=DEFAULT)


def errors_of(data) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_event(data)
    return caught.value.errors


def rendered(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


# --- validation --------------------------------------------------------------------------------------


def test_a_minimal_event_gets_a_title_severity_and_normalized_env():
    spec = validate_event({"event_type": "Deploy", "status": "STARTED", "service": "billing", "env": "prod"})
    assert (spec.event_type, spec.status, spec.env) == ("deploy", "started", "production")
    assert spec.title == "Deploy of billing to production started"
    assert spec.severity == "info" and spec.occurred_at is None and not spec.failure


def test_failures_default_to_high_severity_and_others_to_info():
    for event_type, status in (("ci", "failed"), ("deploy", "failed"), ("error_rate", "exceeded"), ("scheduled_task", "failed")):
        assert validate_event({"event_type": event_type, "status": status}).severity == "high"
    assert validate_event({"event_type": "error_rate", "status": "recovered"}).severity == "info"
    assert validate_event({"event_type": "ci", "status": "failed", "severity": "Critical"}).severity == "critical"


def test_each_type_accepts_only_its_own_statuses():
    assert "passed, failed" in errors_of({"event_type": "ci", "status": "completed"})["status"]
    assert "required" in errors_of({"event_type": "deploy"})["status"]
    assert validate_event({"event_type": "manual", "status": "Rotated the DB password"}).status == "Rotated the DB password"
    assert "at most 40" in errors_of({"event_type": "manual", "status": "x" * 41})["status"]


def test_every_wrong_field_is_named_at_once():
    errors = errors_of({
        "event_type": "deploy", "status": "started", "severity": "urgent", "link": "javascript:alert(1)",
        "occurred_at": "2026-11-23T10:00:00", "details": {"version": 42, "acked_by": "U1"}, "sevrity": "high",
    })
    assert set(errors) == {"severity", "link", "occurred_at", "details.version", "details.acked_by", "sevrity"}
    assert "reserved" in errors["details.acked_by"]
    assert set(errors_of({"status": "passed"})) == {"event_type"}
    assert errors_of(["not", "an", "object"]) == {"body": "must be a JSON object"}


def test_deployment_id_is_the_correlation_and_numbers_are_taken_as_text():
    assert validate_event({"event_type": "deploy", "status": "started", "deployment_id": 42}).correlation == "42"
    assert validate_event({"event_type": "ci", "status": "passed", "correlation": "run-7"}).correlation == "run-7"
    assert "not two" in errors_of({"event_type": "deploy", "status": "started", "deployment_id": "a", "correlation": "b"})["correlation"]


def test_occurred_at_with_an_offset_is_stored_in_utc():
    spec = validate_event({"event_type": "ci", "status": "passed", "occurred_at": "2026-11-23T12:00:00+02:00"})
    assert spec.occurred_at == T0


# --- storing and routing -----------------------------------------------------------------------------


async def test_an_event_goes_to_the_route_of_its_type_else_the_default_channel(events, pool):
    await events.set_route("deploy", "#ops-deploy", "U0ADA")
    deploy = await events.record(validate_event({"event_type": "deploy", "status": "started"}))
    ci = await events.record(validate_event({"event_type": "ci", "status": "passed"}))
    assert (deploy["slack_channel"], ci["slack_channel"]) == ("#ops-deploy", DEFAULT)
    assert deploy["render_due_at"] is not None and deploy["slack_ts"] is None
    assert await events.list_routes() == {"deploy": "#ops-deploy"}
    assert await events.route_for("ci") == DEFAULT


async def test_a_route_change_is_audited_and_a_reset_returns_the_type_to_the_default(events, pool):
    await events.set_route("ci", "C0CI", "U0ADA")
    assert await events.reset_route("ci", "U0ADA") == "C0CI"
    assert await events.route_for("ci") == DEFAULT
    entries = await audit.list_actions(pool, target_type="event_route", target_id="ci")
    assert [e["action"] for e in entries] == ["event_route.reset", "event_route.set"]


async def test_a_route_to_something_that_is_not_a_channel_is_refused(events):
    with pytest.raises(ValidationError) as caught:
        await events.set_route("deploys", "ops deploy", "U0ADA")
    assert set(caught.value.errors) == {"event_type", "channel"}


async def test_processing_a_recorded_delivery_stores_the_event_and_marks_it_processed(events, pool):
    payload = {"event_type": "error_rate", "status": "exceeded", "service": "api", "details": {"rate": "7%"}}
    pk = await envelopes.record_envelope(pool, source="events", scope="", envelope_id="event:1", kind="error_rate", payload=payload)
    envelope = await envelopes.get_envelope_by_pk(pool, pk)
    assert await events.process_envelope(envelope) is True
    [event] = await store.list_events(pool)
    assert (event["status"], event["details"], event["envelope_pk"]) == ("exceeded", {"rate": "7%"}, pk)
    assert event["occurred_at"] == envelope.received_at, "no occurred_at: the receipt time"
    assert (await envelopes.get_envelope_by_pk(pool, pk)).status == "processed"


# --- correlation -------------------------------------------------------------------------------------


def deploy(status: str, at: datetime, **extra) -> dict:
    return {"event_type": "deploy", "status": status, "service": "billing", "deployment_id": "v42", "occurred_at": at.isoformat(), **extra}


async def test_a_later_event_of_a_deployment_takes_over_its_posted_message(events, pool):
    started = await events.record(validate_event(deploy("started", T0)))
    await store.event_rendered(pool, started, claimed_until=started["render_due_at"], channel="C0DEPLOY", ts="111.1")
    completed = await events.record(validate_event(deploy("completed", T0 + timedelta(minutes=7))))
    assert (completed["slack_channel"], completed["slack_ts"]) == ("C0DEPLOY", "111.1")


async def test_a_deployment_event_waits_while_an_earlier_one_is_still_being_posted(events, pool):
    await events.record(validate_event(deploy("started", T0)))
    await events.record(validate_event(deploy("completed", T0 + timedelta(minutes=1))))
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    claimed = await store.claim_due(pool, now=now, limit=10, lease=timedelta(seconds=60))
    assert [e["status"] for e in claimed] == ["started"]
    assert await store.claim_due(pool, now=now, limit=10, lease=timedelta(seconds=60)) == []
    await store.event_rendered(pool, claimed[0], claimed_until=claimed[0]["render_due_at"], channel="C0DEPLOY", ts="222.2")
    [second] = await store.claim_due(pool, now=now, limit=10, lease=timedelta(seconds=60))
    assert (second["status"], second["slack_ts"]) == ("completed", "222.2"), "the first post's ts is handed on"


async def test_a_deployment_message_shows_the_final_status_and_duration_even_if_started_arrives_last(events, pool):
    await events.record(validate_event(deploy("completed", T0 + timedelta(minutes=7))))
    late = await events.record(validate_event(deploy("started", T0)))
    view = event_view(await store.chain_of(pool, late))
    assert view.status == "completed" and view.title == "Deploy of billing completed"
    assert "took 7 min" in rendered(event_message(view))


# --- GitHub ------------------------------------------------------------------------------------------


def test_a_failed_workflow_run_is_a_ci_failed_event_and_a_green_one_passed():
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    failed = github_event({"X-GitHub-Event": "workflow_run"}, payload)
    assert (failed.event_type, failed.status, failed.service) == ("ci", "failed", payload["repository"]["full_name"])
    assert failed.failure and failed.link == payload["workflow_run"]["html_url"]
    passed = github_event({"X-GitHub-Event": "workflow_run"}, load_fixture("github", "workflow_run-completed.json"))
    assert passed.status == "passed" and passed.severity == "info"
    assert github_event({"X-GitHub-Event": "workflow_run"}, load_fixture("github", "workflow_run-requested.json")) is None


def test_deployment_statuses_of_one_deployment_share_a_correlation():
    success = load_fixture("github", "deployment_status-created.json")
    pending = load_fixture("github", "deployment_status-created.json")
    pending["deployment_status"]["state"] = "in_progress"
    completed = github_event({"X-GitHub-Event": "deployment_status"}, success)
    started = github_event({"X-GitHub-Event": "deployment_status"}, pending)
    assert (started.status, completed.status) == ("started", "completed")
    assert started.correlation == completed.correlation is not None
    assert github_event({"X-GitHub-Event": "ping"}, {"zen": "hi"}) is None


async def test_a_retried_github_delivery_records_its_event_once_and_still_runs_the_alerts(events, pool):
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-1"}
    pk = await envelopes.record_envelope(pool, source="github", scope="", envelope_id="d-1", kind="workflow_run",
                                         payload=payload, headers=headers)
    envelope = await envelopes.get_envelope_by_pk(pool, pk)
    calls = []

    async def alerts_fail_once(row):
        calls.append(row.id)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return None

    with pytest.raises(RuntimeError):
        await events.process_github(envelope, alerts_fail_once)
    await events.process_github(envelope, alerts_fail_once)
    assert calls == [pk, pk]
    [event] = await store.list_events(pool, event_type="ci")
    assert event["status"] == "failed" and event["render_due_at"] is None, "ci has no route: recorded, not posted"


# --- the audit ---------------------------------------------------------------------------------------


async def test_every_audited_action_is_also_an_action_event_that_is_never_posted(pool):
    await audit.record_action(pool, actor="U0BOB", action="incident.ack", target_type="incident", target_id=12, details={"outcome": "changed"})
    await record_action(pool, "U0ADA", "heroku.rollback", "incident:13", {"app": "billing"})
    actions = await store.list_events(pool, event_type="action")
    assert [(a["actor"], a["status"], a["details"]["target"]) for a in actions] == [
        ("U0ADA", "heroku.rollback", "incident:13"),
        ("U0BOB", "incident.ack", "incident:12"),
    ]
    assert all(a["render_due_at"] is None for a in actions)
    assert len(await audit.list_actions(pool, target_type="incident", target_id=13)) == 1


async def test_ack_records_who_and_is_refused_politely_the_second_time(events, pool):
    event = await events.record(validate_event({"event_type": "ci", "status": "failed", "service": "api"}))
    first = await events.ack(event["id"], "U0BOB")
    second = await events.ack(event["id"], "U0ADA")
    assert first.changed and first.event["details"]["acked_by"] == "U0BOB"
    assert not second.changed and "<@U0BOB>" in second.note
    assert [a["status"] for a in await store.list_events(pool, event_type="action")] == ["event.ack", "event.ack"]


# --- blocks ------------------------------------------------------------------------------------------


async def test_a_failure_message_offers_ack_and_investigate_until_someone_takes_them(events, pool):
    event = await events.record(validate_event({"event_type": "scheduled_task", "status": "failed", "service": "backup",
                                                "details": {"exit code": "1"}, "link": "https://ci.example.com/1"}))
    before = rendered(event_message(event_view([event])))
    assert ACK in before and INVESTIGATE in before and "exit code" in before and "https://ci.example.com/1" in before
    await events.ack(event["id"], "U0BOB")
    after = rendered(event_message(event_view([await store.get_event(pool, event["id"])])))
    assert ACK not in after and INVESTIGATE in after and "Acked by <@U0BOB>" in after


async def test_a_success_has_no_buttons_and_sender_text_cannot_ping_the_channel(events):
    event = await events.record(validate_event({"event_type": "ci", "status": "passed", "service": "<!channel>"}))
    message = event_message(event_view([event]))
    parsed = [message["text"]] + mrkdwn_texts(message)  # plain_text (the header) is never parsed
    assert ACK not in rendered(message)
    assert not any("<!channel>" in t for t in parsed) and any("&lt;!channel&gt;" in t for t in parsed)


def mrkdwn_texts(value) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in mrkdwn_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in mrkdwn_texts(v)]
    return []


def test_the_routes_list_names_each_type_and_where_it_goes():
    text = rendered(routes_message({"deploy": "C0DEPLOY"}, DEFAULT))
    assert "<#C0DEPLOY>" in text and "#ops-alerts _(default)_" in text
    for event_type in ("ci", "deploy", "error_rate", "scheduled_task", "manual"):
        assert f"`{event_type}`" in text


# --- the notifier ------------------------------------------------------------------------------------


@pytest.fixture
async def notifier(pool, sandbox):
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    client = AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url)
    yield EventNotifier(pool, SlackDelivery(pool, client), default_channel=DEFAULT)


async def test_the_notifier_posts_an_event_then_updates_the_same_message(events, notifier, sandbox, pool):
    await events.record(validate_event(deploy("started", T0)))
    assert await notifier.deliver_due() == 1
    [message] = sandbox.messages["C0ALERTS"]
    await events.record(validate_event(deploy("failed", T0 + timedelta(minutes=2))))
    assert await notifier.deliver_due() == 1
    assert len(sandbox.messages["C0ALERTS"]) == 1 and message["edits"] == 1
    assert "took 2 min" in rendered(message) and ACK in rendered(message)


async def test_a_channel_slack_refuses_is_given_up_with_the_error_recorded(events, notifier, sandbox, pool):
    sandbox.fail_next("chat.postMessage", status=200, error="channel_not_found")
    event = await events.record(validate_event({"event_type": "ci", "status": "passed"}))
    await notifier.deliver_due()
    stored = await store.get_event(pool, event["id"])
    assert stored["render_due_at"] is None and stored["last_error"] == "slack: channel_not_found"


async def test_an_event_whose_routed_channel_refuses_pulser_is_posted_to_the_default_channel(events, notifier, sandbox, pool):
    sandbox.add_channel("C0DEPLOY", "ops-deploy")
    await events.set_route("deploy", "C0DEPLOY", "U0ADA")
    sandbox.fail_next("chat.postMessage", status=200, error="not_in_channel")
    event = await events.record(validate_event(deploy("started", T0)))
    await notifier.deliver_due()  # refused in C0DEPLOY
    await notifier.deliver_due()  # rerouted: posted where Pulser can post
    [message] = sandbox.messages["C0ALERTS"]
    assert "deploy" in rendered(message).lower()
    assert sandbox.messages.get("C0DEPLOY", []) == []
    stored = await store.get_event(pool, event["id"])
    assert stored["slack_ts"] == message["ts"]


async def test_a_rate_limited_post_is_retried_after_slack_says(events, notifier, sandbox, pool):
    sandbox.fail_next("chat.postMessage", status=429, retry_after=30)
    event = await events.record(validate_event({"event_type": "ci", "status": "passed"}))
    await notifier.deliver_due()
    stored = await store.get_event(pool, event["id"])
    assert stored["slack_ts"] is None
    assert timedelta(seconds=25) < stored["render_due_at"] - datetime.now(timezone.utc) <= timedelta(seconds=30)
