"""Escalation policies walked on a real Postgres with time passed in: steps in order, waits,
severity conditions, repeats, personal notification rules, and what acknowledging, resolving and
reopening do. What the outbox then sends is tests/test_escalation_e2e.py's business."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts import oncall
from alerts.escalation import admin
from alerts.oncall.validation import validate_schedule
from alerts.escalation.engine import EscalationEngine
from alerts.incident_actions import IncidentActions
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.routing import validate_rule
from storage import escalation, incidents, outbound, routing_rules, schedules

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


def alert(severity: str = "critical", status: str = "firing", fingerprint: str = "db-down") -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", source_event_id="e1", service="api", env="production", severity=severity,
        fingerprint=fingerprint, title="Database unreachable", description="connection refused", occurred_at=T0,
        status=status,
    )


@pytest.fixture
async def primary(pool) -> str:
    """A schedule whose one rotation has U0ONCALL on call all week, every week."""
    spec = validate_schedule({"name": "Primary", "time_zone": "Europe/Berlin", "layers": [
        {"members": ["U0ONCALL"], "shift": "1 week", "handoff": "09:00", "start": "2026-11-30"},
    ]})
    await schedules.create_schedule(pool, name=spec.name, time_zone=spec.time_zone, feed_token="t" * 32,
                                    layers=[layer.as_row() for layer in spec.layers], created_by="test")
    return spec.name


@pytest.fixture
def pipeline(pool) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts", storms=None))


@pytest.fixture
def engine(pool) -> EscalationEngine:
    return EscalationEngine(pool, on_call=oncall.on_call)


@pytest.fixture
async def channels(pool, primary) -> dict[str, int]:
    made = {}
    for name, kind, settings in (
        ("discord", "discord", {"webhook_url": "https://discord.com/api/webhooks/1/abc"}),
        ("pagerduty", "pagerduty", {"routing_key": "R" * 32}),
        ("email", "email", {"host": "smtp.example.com", "from": "pulser@example.com", "to": ["ops@example.com"]}),
        ("sms", "twilio", {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32, "from_number": "+15005550006",
                           "to": ["+15005550001"]}),
    ):
        made[name] = (await admin.save_channel(pool, {"name": name, "kind": kind, "settings": settings}, actor="test"))["id"]
    return made


async def policy(pool, steps: list[dict], repeat: int = 0) -> int:
    return (await admin.save_policy(pool, {"name": "Production paging", "repeat": repeat, "steps": steps}, actor="test"))["id"]


async def route_to(pool, policy_id: int) -> None:
    spec = validate_rule({"name": "prod", "envs": "production", "channel": "#ops-alerts", "escalation_policy_id": policy_id})
    await routing_rules.create_rule(pool, spec.as_row(), created_by="test")


async def deliveries(pool, incident_id: int) -> list[tuple[str, str, str | None]]:
    """(channel name or method, action, recipient) of every delivery, in order."""
    return [(d["channel_name"] if d["method"] == "channel" else d["method"], d["action"], d["recipient"])
            for d in await outbound.deliveries_for_incident(pool, incident_id)]


L1_L3 = [
    {"kind": "outbound", "channel": "discord"},
    {"kind": "wait", "wait_minutes": 15},
    {"kind": "outbound", "channel": "email", "min_severity": "high"},
    {"kind": "wait", "wait_minutes": 15},
    {"kind": "outbound", "channel": "pagerduty", "min_severity": "critical"},
    {"kind": "oncall", "target": "Primary", "min_severity": "critical"},
]


async def test_the_first_step_is_taken_when_the_incident_opens(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    assert await deliveries(pool, opened.incident_id) == [("discord", "trigger", None)]


async def test_steps_after_a_wait_are_taken_when_the_wait_is_over(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    await engine.run_due(now=T0 + timedelta(minutes=14, seconds=59))
    assert len(await deliveries(pool, opened.incident_id)) == 1
    await engine.run_due(now=T0 + timedelta(minutes=15))
    await engine.run_due(now=T0 + timedelta(minutes=30))
    assert await deliveries(pool, opened.incident_id) == [
        ("discord", "trigger", None), ("email", "trigger", None), ("pagerduty", "trigger", None),
        ("slack_dm", "trigger", "U0ONCALL"),
    ]


async def test_steps_below_their_severity_are_skipped(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(severity="medium"), now=T0)
    for minutes in (0, 15, 30):
        await engine.run_due(now=T0 + timedelta(minutes=minutes))
    assert await deliveries(pool, opened.incident_id) == [("discord", "trigger", None)]


async def test_taking_the_same_run_twice_sends_nothing_twice(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    # A process that died after its steps and before the advance: the run is due at its old place.
    await pool.execute("UPDATE incident_escalations SET next_position = 1, due_at = $1", T0)
    await engine.run_due(now=T0)
    assert await deliveries(pool, opened.incident_id) == [("discord", "trigger", None)]


async def test_acknowledging_stops_the_policy_and_acknowledges_where_it_was_paged(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, [{"kind": "outbound", "channel": "pagerduty"}, *L1_L3[:2]]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    await IncidentActions(pool).ack(opened.incident_id, "U0ALICE", now=T0 + timedelta(minutes=5))
    await engine.run_due(now=T0 + timedelta(minutes=60))
    assert await deliveries(pool, opened.incident_id) == [
        ("pagerduty", "trigger", None), ("discord", "trigger", None), ("pagerduty", "acknowledge", None),
    ]
    [run] = await escalation.runs_for_incident(pool, opened.incident_id)
    assert run["status"] == "stopped" and run["stopped_by"] == "U0ALICE"


async def test_the_source_resolving_resolves_upstream_and_stops(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    await pipeline.ingest(alert(status="resolved"), now=T0 + timedelta(minutes=3))
    await engine.run_due(now=T0 + timedelta(minutes=60))
    assert await deliveries(pool, opened.incident_id) == [("discord", "trigger", None), ("discord", "resolve", None)]


async def test_a_snoozed_incident_escalates_when_the_snooze_ends(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    await IncidentActions(pool).snooze(opened.incident_id, "U0ALICE", 60, now=T0 + timedelta(minutes=1))
    await engine.run_due(now=T0 + timedelta(minutes=20))
    assert len(await deliveries(pool, opened.incident_id)) == 1
    await engine.run_due(now=T0 + timedelta(minutes=61, seconds=1))
    assert [d[0] for d in await deliveries(pool, opened.incident_id)] == ["discord", "email"]


async def test_a_policy_repeats_from_the_top(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, [{"kind": "outbound", "channel": "discord"}, {"kind": "wait", "wait_minutes": 5}], repeat=2))
    opened = await pipeline.ingest(alert(), now=T0)
    for minutes in range(0, 40, 5):
        await engine.run_due(now=T0 + timedelta(minutes=minutes))
    assert await deliveries(pool, opened.incident_id) == [
        ("discord", "trigger", None), ("discord", "escalate", None), ("discord", "escalate", None),
    ]
    [run] = await escalation.runs_for_incident(pool, opened.incident_id)
    assert run["status"] == "finished"


async def test_a_person_is_reached_by_their_rules_in_order(pool, pipeline, engine, channels):
    await escalation.set_contacts(pool, "U0ONCALL", email="oncall@example.com", phone="+15005550009")
    async with pool.acquire() as conn:
        await escalation.set_notification_rules(conn, "U0ONCALL", [
            {"method": "slack_dm", "delay_minutes": 0}, {"method": "sms", "delay_minutes": 5},
            {"method": "email", "delay_minutes": 10},
        ])
    await route_to(pool, await policy(pool, [{"kind": "oncall", "target": "Primary"}]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    assert await deliveries(pool, opened.incident_id) == [("slack_dm", "trigger", "U0ONCALL")]
    await engine.run_due(now=T0 + timedelta(minutes=5))
    await engine.run_due(now=T0 + timedelta(minutes=10))
    assert await deliveries(pool, opened.incident_id) == [
        ("slack_dm", "trigger", "U0ONCALL"), ("sms", "trigger", "+15005550009"), ("email", "trigger", "oncall@example.com"),
    ]


async def test_a_rule_that_cannot_be_followed_is_a_failed_delivery_that_says_why(pool, pipeline, engine, channels):
    async with pool.acquire() as conn:
        await escalation.set_notification_rules(conn, "U0ONCALL", [{"method": "sms", "delay_minutes": 0}])
    await route_to(pool, await policy(pool, [{"kind": "oncall", "target": "Primary"}]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    [delivery] = await outbound.deliveries_for_incident(pool, opened.incident_id)
    assert delivery["status"] == "failed" and "no phone number" in delivery["last_error"]


async def test_an_acknowledged_incident_stops_paging_people(pool, pipeline, engine, channels):
    await escalation.set_contacts(pool, "U0ONCALL", email="oncall@example.com", phone=None)
    async with pool.acquire() as conn:
        await escalation.set_notification_rules(conn, "U0ONCALL", [
            {"method": "slack_dm", "delay_minutes": 0}, {"method": "email", "delay_minutes": 10},
        ])
    await route_to(pool, await policy(pool, [{"kind": "oncall", "target": "Primary"}]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    await IncidentActions(pool).ack(opened.incident_id, "U0ONCALL", now=T0 + timedelta(minutes=2))
    await engine.run_due(now=T0 + timedelta(minutes=10))
    assert await deliveries(pool, opened.incident_id) == [("slack_dm", "trigger", "U0ONCALL")]


async def test_nobody_on_call_is_on_the_incidents_record(pool, pipeline, engine, channels):
    spec = validate_schedule({"name": "Next year", "time_zone": "UTC", "layers": [
        {"members": ["U0ONCALL"], "shift": "1 week", "handoff": "09:00", "start": "2027-01-04"},
    ]})
    await schedules.create_schedule(pool, name=spec.name, time_zone=spec.time_zone, feed_token="n" * 32,
                                    layers=[layer.as_row() for layer in spec.layers], created_by="test")
    await route_to(pool, await policy(pool, [{"kind": "oncall", "target": "Next year"}]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    row = await pool.fetchrow("SELECT details FROM audit_log WHERE action = 'incident.escalation_step' AND target_id = $1",
                              str(opened.incident_id))
    assert row is not None and row["details"]["outcome"] == "nobody is on call for Next year"


async def test_a_slack_channel_step_posts_the_incident_there(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, [{"kind": "slack_channel", "target": "#sre-pager", "mention": "@here"}]))
    opened = await pipeline.ingest(alert(), now=T0)
    await engine.run_due(now=T0)
    messages = {m["channel"]: m for m in await incidents.messages_for(pool, opened.incident_id)}
    assert set(messages) == {"#ops-alerts", "#sre-pager"} and messages["#sre-pager"]["mention"] == "@here"


async def test_a_policy_in_use_cannot_be_deleted(pool, channels):
    policy_id = await policy(pool, L1_L3)
    await route_to(pool, policy_id)
    with pytest.raises(admin.Conflict) as refused:
        await admin.delete_policy(pool, policy_id, actor="test")
    assert "prod" in refused.value.detail


async def test_a_run_whose_incident_is_being_acted_on_waits_instead_of_deadlocking(pool, pipeline, engine, channels):
    await route_to(pool, await policy(pool, L1_L3))
    opened = await pipeline.ingest(alert(), now=T0)
    async with pool.acquire() as conn, conn.transaction():
        # An ack holds the incident and will want its runs: the engine must not wait for the incident.
        await conn.execute("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE", opened.incident_id)
        done = await asyncio.wait_for(engine.run_due(now=T0), 30)
    assert done["escalation_steps"] == 0 and await deliveries(pool, opened.incident_id) == []
    await engine.run_due(now=T0)
    assert await deliveries(pool, opened.incident_id) == [("discord", "trigger", None)]
