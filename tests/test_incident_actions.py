"""What people and time do to incidents, on a real Postgres with time passed in: Ack, Snooze,
Resolve, escalation levels, auto-close and snooze expiry. Slack delivery is tested end to end in
test_incidents_e2e.py; here the outcome is the incident row, the outbox and the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.incident_actions import IncidentActions
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.routing import validate_rule
from storage import audit, incidents, routing_rules

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def alert(**overrides) -> NormalizedAlert:
    values = dict(
        source="generic", source_event_id="e", service="payments", env="production", severity="high",
        fingerprint="p1", title="Payments failing", description="", occurred_at=T0,
    )
    values.update(overrides)
    return NormalizedAlert(**values)


@pytest.fixture
def pipeline(pool) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts"))


@pytest.fixture
def actions(pool) -> IncidentActions:
    return IncidentActions(pool)


async def rule(pool, **fields):
    return await routing_rules.create_rule(
        pool, validate_rule({"name": "payments", "services": "payments", "channel": "#pay", **fields}).as_row(), created_by="U1"
    )


async def posted(pool, incident_id, at=T0):
    """Pretend the notifier posted every message of the incident at `at` (arms escalation)."""
    for message in await incidents.messages_for(pool, incident_id):
        await incidents.message_rendered(
            pool, message["id"], version=1, claimed_until=message["render_due_at"], channel="C1", ts=f"{message['id']}.0",
            now=at, debounce=timedelta(seconds=2),
        )


async def outbox(pool, incident_id):
    rows = await pool.fetch("SELECT kind, payload FROM notifications WHERE incident_id = $1 ORDER BY id", incident_id)
    return [dict(r) for r in rows]


# --- escalation --------------------------------------------------------------------------------------


async def test_escalation_repeats_up_to_the_configured_levels_then_stops(pool, pipeline, actions):
    await rule(pool, escalate_after_minutes=10, escalate_to="U0CAROL", escalation_levels=2)
    opened = await pipeline.ingest(alert(), now=T0)
    await posted(pool, opened.incident_id)
    assert (await actions.sweep(now=T0 + timedelta(minutes=9)))["escalated"] == 0
    assert (await actions.sweep(now=T0 + timedelta(minutes=10)))["escalated"] == 1
    assert (await actions.sweep(now=T0 + timedelta(minutes=15)))["escalated"] == 0
    assert (await actions.sweep(now=T0 + timedelta(minutes=20)))["escalated"] == 1
    assert (await actions.sweep(now=T0 + timedelta(hours=5)))["escalated"] == 0
    kinds = [row["kind"] for row in await outbox(pool, opened.incident_id)]
    assert kinds == ["incident_reply"] * 2
    posts = [m for m in await incidents.messages_for(pool, opened.incident_id) if m["escalation_of"] is not None]
    assert [(p["escalate_to"], p["escalation_level"], p["channel"]) for p in posts] == [("U0CAROL", 1, "C1"), ("U0CAROL", 2, "C1")]
    assert all(p["render_due_at"] is not None and p["slack_ts"] is None for p in posts), "each is posted by the notifier"
    entries = await audit.list_actions(pool, target_type="incident", target_id=opened.incident_id)
    assert [e["details"]["level"] for e in entries if e["action"] == "incident.escalate"] == [2, 1]


async def test_a_snoozed_incident_does_not_escalate_until_the_snooze_ends(pool, pipeline, actions):
    await rule(pool, escalate_after_minutes=10, escalate_to="U0CAROL", escalation_levels=1)
    opened = await pipeline.ingest(alert(), now=T0)
    await posted(pool, opened.incident_id)
    await actions.snooze(opened.incident_id, "U0BOB", 60, now=T0 + timedelta(minutes=1))
    assert (await actions.sweep(now=T0 + timedelta(minutes=30)))["escalated"] == 0
    done = await actions.sweep(now=T0 + timedelta(minutes=61))
    assert done["snooze_ended"] == 1
    [reply] = await outbox(pool, opened.incident_id)
    assert "Snooze ended" in reply["payload"]["message"]["text"]
    assert (await actions.sweep(now=T0 + timedelta(minutes=72)))["escalated"] == 1


async def test_resolving_an_escalated_incident_re_renders_its_escalation_posts(pool, pipeline, actions):
    await rule(pool, escalate_after_minutes=5, escalate_to="S0ONCALL", escalation_levels=3)
    opened = await pipeline.ingest(alert(), now=T0)
    await posted(pool, opened.incident_id)
    assert (await actions.sweep(now=T0 + timedelta(minutes=5)))["escalated"] == 1
    [post] = [m for m in await incidents.messages_for(pool, opened.incident_id) if m["escalation_of"] is not None]
    await incidents.message_rendered(
        pool, post["id"], version=2, claimed_until=post["render_due_at"], channel="C1", ts="9.0",
        now=T0 + timedelta(minutes=5), debounce=timedelta(seconds=2),
    )
    assert (await incidents.get_message(pool, post["id"]))["render_due_at"] is None
    await actions.resolve(opened.incident_id, "U0BOB", now=T0 + timedelta(minutes=6))
    assert (await incidents.get_message(pool, post["id"]))["render_due_at"] == T0 + timedelta(minutes=6)


async def test_thread_notices_go_under_the_routed_message_not_the_escalation_posts(pool, pipeline, actions):
    await rule(pool, escalate_after_minutes=5, escalate_to="S0ONCALL", escalation_levels=1)
    opened = await pipeline.ingest(alert(), now=T0)
    await posted(pool, opened.incident_id)
    await actions.sweep(now=T0 + timedelta(minutes=5))
    routed = await incidents.messages_for(pool, opened.incident_id, escalation_posts=False)
    everything = await incidents.messages_for(pool, opened.incident_id)
    assert len(routed) == 1 and len(everything) == 2
    [reply] = await outbox(pool, opened.incident_id)
    assert reply["payload"]["message_id"] == routed[0]["id"]


async def test_resolving_stops_escalation(pool, pipeline, actions):
    await rule(pool, escalate_after_minutes=5, escalate_to="S0ONCALL", escalation_levels=3)
    opened = await pipeline.ingest(alert(), now=T0)
    await posted(pool, opened.incident_id)
    await actions.resolve(opened.incident_id, "U0BOB", now=T0 + timedelta(minutes=1))
    assert (await actions.sweep(now=T0 + timedelta(hours=1)))["escalated"] == 0


# --- auto-close --------------------------------------------------------------------------------------


async def test_a_quiet_incident_auto_closes_after_its_rules_minutes(pool, pipeline, actions):
    await rule(pool, auto_close_minutes=30)
    opened = await pipeline.ingest(alert(), now=T0)
    await pipeline.ingest(alert(), now=T0 + timedelta(minutes=20))
    assert (await actions.sweep(now=T0 + timedelta(minutes=45)))["auto_closed"] == 0
    assert (await actions.sweep(now=T0 + timedelta(minutes=51)))["auto_closed"] == 1
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert incident["status"] == "resolved" and incident["resolve_reason"] == "auto_close"


async def test_without_an_auto_close_rule_an_incident_stays_open(pool, pipeline, actions):
    opened = await pipeline.ingest(alert(), now=T0)
    assert (await actions.sweep(now=T0 + timedelta(days=3)))["auto_closed"] == 0
    assert (await incidents.get_incident(pool, opened.incident_id))["status"] == "firing"


# --- buttons -----------------------------------------------------------------------------------------


async def test_a_second_ack_keeps_the_first_acker_and_says_so(pool, pipeline, actions):
    opened = await pipeline.ingest(alert(), now=T0)
    first = await actions.ack(opened.incident_id, "U0ALICE", now=T0)
    second = await actions.ack(opened.incident_id, "U0BOB", now=T0)
    assert first.changed and not second.changed and "U0ALICE" in second.note
    assert (await incidents.get_incident(pool, opened.incident_id))["acked_by"] == "U0ALICE"


async def test_snooze_refuses_a_duration_that_is_not_offered(pool, pipeline, actions):
    opened = await pipeline.ingest(alert(), now=T0)
    result = await actions.snooze(opened.incident_id, "U0BOB", 7, now=T0)
    assert not result.changed and result.note
    assert (await incidents.get_incident(pool, opened.incident_id))["snoozed_until"] is None


async def test_every_click_is_audited_even_when_it_changes_nothing(pool, pipeline, actions):
    opened = await pipeline.ingest(alert(), now=T0)
    await actions.resolve(opened.incident_id, "U0ALICE", now=T0)
    await actions.ack(opened.incident_id, "U0BOB", now=T0)
    entries = await audit.list_actions(pool, target_type="incident", target_id=opened.incident_id)
    assert [(e["actor"], e["action"], e["details"]["outcome"]) for e in entries] == [
        ("U0BOB", "incident.ack", "unchanged"),
        ("U0ALICE", "incident.resolve", "changed"),
    ]


async def test_a_click_on_an_unknown_incident_changes_nothing(actions):
    result = await actions.ack(424242, "U0ALICE")
    assert result.incident is None and not result.changed and result.note
