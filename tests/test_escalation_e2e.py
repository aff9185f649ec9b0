"""Paging beyond Slack, end to end: a running Pulser (sidecar, pipeline, escalation engine,
outbound dispatcher, Bolt over Socket Mode) against the Slack sandbox and local stand-ins for
Discord, GitHub, PagerDuty, Twilio and an SMTP server, set up over the API as a user would.

The policy is the monitoring design's: L1 Discord and Slack; after 15 min L2 an e-mail to the
on-call person and a repeat in Slack with a mention; after 30 min L3 a GitHub issue, an SMS and
PagerDuty. Time is moved by taking the engine's due steps at a later `now`; what those steps
queue is delivered by the running dispatcher, to the stand-ins, for real."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatEvent
from blocks.incidents import ACK, ACTIONS_BLOCK_PREFIX
from storage import applications, escalation, incidents, outbound
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings

OPS = "C0OPS"
ONCALL = "U0ONCALL"


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(OPS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user(ONCALL, name="oncall", is_admin=False)
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, PULSER_ADMIN_TOKEN="admin-token", SLACK_CHANNEL=OPS,
        ALERT_UPDATE_DEBOUNCE_SECONDS="0", **send.SECRETS_ENV,
    )


@pytest.fixture
async def api(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10,
                                 headers={"Authorization": "Bearer admin-token"}) as client:
        yield client


@pytest.fixture
async def smtp(smtp_server):
    return await smtp_server("none")


@pytest.fixture
async def paging(pulser, api, standins, smtp):
    """Channels, a schedule with ONCALL on call, their personal rules, the L1–L3 policy and a rule."""
    for name, kind, settings in (
        ("discord", "discord", {"webhook_url": standins.discord_url}),
        ("ops-email", "email", {"host": "127.0.0.1", "port": smtp.port, "security": "none", "from": "pulser@example.com",
                                "to": ["ops@example.com"]}),
        ("github", "github", {"repository": standins.github_repository, "token": standins.github_token,
                              "api_url": standins.base_url}),
        ("sms", "twilio", {"account_sid": standins.twilio_sid, "auth_token": standins.twilio_token,
                           "from_number": "+15005550006", "to": ["+15005550001"], "api_base": standins.base_url}),
        ("pagerduty", "pagerduty", {"routing_key": standins.pagerduty_key, "events_url": standins.pagerduty_url}),
    ):
        answer = await api.post("/api/outbound-channels", json={"name": name, "kind": kind, "settings": settings})
        assert answer.status_code == 201, answer.text
    schedule = await api.post("/api/schedules", json={"name": "Primary", "time_zone": "UTC", "layers": [
        {"members": [ONCALL], "shift": "1 week", "handoff": "09:00", "start": "2026-11-30"}]})
    assert schedule.status_code == 201, schedule.text
    await pulser.pool.execute("INSERT INTO user_contacts (user_id, email, phone) VALUES ($1, 'oncall@example.com', '+15005550009')", ONCALL)
    await pulser.pool.execute("INSERT INTO notification_rules (user_id, position, method, delay_minutes) VALUES ($1, 1, 'email', 0)", ONCALL)
    policy = await api.post("/api/escalation-policies", json={"name": "Monitoring L1-L3", "steps": [
        {"kind": "outbound", "channel": "discord"},
        {"kind": "wait", "wait_minutes": 15},
        {"kind": "oncall", "target": "Primary", "min_severity": "high"},
        {"kind": "slack_channel", "target": OPS, "mention": "@here"},
        {"kind": "wait", "wait_minutes": 15},
        {"kind": "outbound", "channel": "github", "min_severity": "high"},
        {"kind": "outbound", "channel": "sms", "min_severity": "critical"},
        {"kind": "outbound", "channel": "pagerduty", "min_severity": "critical"},
    ]})
    assert policy.status_code == 201, policy.text
    rule = await api.post("/api/rules", json={"name": "production", "envs": ["production"], "channel": OPS,
                                              "escalation_policy_id": policy.json()["id"]})
    assert rule.status_code == 201, rule.text
    return policy.json()


async def fire(api, pulser, *, severity: str = "critical", status: str = "firing") -> dict:
    payload = {"title": "Checkout API down", "service": "checkout", "env": "production", "severity": severity,
               "status": status, "fingerprint": "checkout-down", "description": "5xx rate above 50 %"}
    headers, body = send.generic(payload)
    answer = await api.post("/webhooks/generic", headers=headers, content=body)
    assert answer.status_code == 202, answer.text
    if status == "resolved":
        return {}
    [incident] = await eventually(lambda: incidents.list_incidents(pulser.pool), timeout=30)
    # The running engine takes L1 at once; moving time on before it has would race it for the run.
    await eventually(lambda: _l1_taken(pulser, incident["id"]), timeout=30)
    return incident


async def _l1_taken(pulser, incident_id: int) -> bool:
    [run] = await escalation.runs_for_incident(pulser.pool, incident_id) or [None]
    return run is not None and run["next_position"] > 1


async def after(pulser, incident: dict, minutes: int) -> None:
    """Take the steps due `minutes` after the incident opened (and a little: the first step was
    taken a moment after it opened, by the running engine, and its wait counts from then)."""
    now = incident["first_seen"] + timedelta(minutes=minutes, seconds=10)

    async def caught_up() -> bool:
        # A step waits while another transaction holds the incident (the notifier recording a
        # post): take due steps until none is left at `now`.
        await pulser.escalation.run_due(now=now)
        return not await pulser.pool.fetchval(
            """SELECT (SELECT count(*) FROM incident_escalations WHERE incident_id = $1 AND status = 'active' AND due_at <= $2)
                    + (SELECT count(*) FROM personal_pages WHERE incident_id = $1 AND status = 'active' AND due_at <= $2)""",
            incident["id"], now,
        )

    await eventually(caught_up, timeout=30)


async def to_l3(pulser, incident: dict) -> None:
    """Nobody acknowledges for half an hour: L2 after 15 minutes, L3 after 30."""
    await after(pulser, incident, 15)
    await after(pulser, incident, 30)


async def settled(pulser, incident_id: int) -> list[dict]:
    """The incident's deliveries once none is waiting any more."""
    async def done():
        rows = await outbound.deliveries_for_incident(pulser.pool, incident_id)
        return rows if rows and all(r["status"] != "pending" for r in rows) else None
    return await eventually(done, timeout=30)


def ops_posts(sandbox) -> list[dict]:
    return [m for m in sandbox.messages.get(OPS, []) if not m.get("thread_ts")]


async def test_an_unacknowledged_critical_walks_l1_l2_l3_with_one_message_per_step(pulser, sandbox, api, standins, smtp, paging):
    incident = await fire(api, pulser)
    await eventually(lambda: standins.received("discord"), timeout=30)
    await eventually(lambda: len(ops_posts(sandbox)) == 1, timeout=30)  # L1's Slack part: the routed post

    await after(pulser, incident, 15)
    await eventually(lambda: len(smtp.messages) == 1, timeout=30)
    assert smtp.envelopes[0][1] == ["oncall@example.com"] and "Checkout API down" in smtp.messages[0]["Subject"]
    await eventually(lambda: len(ops_posts(sandbox)) == 2, timeout=30)
    assert "<!here>" in str(ops_posts(sandbox)[1])

    await after(pulser, incident, 30)
    await settled(pulser, incident["id"])
    [issue] = standins.github_issues[standins.github_repository].values()
    assert issue["state"] == "open" and "Checkout API down" in issue["title"]
    [sms] = standins.received("twilio")
    assert sms.form["To"] == "+15005550001" and "critical" in sms.form["Body"].lower()
    [trigger] = standins.received("pagerduty")
    assert trigger.json["event_action"] == "trigger" and trigger.json["payload"]["severity"] == "critical"
    assert len(standins.received("discord")) == 1 and len(smtp.messages) == 1


async def test_ack_midway_stops_the_rest_and_acknowledges_upstream(pulser, sandbox, api, standins, smtp, paging):
    incident = await fire(api, pulser)
    await to_l3(pulser, incident)  # L1 … L3 all taken: PagerDuty triggered
    await eventually(lambda: standins.received("pagerduty"), timeout=30)
    message = (await eventually(lambda: ops_posts(sandbox), timeout=30))[0]
    await sandbox.send_block_action(ACK, str(incident["id"]), user_id="U0ALICE", channel_id=message["channel"],
                                    message_ts=message["ts"], block_id=f"{ACTIONS_BLOCK_PREFIX}{incident['id']}")
    await eventually(lambda: len(standins.received("pagerduty")) == 2, timeout=30)
    acknowledge = standins.received("pagerduty")[1].json
    assert acknowledge["event_action"] == "acknowledge" and acknowledge["dedup_key"] == f"pulser-incident-{incident['id']}"
    await after(pulser, incident, 120)
    deliveries = await settled(pulser, incident["id"])
    assert [d["action"] for d in deliveries if d["channel_name"] == "pagerduty"] == ["trigger", "acknowledge"]
    assert len(standins.received("discord")) == 1


async def test_ack_before_l2_means_l2_and_l3_never_happen(pulser, sandbox, api, standins, smtp, paging):
    incident = await fire(api, pulser)
    await eventually(lambda: standins.received("discord"), timeout=30)
    await pulser.incident_actions.ack(incident["id"], "U0ALICE")
    await after(pulser, incident, 60)
    await settled(pulser, incident["id"])
    assert smtp.messages == [] and standins.received("pagerduty") == [] and standins.received("twilio") == []


async def test_resolving_closes_the_github_issue_and_resolves_pagerduty(pulser, sandbox, api, standins, smtp, paging):
    incident = await fire(api, pulser)
    await to_l3(pulser, incident)
    await eventually(lambda: standins.github_issues[standins.github_repository], timeout=30)
    await fire(api, pulser, status="resolved")
    await eventually(lambda: standins.pagerduty_alerts.get(f"pulser-incident-{incident['id']}", {}).get("status") == "resolved",
                     timeout=30)
    [issue] = await eventually(
        lambda: [i for i in standins.github_issues[standins.github_repository].values() if i["state"] == "closed"], timeout=30
    )
    assert issue["state_reason"] == "completed"


async def test_a_failing_channel_is_retried_then_shown_failed_and_the_policy_goes_on(pulser, sandbox, api, standins, smtp, paging):
    pulser.dispatcher.max_attempts, pulser.dispatcher.backoff_base = 2, 0.05
    standins.fail_next("discord", 503, times=5)
    incident = await fire(api, pulser)
    [delivery] = await eventually(
        lambda: _failed(pulser, incident["id"]), timeout=30
    )
    assert delivery["attempts"] == 2 and "503" in delivery["last_error"]
    assert len(standins.attempts("discord")) == 2
    health = (await api.get("/health")).json()["components"]["outbound"]
    assert health["status"] == "degraded" and "503" in health["failing"]["discord"]
    await after(pulser, incident, 15)
    await eventually(lambda: len(smtp.messages) == 1, timeout=30)  # L2 went out all the same


async def test_refused_credentials_fail_at_once_without_retrying(pulser, sandbox, api, standins, smtp, paging):
    standins.fail_next("twilio", 401)  # Twilio's 20003: the auth token is wrong
    incident = await fire(api, pulser)
    await to_l3(pulser, incident)
    deliveries = await settled(pulser, incident["id"])
    [texted] = [d for d in deliveries if d["channel_name"] == "sms"]
    assert texted["status"] == "failed" and texted["attempts"] == 1
    assert "401" in texted["last_error"] and standins.twilio_token not in texted["last_error"]
    assert len(standins.attempts("twilio")) == 1 and standins.received("pagerduty")  # the next step went on


async def test_a_missed_heartbeat_escalates_the_same_way(pulser, sandbox, api, standins, smtp, paging):
    rule = await api.post("/api/rules", json={"name": "heartbeats", "sources": ["heartbeat"], "channel": OPS,
                                              "escalation_policy_id": paging["id"], "position": 1})
    assert rule.status_code == 201, rule.text
    spec = validate_application({"name": "nightly-backup", "expected_interval": 60, "grace_period": 0}, default_channel=OPS)
    app = await applications.create_application(pulser.pool, spec, created_by="U0ALICE")
    last = datetime.now(timezone.utc) - timedelta(minutes=5)  # its deadline passed four minutes ago
    await pulser.heartbeat_writer.submit(HeartbeatEvent(uuid=app.uuid, kind="success", exit_code=None, received_at=last))
    [incident] = await eventually(lambda: incidents.list_incidents(pulser.pool), timeout=30)
    assert incident["source"] == "heartbeat" and incident["title"] == "nightly-backup missed its heartbeat"
    await eventually(lambda: _l1_taken(pulser, incident["id"]), timeout=30)
    [discord] = await eventually(lambda: standins.received("discord"), timeout=30)
    assert "nightly-backup missed its heartbeat" in json.dumps(discord.json)
    await after(pulser, incident, 15)
    await eventually(lambda: len(smtp.messages) == 1, timeout=30)  # high: the on-call person, by their e-mail rule
    assert "nightly-backup" in smtp.messages[0]["Subject"]


async def _failed(pulser, incident_id: int):
    rows = await outbound.deliveries_for_incident(pulser.pool, incident_id)
    return [r for r in rows if r["status"] == "failed"] or None


async def test_the_timeline_lists_every_step_and_page(pulser, sandbox, api, standins, smtp, paging):
    incident = await fire(api, pulser)
    await to_l3(pulser, incident)
    await settled(pulser, incident["id"])
    timeline = (await api.get(f"/api/incidents/{incident['id']}")).json()["timeline"]
    pages = [e["text"] for e in timeline if e["kind"] == "page"]
    assert any("discord" in p and "delivered" in p for p in pages)
    assert any("e-mail to oncall@example.com" in p and "delivered" in p for p in pages)
    steps = [e["text"] for e in timeline if e["kind"] == "escalation_step"]
    assert len(steps) == 6 and "page whoever is on call for Primary" in steps[1]


async def test_a_step_paging_someone_not_in_the_workspace_is_refused(pulser, sandbox, api):
    answer = await api.post("/api/escalation-policies", json={"name": "typo", "steps": [
        {"kind": "user", "target": "U0NOBODY"}, {"kind": "user", "target": ONCALL}]})
    assert answer.status_code == 400
    assert answer.json()["detail"] == {"steps[0].target": "U0NOBODY is not a user of this Slack workspace"}
