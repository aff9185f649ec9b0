"""Webhooks to Slack messages people act on, end to end: a running Pulser (sidecar, ledger
worker, pipeline, notifier, Bolt over Socket Mode) against the sandbox, driven over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from blocks.incidents import ACK, ACTIONS_BLOCK_PREFIX, INVESTIGATE, RESOLVE, SNOOZE
from storage import audit, envelopes, incidents, routing_rules
from alerts.routing import validate_rule
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings
from tests.fixtures import SENTRY_EXAMPLES, fixture_bytes, load_fixture

ALERTS = "C0ALERTS"


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.add_channel("C0API", "api-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user("U0BOB", name="bob", is_admin=False)
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        PULSER_ADMIN_TOKEN="admin-token",
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        **send.SECRETS_ENV,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as client:
        yield client


async def post(http, source: str, headers_and_body) -> httpx.Response:
    headers, body = headers_and_body
    return await http.post(f"/webhooks/{source}", headers=headers, content=body)


def top_level_posts(sandbox, channel=ALERTS):
    return [m for m in sandbox.messages.get(channel, []) if not m.get("thread_ts")]


def thread_replies(sandbox, channel=ALERTS):
    return [m for m in sandbox.messages.get(channel, []) if m.get("thread_ts") and m.get("thread_ts") != m.get("ts")]


def rendered(message) -> str:
    """Everything a person reads in a message: fallback text plus all block text."""
    return message.get("text", "") + json.dumps([message.get("attachments", []), message.get("blocks", [])], ensure_ascii=False)


def sentry_error(event_id: str, issue_id: str = "1170820242") -> dict:
    payload = load_fixture("sentry", "error-created.json")
    payload["data"]["error"]["event_id"] = event_id
    payload["data"]["error"]["issue_id"] = issue_id
    return payload


async def first_post(sandbox, channel=ALERTS):
    return (await eventually(lambda: top_level_posts(sandbox, channel), timeout=30))[0]


# --- receiving ---------------------------------------------------------------------------------------


async def test_a_sentry_error_becomes_one_message_with_the_incident_buttons(pulser, sandbox, http):
    response = await post(http, "sentry", send.sentry(sentry_error("e" * 32)))
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    message = await first_post(sandbox)
    text = rendered(message)
    assert "ReferenceError: blooopy is not defined" in text
    for action in (ACK, SNOOZE, RESOLVE, INVESTIGATE):
        assert action in text


async def test_a_replayed_delivery_is_acknowledged_and_changes_nothing(pulser, sandbox, http):
    delivery = send.sentry(sentry_error("f" * 32))
    assert (await post(http, "sentry", delivery)).status_code == 202
    await first_post(sandbox)
    replay = await post(http, "sentry", delivery)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    [incident] = await incidents.list_incidents(pulser.pool)
    assert incident["count"] == 1
    assert await envelopes.count_envelopes(pulser.pool, source="sentry") == 1


async def test_a_forged_signature_is_refused_and_nothing_is_stored(pulser, sandbox, http):
    response = await post(http, "sentry", send.sentry(sentry_error("a" * 32), secret="not-the-secret"))
    assert response.status_code == 401 and response.json()["error"] == "invalid signature"
    assert await envelopes.count_envelopes(pulser.pool, source="sentry") == 0


async def test_a_wrong_bearer_token_is_refused_as_an_invalid_token_naming_the_variable(pulser, http):
    response = await post(http, "generic", send.generic({"title": "x", "severity": "high"}, token="not-the-token"))
    assert response.status_code == 401 and response.json()["error"] == "invalid token"
    assert "PULSER_WEBHOOK_TOKEN" in response.json()["detail"]
    assert await envelopes.count_envelopes(pulser.pool, source="generic") == 0


async def test_a_body_that_is_not_what_the_source_sends_is_a_400_that_says_why(pulser, http):
    response = await post(http, "generic", send.generic({"severity": "high"}))
    assert response.status_code == 400
    assert "title" in json.dumps(response.json()["detail"])
    assert await envelopes.count_envelopes(pulser.pool, source="generic") == 0


async def test_an_unknown_source_is_a_404_listing_the_known_ones(pulser, http):
    response = await http.post("/webhooks/datadog", content=b"{}")
    assert response.status_code == 404 and "sentry" in response.json()["detail"]


async def test_one_hundred_repeats_of_a_sentry_issue_are_one_message_that_reads_100(pulser, sandbox, http):
    for i in range(100):
        response = await post(http, "sentry", send.sentry(sentry_error(f"{i:032x}")))
        assert response.status_code == 202
    await eventually(lambda: any("×100" in rendered(m) for m in top_level_posts(sandbox)), timeout=30)
    assert len(top_level_posts(sandbox)) == 1
    [incident] = await incidents.list_incidents(pulser.pool)
    assert incident["count"] == 100
    assert len(sandbox.calls_to("chat.update")) < 100




async def post_sentry_example(http, name: str, resource: str | None) -> httpx.Response:
    """Signed like Sentry's integration platform, or (legacy plugin) with the token in the callback URL."""
    if resource is None:
        return await http.post(
            f"/webhooks/sentry?token={send.WEBHOOK_TOKEN}", content=fixture_bytes("sentry", name),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
    return await post(http, "sentry", send.sentry(load_fixture("sentry", name), resource))


async def test_every_sentry_reference_example_is_accepted_and_the_firing_ones_are_posted(pulser, sandbox, http):
    for name, resource in SENTRY_EXAMPLES:
        response = await post_sentry_example(http, name, resource)
        assert (response.status_code, response.json()["alerts"]) == (202, 1), (name, response.text)
    await eventually(lambda: _processed(pulser, "sentry", len(SENTRY_EXAMPLES)), timeout=30)
    # The two resolutions name problems Pulser never saw fire; the issue and its error are one incident.
    await eventually(lambda: len(top_level_posts(sandbox)) == 5, timeout=30)
    assert sorted(i["title"] for i in await incidents.list_incidents(pulser.pool)) == [
        "Exception: Custom exception!",
        "ReferenceError: blooopy is not defined",
        "ReferenceError: heck is not defined",
        "This is an example Python exception",
        "This is an example Python exception",
    ]


async def test_a_sentry_error_naming_no_project_and_no_date_is_accepted_and_posted(pulser, sandbox, http):
    payload = sentry_error("c" * 32)
    for key in ("project", "url", "datetime", "timestamp"):
        del payload["data"]["error"][key]
    response = await post(http, "sentry", send.sentry(payload))
    assert response.status_code == 202, response.text
    assert "ReferenceError: blooopy is not defined" in rendered(await first_post(sandbox))
    [incident] = await incidents.list_incidents(pulser.pool)
    assert incident["service"] == "sentry"


async def _processed(pulser, source: str, count: int) -> bool:
    rows = await pulser.pool.fetch("SELECT status FROM envelopes WHERE source = $1", source)
    return len(rows) == count and all(r["status"] == "processed" for r in rows)


def sentry_metric_alert(action: str) -> dict:
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    payload["action"] = action
    return payload


async def test_a_sentry_metric_alert_going_from_critical_to_warning_shows_the_lower_severity(pulser, sandbox, http):
    assert (await post(http, "sentry", send.sentry(sentry_metric_alert("critical"), "metric_alert"))).status_code == 202
    message = await first_post(sandbox)
    assert "[CRITICAL] Too many errors" in rendered(message)
    assert (await post(http, "sentry", send.sentry(sentry_metric_alert("warning"), "metric_alert"))).status_code == 202
    await eventually(lambda: "[MEDIUM] Too many errors" in rendered(current(sandbox, message)), timeout=30)
    assert "[CRITICAL]" not in rendered(current(sandbox, message))
    [reply] = await eventually(lambda: thread_replies(sandbox), timeout=30)
    assert reply["thread_ts"] == message["ts"]
    assert "Severity lowered [CRITICAL] → [MEDIUM]" in reply["text"]


async def test_a_generic_alert_with_an_over_long_link_is_posted_and_the_answer_says_the_link_was_left_out(
    pulser, sandbox, http
):
    link = "https://ci.example.com/job/42/log?" + "x" * 3000
    response = await post(http, "generic", send.generic({"title": "Backup failed", "severity": "high", "link": link}))
    assert response.status_code == 202
    [warning] = response.json()["warnings"]
    assert warning.startswith("link is longer than 3,000 characters")
    assert "Backup failed" in rendered(await first_post(sandbox))


async def test_alertmanager_firing_and_resolved_alerts_of_one_notification(pulser, sandbox, http):
    # Both checkout instances fire first: two incidents, two messages.
    assert (await post_alertmanager(http, "captured-v0.25-firing-two-alerts.json")).status_code == 202
    await eventually(lambda: len(top_level_posts(sandbox)) == 2, timeout=30)
    messages = await eventually(lambda: _messages_by_instance(pulser), timeout=30)
    # Then one notification: checkout-1 resolved, checkout-2 still firing.
    assert (await post_alertmanager(http, "captured-v0.25-firing-with-one-resolved.json")).status_code == 202
    resolved = messages["checkout-1:8080"]
    await eventually(lambda: "Resolved" in rendered(current(sandbox, resolved)), timeout=30)
    await eventually(lambda: _deliveries_processed(pulser, 2), timeout=30)
    await eventually(lambda: _all_rendered(pulser), timeout=30)
    assert {i["labels"]["instance"]: i["status"] for i in await incidents.list_incidents(pulser.pool)} == {
        "checkout-1:8080": "resolved", "checkout-2:8080": "firing",
    }
    still_firing = current(sandbox, messages["checkout-2:8080"])
    assert "Resolved" not in rendered(still_firing) and ACK in rendered(still_firing), "checkout-2 still pages"
    assert len(top_level_posts(sandbox)) == 2, "each message is updated in place, none posted again"


async def post_alertmanager(http, fixture: str) -> httpx.Response:
    body = fixture_bytes("alertmanager", fixture)
    return await http.post("/webhooks/alertmanager", content=body, headers={"Authorization": f"Bearer {send.WEBHOOK_TOKEN}"})


async def _messages_by_instance(pulser) -> dict[str, dict] | None:
    """instance label → the Slack message (channel, ts) of its incident, once every one is posted."""
    found = {}
    for incident in await incidents.list_incidents(pulser.pool):
        posted = [m for m in await incidents.messages_for(pulser.pool, incident["id"]) if m["slack_ts"]]
        if not posted:
            return None
        found[incident["labels"]["instance"]] = {"channel": posted[0]["slack_channel"], "ts": posted[0]["slack_ts"]}
    return found or None


async def _deliveries_processed(pulser, count: int) -> bool:
    rows = await pulser.pool.fetch("SELECT status FROM envelopes WHERE source = 'alertmanager'")
    return len(rows) == count and all(r["status"] == "processed" for r in rows)


async def _all_rendered(pulser) -> bool:
    """Every incident message posted and nothing left to send or retry: the outbox is drained."""
    messages = [m for i in await incidents.list_incidents(pulser.pool) for m in await incidents.messages_for(pulser.pool, i["id"])]
    return bool(messages) and all(m["slack_ts"] and m["render_due_at"] is None for m in messages)


async def test_a_github_workflow_failure_posts_a_message(pulser, sandbox, http):
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    response = await post(http, "github", send.github(payload, "workflow_run"))
    assert response.status_code == 202
    # The same delivery also becomes a ci platform event with a message of its own.
    incident_posts = await eventually(
        lambda: [m for m in top_level_posts(sandbox) if "incident_ack" in rendered(m)], timeout=10
    )
    assert "GitHub" in rendered(incident_posts[0])


async def test_a_resolved_alert_says_so_on_the_message(pulser, sandbox, http):
    alert = {"title": "Disk full on db-1", "service": "db", "env": "production", "severity": "critical", "fingerprint": "disk-db-1"}
    await post(http, "generic", send.generic(alert))
    message = await first_post(sandbox)
    await post(http, "generic", send.generic({**alert, "status": "resolved"}))
    await eventually(lambda: "Resolved" in rendered(sandbox.state.find_message(message["channel"], message["ts"])), timeout=30)


async def test_a_rule_routes_prod_high_api_alerts_to_its_channel_and_the_rest_to_the_default(pulser, sandbox, http):
    await routing_rules.create_rule(
        pulser.pool,
        validate_rule(
            {"name": "api prod", "envs": "production", "min_severity": "high", "services": "api", "channel": "#api-alerts"}
        ).as_row(),
        created_by="U0ALICE",
    )
    await post(http, "generic", send.generic({"title": "API 5xx", "service": "api", "env": "prod", "severity": "critical"}))
    await post(http, "generic", send.generic({"title": "API slow", "service": "api", "env": "prod", "severity": "medium"}))
    await post(http, "generic", send.generic({"title": "Worker 5xx", "service": "worker", "env": "prod", "severity": "high"}))
    api_posts = await eventually(lambda: top_level_posts(sandbox, "C0API"), timeout=30)
    default_posts = await eventually(lambda: len(top_level_posts(sandbox)) == 2 and top_level_posts(sandbox), timeout=30)
    assert [m for m in api_posts if "API 5xx" in rendered(m)] and len(api_posts) == 1
    assert {"API slow", "Worker 5xx"} == {t for t in ("API slow", "Worker 5xx") for m in default_posts if t in rendered(m)}


# --- buttons -----------------------------------------------------------------------------------------


async def open_incident(http, sandbox, pulser, title="Payment API down", **extra):
    await post(http, "generic", send.generic({"title": title, "service": "payments", "env": "production", "severity": "high", **extra}))
    message = await first_post(sandbox)
    [incident] = await incidents.list_incidents(pulser.pool)
    return message, incident


async def click(sandbox, action_id, message, incident, user="U0ALICE", value=None, action_type="button"):
    return await sandbox.send_block_action(
        action_id,
        value if value is not None else str(incident["id"]),
        user_id=user,
        channel_id=message["channel"],
        message_ts=message["ts"],
        block_id=f"{ACTIONS_BLOCK_PREFIX}{incident['id']}",
        action_type=action_type,
    )


def current(sandbox, message):
    return sandbox.state.find_message(message["channel"], message["ts"])


async def test_ack_updates_the_message_in_place_and_is_audited(pulser, sandbox, http):
    message, incident = await open_incident(http, sandbox, pulser)
    await click(sandbox, ACK, message, incident, user="U0BOB")
    await eventually(lambda: "U0BOB" in rendered(current(sandbox, message)), timeout=30)
    assert len(top_level_posts(sandbox)) == 1
    [entry] = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident["id"])
    assert entry["actor"] == "U0BOB" and entry["action"] == "incident.ack"


async def test_snooze_records_until_when_and_shows_it(pulser, sandbox, http):
    message, incident = await open_incident(http, sandbox, pulser)
    await click(sandbox, SNOOZE, message, incident, value="snooze:60", action_type="static_select")
    snoozed = await eventually(lambda: _snoozed(pulser, incident["id"]), timeout=30)
    assert timedelta(minutes=59) < snoozed - datetime.now(timezone.utc) <= timedelta(minutes=60)
    await eventually(lambda: "Snoozed" in rendered(current(sandbox, message)), timeout=30)


async def _snoozed(pulser, incident_id):
    return (await incidents.get_incident(pulser.pool, incident_id))["snoozed_until"]


async def test_resolve_closes_the_incident_and_removes_the_buttons(pulser, sandbox, http):
    message, incident = await open_incident(http, sandbox, pulser)
    await click(sandbox, RESOLVE, message, incident)
    await eventually(lambda: ACK not in rendered(current(sandbox, message)), timeout=30)
    resolved = await incidents.get_incident(pulser.pool, incident["id"])
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "U0ALICE"


async def test_investigate_assigns_the_clicker_and_opens_a_thread_with_the_details(pulser, sandbox, http):
    message, incident = await open_incident(http, sandbox, pulser, description="p99 latency 12 s")
    await click(sandbox, INVESTIGATE, message, incident, user="U0BOB")
    reply = (await eventually(lambda: thread_replies(sandbox), timeout=30))[0]
    assert reply["thread_ts"] == message["ts"]
    assert "U0BOB" in rendered(reply) and "p99 latency 12 s" in rendered(reply)
    assert (await incidents.get_incident(pulser.pool, incident["id"]))["investigator"] == "U0BOB"


async def test_an_ack_after_the_source_resolved_the_incident_does_not_reopen_it(pulser, sandbox, http):
    message, incident = await open_incident(http, sandbox, pulser, fingerprint="race")
    await post(http, "generic", send.generic({"title": "Payment API down", "service": "payments", "env": "production", "status": "resolved", "fingerprint": "race"}))
    await eventually(lambda: _status(pulser, incident["id"], "resolved"), timeout=30)
    await click(sandbox, ACK, message, incident)
    await eventually(lambda: sandbox.ephemerals or sandbox.response_url_posts, timeout=30)
    after = await incidents.get_incident(pulser.pool, incident["id"])
    assert after["status"] == "resolved" and after["acked_by"] is None


async def _status(pulser, incident_id, status):
    return (await incidents.get_incident(pulser.pool, incident_id))["status"] == status


# --- escalation --------------------------------------------------------------------------------------


async def escalating_rule(pulser):
    await routing_rules.create_rule(
        pulser.pool,
        validate_rule(
            {"name": "payments", "services": "payments", "channel": "#ops-alerts", "escalate_after_minutes": 5,
             "escalate_to": "U0CAROL", "escalation_levels": 2}
        ).as_row(),
        created_by="U0ALICE",
    )


async def test_nobody_acks_so_escalation_mentions_the_target_in_the_thread_and_the_channel(pulser, sandbox, http):
    await escalating_rule(pulser)
    message, incident = await open_incident(http, sandbox, pulser)
    await eventually(lambda: _armed(pulser, incident["id"]), timeout=30)
    assert (await pulser.sweep.run_once(now=datetime.now(timezone.utc) + timedelta(minutes=2))).get("escalated") == 0
    await _five_minutes_pass(pulser, incident["id"])
    done = await pulser.sweep.run_once()
    assert done["escalated"] == 1
    reply = (await eventually(lambda: thread_replies(sandbox), timeout=30))[0]
    assert "<@U0CAROL>" in rendered(reply) and reply["thread_ts"] == message["ts"]
    posts = await eventually(lambda: len(top_level_posts(sandbox)) == 2 and top_level_posts(sandbox), timeout=30)
    assert "<@U0CAROL>" in rendered(posts[1])


async def _five_minutes_pass(pulser, incident_id):
    """The escalation deadline moves into the past, as if the wait had passed: the sweep and the
    notifier then run on the same (real) clock."""
    await pulser.pool.execute(
        "UPDATE incident_messages SET next_escalation_at = now() - interval '1 second'"
        " WHERE incident_id = $1 AND next_escalation_at IS NOT NULL",
        incident_id,
    )


async def _armed(pulser, incident_id):
    return all(m["next_escalation_at"] for m in await incidents.messages_for(pulser.pool, incident_id, escalation_posts=False))


async def test_resolving_from_an_escalation_post_turns_every_message_of_the_incident_resolved(pulser, sandbox, http):
    await escalating_rule(pulser)
    message, incident = await open_incident(http, sandbox, pulser)
    await eventually(lambda: _armed(pulser, incident["id"]), timeout=30)
    await _five_minutes_pass(pulser, incident["id"])
    assert (await pulser.sweep.run_once())["escalated"] == 1
    posts = await eventually(lambda: len(top_level_posts(sandbox)) == 2 and top_level_posts(sandbox), timeout=30)
    escalation = posts[1]
    assert "not been acknowledged" in rendered(escalation) and RESOLVE in rendered(escalation)

    await click(sandbox, RESOLVE, escalation, incident, user="U0BOB")

    for shown in (message, escalation):
        await eventually(lambda: "Resolved by <@U0BOB>" in rendered(current(sandbox, shown)), timeout=30)
    after = current(sandbox, escalation)
    assert "not been acknowledged" not in rendered(after) and "is resolved" in rendered(after)
    assert ACK not in rendered(after) and RESOLVE not in rendered(after)
    assert len(top_level_posts(sandbox)) == 2, "updated in place, nothing posted again"


async def test_an_acked_incident_does_not_escalate(pulser, sandbox, http):
    await escalating_rule(pulser)
    message, incident = await open_incident(http, sandbox, pulser)
    await eventually(lambda: _armed(pulser, incident["id"]), timeout=30)
    await click(sandbox, ACK, message, incident)
    await eventually(lambda: _acked(pulser, incident["id"]), timeout=30)
    done = await pulser.sweep.run_once(now=datetime.now(timezone.utc) + timedelta(minutes=30))
    assert done["escalated"] == 0
    assert thread_replies(sandbox) == [] and len(top_level_posts(sandbox)) == 1


async def _acked(pulser, incident_id):
    return (await incidents.get_incident(pulser.pool, incident_id))["acked_by"] is not None


# --- delivery ----------------------------------------------------------------------------------------


async def test_with_slack_rate_limiting_the_message_is_delivered_once_later(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    await post(http, "generic", send.generic({"title": "Queue backlog", "service": "jobs", "severity": "high"}))
    await eventually(lambda: top_level_posts(sandbox), timeout=30)
    await eventually(lambda: _all_rendered(pulser), timeout=30)  # posted, no retry left to send it again
    assert len(top_level_posts(sandbox)) == 1
    assert len(pulser.delivery.throttled_channels()) <= 1


async def test_with_slack_answering_500_the_message_is_retried_and_delivered_once(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=500, times=2)
    await post(http, "generic", send.generic({"title": "Cache down", "service": "cache", "severity": "critical"}))
    await eventually(lambda: top_level_posts(sandbox), timeout=30)
    await eventually(lambda: _all_rendered(pulser), timeout=30)  # posted, no retry left to send it again
    assert len(top_level_posts(sandbox)) == 1


async def test_a_missing_channel_shows_in_health_and_is_reported_in_the_default_channel(pulser, sandbox, http):
    await routing_rules.create_rule(
        pulser.pool,
        validate_rule({"name": "gone", "services": "ghost", "channel": "#no-such-channel"}).as_row(),
        created_by="U0ALICE",
    )
    # The sandbox posts to any channel name; Slack would answer this for a channel that is gone.
    sandbox.fail_next("chat.postMessage", status=200, error="channel_not_found", times=1)
    await post(http, "generic", send.generic({"title": "Ghost alert", "service": "ghost", "severity": "high"}))
    [warning] = await eventually(lambda: [m for m in top_level_posts(sandbox) if "channel_not_found" in rendered(m)], timeout=30)
    assert "#no-such-channel" in rendered(warning)
    # The incident itself is shown in the default channel meanwhile, not just the note.
    await eventually(lambda: [m for m in top_level_posts(sandbox) if "Ghost alert" in rendered(m)], timeout=30)
    health = (await http.get("/health")).json()
    assert health["components"]["slack_delivery"]["channel_errors"] == {"#no-such-channel": "channel_not_found"}


async def test_a_revoked_token_takes_slack_delivery_down_in_health(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=200, error="token_revoked", times=1)
    await post(http, "generic", send.generic({"title": "Anything", "severity": "high"}))
    await eventually(lambda: pulser.delivery.auth_problem is not None, timeout=30)
    response = await http.get("/health")
    assert response.status_code == 503
    assert response.json()["components"]["slack_delivery"]["error"] == "token_revoked"


async def test_api_delivery_reports_the_last_webhook_per_source_and_the_last_slack_delivery(pulser, sandbox, http):
    await post(http, "generic", send.generic({"title": "Anything", "severity": "high"}))
    await first_post(sandbox)

    async def delivered_report():
        # Slack shows the message a moment before Pulser has recorded that it was delivered.
        report = (await http.get("/api/delivery", headers={"Authorization": "Bearer admin-token"})).json()
        return report if report["slack"]["last_delivery"] is not None else None

    report = await eventually(delivered_report, timeout=30)
    assert report["webhooks"]["sources"]["generic"]["last_received"] is not None
    assert report["webhooks"]["sources"]["sentry"]["last_received"] is None
    assert report["slack"]["last_delivery"] is not None
    assert report["last_hour"]["ok"] >= 1


# --- pulser send-alert -------------------------------------------------------------------------------


async def test_send_alert_posts_through_the_same_pipeline(pulser, sandbox, monkeypatch, capsys):
    from bot import cli

    monkeypatch.setenv("PULSER_WEBHOOK_TOKEN", send.WEBHOOK_TOKEN)
    code = await asyncio.to_thread(
        cli.main,
        ["send-alert", "--severity", "critical", "--title", "Manual page: checkout broken", "--message", "customers see 500s",
         "--service", "checkout", "--tag", "team=payments", "--url", f"http://127.0.0.1:{pulser.http_port}"],
    )
    assert code == 0 and "accepted" in capsys.readouterr().out
    message = await first_post(sandbox)
    assert "Manual page: checkout broken" in rendered(message)
    [incident] = await incidents.list_incidents(pulser.pool)
    assert incident["severity"] == "critical" and incident["labels"]["team"] == "payments"


def test_send_alert_without_a_token_says_which_variable_to_set(monkeypatch, capsys):
    from bot import cli

    monkeypatch.delenv("PULSER_WEBHOOK_TOKEN", raising=False)
    assert cli.main(["send-alert", "--title", "x"]) == 2
    assert "PULSER_WEBHOOK_TOKEN" in capsys.readouterr().err


def test_send_alert_refuses_a_malformed_tag(monkeypatch, capsys):
    from bot import cli

    monkeypatch.setenv("PULSER_WEBHOOK_TOKEN", "t")
    assert cli.main(["send-alert", "--title", "x", "--tag", "no-equals-sign"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


async def test_a_legacy_sentry_plugin_delivery_is_accepted_with_the_token_in_the_url(pulser, sandbox, http):
    body = fixture_bytes("sentry", "legacy-webhooks-plugin-sentry9.json")
    refused = await http.post("/webhooks/sentry", content=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    accepted = await http.post(
        f"/webhooks/sentry?token={send.WEBHOOK_TOKEN}", content=body, headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 202
    await first_post(sandbox)
