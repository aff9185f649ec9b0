"""The pipeline's decisions on a real Postgres, with time passed in: grouping, windows, reopen,
spikes, routing at open time, silences, inhibition and the one-firing-incident-per-key index."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from alerts.normalized import NormalizedAlert, group_key
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.routing import validate_rule
from alerts.sources import alertmanager
from storage import incidents, notifications, routing_rules, silences
from tests.fixtures import load_fixture

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def alert(**overrides) -> NormalizedAlert:
    values = dict(
        source="generic",
        source_event_id="e1",
        service="api",
        env="production",
        severity="high",
        fingerprint="db-down",
        title="Database unreachable",
        description="connection refused",
        occurred_at=T0,
        tags={"team": "core"},
    )
    values.update(overrides)
    return NormalizedAlert(**values)


@pytest.fixture
def pipeline(pool) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts", spike_count=5))


async def test_repeats_within_the_window_are_one_incident_with_a_count(pipeline, pool):
    for i in range(100):
        result = await pipeline.ingest(alert(source_event_id=f"e{i}"), now=T0 + timedelta(seconds=i))
    incident = await incidents.get_incident(pool, result.incident_id)
    assert incident["count"] == 100
    assert incident["first_seen"] == T0 and incident["last_seen"] == T0 + timedelta(seconds=99)
    assert len(await incidents.messages_for(pool, incident["id"])) == 1
    assert (await incidents.count_by_status(pool))["firing"] == 1


async def test_a_repeat_after_the_window_closes_the_old_incident_and_opens_a_new_one(pipeline, pool):
    first = await pipeline.ingest(alert(), now=T0)
    second = await pipeline.ingest(alert(), now=T0 + timedelta(minutes=61))
    assert second.outcome == "opened" and second.incident_id != first.incident_id
    old = await incidents.get_incident(pool, first.incident_id)
    assert old["status"] == "resolved" and old["resolve_reason"] == "expired"


async def test_a_resolved_alert_resolves_the_incident_and_schedules_the_update(pipeline, pool):
    opened = await pipeline.ingest(alert(), now=T0)
    resolved = await pipeline.ingest(alert(status="resolved"), now=T0 + timedelta(minutes=3))
    assert resolved.outcome == "resolved" and resolved.incident_id == opened.incident_id
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert incident["status"] == "resolved" and incident["resolve_reason"] == "source"
    [message] = await incidents.messages_for(pool, incident["id"])
    assert message["render_due_at"] is not None


async def test_a_resolved_alert_for_an_unknown_problem_changes_nothing(pipeline, pool):
    result = await pipeline.ingest(alert(status="resolved"), now=T0)
    assert result.outcome == "ignored"
    assert await incidents.list_incidents(pool) == []


async def test_flapping_reopens_the_same_incident_instead_of_posting_again(pipeline, pool):
    opened = await pipeline.ingest(alert(), now=T0)
    await pipeline.ingest(alert(status="resolved"), now=T0 + timedelta(minutes=1))
    again = await pipeline.ingest(alert(), now=T0 + timedelta(minutes=2))
    assert again.outcome == "reopened" and again.incident_id == opened.incident_id
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert incident["status"] == "firing" and incident["reopened_count"] == 1
    assert len(await incidents.list_incidents(pool)) == 1


async def test_a_production_spike_raises_severity_one_level(pipeline, pool):
    for i in range(5):
        result = await pipeline.ingest(alert(severity="medium"), now=T0 + timedelta(seconds=i))
    incident = await incidents.get_incident(pool, result.incident_id)
    assert incident["severity"] == "high" and incident["spiked_at"] is not None


async def test_a_staging_burst_does_not_raise_severity(pipeline, pool):
    for i in range(20):
        result = await pipeline.ingest(alert(severity="medium", env="staging"), now=T0 + timedelta(seconds=i))
    assert (await incidents.get_incident(pool, result.incident_id))["severity"] == "medium"


async def test_repeats_spread_beyond_the_spike_window_do_not_spike(pipeline, pool):
    for i in range(12):
        result = await pipeline.ingest(alert(severity="medium"), now=T0 + timedelta(minutes=2 * i))
    assert (await incidents.get_incident(pool, result.incident_id))["spiked_at"] is None


# --- severity over an incident's life -------------------------------------------------------------------


async def post_due_messages(pool, *, at: datetime) -> None:
    """What the notifier records when Slack took every due message: claim, then the post (real storage calls)."""
    lease = timedelta(seconds=60)
    for message in await incidents.claim_due_messages(pool, now=at, limit=50, lease=lease):
        incident = await incidents.get_incident(pool, message["incident_id"])
        await incidents.message_rendered(
            pool, message["id"], version=incident["version"], claimed_until=at + lease, channel=message["channel"],
            ts=f"1700000000.{message['id']:06d}", now=at, debounce=timedelta(seconds=2),
        )  # fmt: skip


def current_state(severity: str) -> NormalizedAlert:
    """An alert whose severity is the problem's current state (a Sentry metric alert, say)."""
    return alert(severity=severity, severity_is_current=True)


async def test_an_ordinary_repeat_at_a_lower_severity_keeps_the_highest_seen(pipeline, pool):
    opened = await pipeline.ingest(alert(severity="critical"), now=T0)
    await pipeline.ingest(alert(severity="medium"), now=T0 + timedelta(minutes=1))
    assert (await incidents.get_incident(pool, opened.incident_id))["severity"] == "critical"


async def test_a_current_state_severity_that_falls_lowers_the_incident(pipeline, pool):
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await pipeline.ingest(current_state("medium"), now=T0 + timedelta(minutes=1))
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert (incident["severity"], incident["source_severity"]) == ("medium", "medium")


async def test_a_current_state_severity_that_rises_again_raises_the_incident_again(pipeline, pool):
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await pipeline.ingest(current_state("medium"), now=T0 + timedelta(minutes=1))
    await pipeline.ingest(current_state("critical"), now=T0 + timedelta(minutes=2))
    assert (await incidents.get_incident(pool, opened.incident_id))["severity"] == "critical"


async def test_an_alertmanager_resend_with_a_lower_severity_label_lowers_the_incident(pipeline, pool):
    payload = load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json")
    [critical, _] = alertmanager.parse({}, payload)
    payload["alerts"][0]["labels"]["severity"] = "warning"  # same alert, same fingerprint, calmer label
    [warning, _] = alertmanager.parse({}, payload)
    opened = await pipeline.ingest(critical, now=T0)
    await pipeline.ingest(warning, now=T0 + timedelta(minutes=1))
    assert (await incidents.get_incident(pool, opened.incident_id))["severity"] == "medium"


async def test_a_lowered_severity_updates_the_posted_message_at_once_not_after_the_debounce(pipeline, pool):
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await post_due_messages(pool, at=T0)
    lowered_at = T0 + timedelta(milliseconds=500)  # well within the 2 s debounce since the post
    await pipeline.ingest(current_state("medium"), now=lowered_at)
    [message] = await incidents.messages_for(pool, opened.incident_id)
    assert message["render_due_at"] == lowered_at


async def test_a_lowered_severity_is_told_in_the_thread_of_each_posted_message(pipeline, pool):
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await post_due_messages(pool, at=T0)
    await pipeline.ingest(current_state("medium"), now=T0 + timedelta(minutes=1))
    [message] = await incidents.messages_for(pool, opened.incident_id)
    [reply] = await notifications.claim_due(pool, kinds=notifications.INCIDENT_KINDS)
    assert (reply["kind"], reply["payload"]["message_id"]) == ("incident_reply", message["id"])
    assert "Severity lowered [CRITICAL] → [MEDIUM]" in reply["payload"]["message"]["text"]


async def test_a_repeat_at_the_same_severity_says_nothing_in_the_thread(pipeline, pool):
    await pipeline.ingest(current_state("critical"), now=T0)
    await post_due_messages(pool, at=T0)
    await pipeline.ingest(current_state("critical"), now=T0 + timedelta(minutes=1))
    assert await notifications.claim_due(pool, kinds=notifications.INCIDENT_KINDS) == []


async def test_a_raised_severity_re_renders_at_once_and_says_nothing_in_the_thread(pipeline, pool):
    opened = await pipeline.ingest(current_state("medium"), now=T0)
    await post_due_messages(pool, at=T0)
    raised_at = T0 + timedelta(milliseconds=500)
    await pipeline.ingest(current_state("critical"), now=raised_at)
    [message] = await incidents.messages_for(pool, opened.incident_id)
    assert message["render_due_at"] == raised_at
    assert await notifications.claim_due(pool, kinds=notifications.INCIDENT_KINDS) == []


async def test_a_lowered_severity_keeps_the_channels_it_was_posted_to_and_adds_none(pipeline, pool):
    pager = validate_rule({"name": "pager", "min_severity": "critical", "channel": "#pager"})
    await routing_rules.create_rule(pool, pager.as_row(), created_by="U0ALICE")
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await post_due_messages(pool, at=T0)
    await pipeline.ingest(current_state("medium"), now=T0 + timedelta(minutes=1))
    messages = await incidents.messages_for(pool, opened.incident_id)
    assert [(m["channel"], m["slack_ts"] is not None) for m in messages] == [("#pager", True)]


async def test_a_spiked_incident_stays_one_level_above_a_current_severity_that_falls(pipeline, pool):
    for i in range(5):  # spike_count
        result = await pipeline.ingest(current_state("medium"), now=T0 + timedelta(seconds=i))
    assert (await incidents.get_incident(pool, result.incident_id))["severity"] == "high"
    await pipeline.ingest(current_state("low"), now=T0 + timedelta(seconds=10))
    incident = await incidents.get_incident(pool, result.incident_id)
    assert incident["severity"] == "medium" and incident["spiked_at"] is not None


async def test_a_reopened_incident_takes_the_current_severity_of_the_alert_that_reopened_it(pipeline, pool):
    opened = await pipeline.ingest(current_state("critical"), now=T0)
    await pipeline.ingest(alert(status="resolved", severity="info", severity_is_current=True), now=T0 + timedelta(minutes=1))
    await pipeline.ingest(current_state("medium"), now=T0 + timedelta(minutes=2))
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert (incident["status"], incident["severity"]) == ("firing", "medium")


async def test_routes_are_read_per_alert_so_a_new_rule_applies_to_the_next_incident(pipeline, pool):
    before = await pipeline.ingest(alert(fingerprint="one"), now=T0)
    await routing_rules.create_rule(
        pool,
        validate_rule(
            {"name": "api prod", "envs": "production", "min_severity": "high", "services": "api", "channel": "#api-alerts"}
        ).as_row(),
        created_by="U0ALICE",
    )
    after = await pipeline.ingest(alert(fingerprint="two"), now=T0)
    [old] = await incidents.messages_for(pool, before.incident_id)
    [new] = await incidents.messages_for(pool, after.incident_id)
    assert old["channel"] == "#ops-alerts" and new["channel"] == "#api-alerts"


async def test_a_silenced_alert_opens_a_held_back_incident_without_a_message(pipeline, pool):
    await silences.create_silence(
        pool, matchers=[{"name": "env", "op": "=", "value": "production"}], starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=2), comment="maintenance", created_by="U0ALICE",
    )
    result = await pipeline.ingest(alert(), now=T0)
    incident = await incidents.get_incident(pool, result.incident_id)
    assert result.outcome == "suppressed" and incident["suppressed_by"].startswith("silence:")
    assert await incidents.messages_for(pool, incident["id"]) == []


async def test_a_silenced_incident_still_records_its_resolution(pipeline, pool):
    await silences.create_silence(
        pool, matchers=[{"name": "service", "op": "=", "value": "api"}], starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=2), comment="", created_by="U0ALICE",
    )
    opened = await pipeline.ingest(alert(), now=T0)
    await pipeline.ingest(alert(status="resolved"), now=T0 + timedelta(minutes=5))
    incident = await incidents.get_incident(pool, opened.incident_id)
    assert incident["status"] == "resolved" and incident["resolve_reason"] == "source"
    occurrences, total = await incidents.recent_occurrences(pool, incident["id"])
    assert total == 2 and occurrences[0]["status"] == "resolved"


async def test_a_silence_that_ended_releases_the_incident_on_the_sweep(pipeline, pool):
    await silences.create_silence(
        pool, matchers=[{"name": "service", "op": "=", "value": "api"}], starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(minutes=30), comment="", created_by="U0ALICE",
    )
    result = await pipeline.ingest(alert(), now=T0)
    assert await pipeline.release_suppressed(now=T0 + timedelta(minutes=10)) == 0
    assert await pipeline.release_suppressed(now=T0 + timedelta(minutes=31)) == 1
    incident = await incidents.get_incident(pool, result.incident_id)
    assert incident["suppressed_by"] is None
    assert len(await incidents.messages_for(pool, incident["id"])) == 1


async def test_inhibition_holds_back_the_target_while_the_source_fires(pipeline, pool):
    await silences.create_inhibition_rule(
        pool,
        name="node down hides service down",
        source_matchers=[{"name": "alertname", "op": "=", "value": "NodeDown"}],
        target_matchers=[{"name": "alertname", "op": "=", "value": "ServiceDown"}],
        equal=["instance"],
        created_by="api",
    )
    node = await pipeline.ingest(
        alert(source="alertmanager", fingerprint="n1", tags={"alertname": "NodeDown", "instance": "db-1"}), now=T0
    )
    inhibited = await pipeline.ingest(
        alert(source="alertmanager", fingerprint="s1", tags={"alertname": "ServiceDown", "instance": "db-1"}), now=T0
    )
    other_host = await pipeline.ingest(
        alert(source="alertmanager", fingerprint="s2", tags={"alertname": "ServiceDown", "instance": "db-2"}), now=T0
    )
    assert node.outcome == "opened" and other_host.outcome == "opened"
    assert inhibited.outcome == "suppressed"
    assert (await incidents.get_incident(pool, inhibited.incident_id))["suppressed_by"].startswith("inhibition:")

    await pipeline.ingest(
        alert(source="alertmanager", fingerprint="n1", status="resolved", tags={"alertname": "NodeDown", "instance": "db-1"}),
        now=T0 + timedelta(minutes=1),
    )
    assert await pipeline.release_suppressed(now=T0 + timedelta(minutes=2)) == 1


async def test_a_batch_read_once_still_lets_its_own_incidents_inhibit_later_alerts(pipeline, pool):
    await silences.create_inhibition_rule(
        pool, name="node down hides service down",
        source_matchers=[{"name": "alertname", "op": "=", "value": "NodeDown"}],
        target_matchers=[{"name": "alertname", "op": "=", "value": "ServiceDown"}],
        equal=["instance"], created_by="api",
    )
    async with pool.acquire() as conn, conn.transaction(), pipeline.reading_once(conn, T0):
        node = await pipeline.ingest_in(
            conn, alert(source="alertmanager", fingerprint="n1", tags={"alertname": "NodeDown", "instance": "db-1"}), now=T0
        )
        service = await pipeline.ingest_in(
            conn, alert(source="alertmanager", fingerprint="s1", tags={"alertname": "ServiceDown", "instance": "db-1"}), now=T0
        )
    assert (node.outcome, service.outcome) == ("opened", "suppressed")


async def test_a_batch_reads_the_routing_rules_as_they_were_when_it_began(pipeline, pool):
    async with pool.acquire() as conn, conn.transaction(), pipeline.reading_once(conn, T0):
        await routing_rules.create_rule(pool, validate_rule({"name": "api", "channel": "#api"}).as_row(), created_by="t")
        first = await pipeline.ingest_in(conn, alert(fingerprint="a"), now=T0)
    second = await pipeline.ingest(alert(fingerprint="b"), now=T0)
    [(first_message,), (second_message,)] = [
        await incidents.messages_for(pool, r.incident_id) for r in (first, second)
    ]
    assert (first_message["channel"], second_message["channel"]) == ("#ops-alerts", "#api")


async def test_the_database_refuses_a_second_firing_incident_for_one_key(pipeline, pool):
    first = await pipeline.ingest(alert(), now=T0)
    incident = await incidents.get_incident(pool, first.incident_id)
    fields = {k: incident[k] for k in (
        "group_key", "source", "service", "env", "fingerprint", "title", "source_severity", "severity",
        "first_seen", "last_seen", "spike_window_start", "last_alert",
    )}
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.UniqueViolationError):
            await incidents.insert_incident(conn, fields)


async def test_concurrent_ingests_of_one_problem_make_one_incident(pipeline, pool):
    results = await asyncio.gather(*(pipeline.ingest(alert(source_event_id=f"e{i}"), now=T0) for i in range(30)))
    assert len({r.incident_id for r in results}) == 1
    [incident] = await incidents.list_incidents(pool)
    assert incident["count"] == 30 and incident["group_key"] == group_key(alert())


async def test_retention_keeps_the_first_and_the_newest_occurrences_of_each_incident_and_the_count(pipeline, pool):
    from jobs import retention

    for i in range(retention.OCCURRENCES_KEPT + 7):
        result = await pipeline.ingest(alert(source_event_id=f"e{i}"), now=T0 + timedelta(seconds=i))
    removed = await retention.prune(pool, keep_heartbeats=10)
    assert removed["occurrences"] == 6  # all but the newest OCCURRENCES_KEPT, and the first (the timeline opens with it)
    newest, total = await incidents.recent_occurrences(pool, result.incident_id, limit=retention.OCCURRENCES_KEPT + 1)
    assert total == retention.OCCURRENCES_KEPT + 1
    assert newest[-1]["received_at"] == T0
    assert newest[0]["received_at"] == T0 + timedelta(seconds=retention.OCCURRENCES_KEPT + 6)
    assert (await incidents.get_incident(pool, result.incident_id))["count"] == retention.OCCURRENCES_KEPT + 7


def test_the_update_debounce_grows_with_the_count_up_to_ten_seconds(pool):
    pipeline = AlertPipeline(pool, PipelineSettings(default_channel="#ops", render_debounce=timedelta(seconds=2)))
    assert [pipeline.debounce_for(n).total_seconds() for n in (1, 19, 20, 55, 1000)] == [2, 2, 4, 6, 10]
