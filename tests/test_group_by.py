"""`group_by` on routing rules, with Alertmanager's meaning: the alerts a rule matches that share
the listed labels' values are one incident, which lists them and resolves when all have."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from alerts.normalized import NormalizedAlert
from alerts.outbound.incidents import IncidentNotifier
from alerts.outbound.slack import SlackDelivery
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.routing import RuleValidationError, validate_rule
from storage import incidents, routing_rules

CHANNEL = "C0ALERTS"


def alert(fingerprint: str, *, alertname="HighLatency", service="api", status="firing", severity="high") -> NormalizedAlert:
    return NormalizedAlert(
        source="alertmanager", source_event_id=fingerprint, service=service, env="production", severity=severity,
        fingerprint=fingerprint, title=f"{alertname} on {fingerprint}", description="", status=status,
        occurred_at=datetime.now(timezone.utc), tags={"alertname": alertname, "instance": fingerprint},
    )


@pytest.fixture
async def pipeline(pool):
    rule = validate_rule({"name": "by alert", "sources": "alertmanager", "channel": CHANNEL, "group_by": "alertname, service"})
    await routing_rules.create_rule(pool, rule.as_row(), created_by="U0ALICE")
    return AlertPipeline(pool, PipelineSettings(default_channel=CHANNEL, storms=None))


async def firing(pool) -> list[dict]:
    return await incidents.list_incidents(pool, status="firing")


async def test_alerts_sharing_the_group_labels_are_one_incident_with_each_as_a_member(pipeline, pool):
    first = await pipeline.ingest(alert("web-1:9090"))
    second = await pipeline.ingest(alert("web-2:9090"))
    assert first.incident_id == second.incident_id
    [incident] = await firing(pool)
    assert incident["title"] == "HighLatency · api"
    members, total, firing_now = await incidents.members_of(pool, incident["id"])
    assert (total, firing_now) == (2, 2)
    assert sorted(m["title"] for m in members) == ["HighLatency on web-1:9090", "HighLatency on web-2:9090"]


async def test_other_label_values_are_another_incident(pipeline, pool):
    await pipeline.ingest(alert("web-1:9090"))
    await pipeline.ingest(alert("web-1:9090", alertname="DiskFull"))
    await pipeline.ingest(alert("db-1:9090", service="db"))
    assert len(await firing(pool)) == 3


async def test_one_member_resolving_leaves_the_incident_firing(pipeline, pool):
    await pipeline.ingest(alert("web-1:9090"))
    await pipeline.ingest(alert("web-2:9090"))
    result = await pipeline.ingest(alert("web-1:9090", status="resolved"))
    assert result.outcome == "member_resolved"
    [incident] = await firing(pool)
    _, total, firing_now = await incidents.members_of(pool, incident["id"])
    assert (total, firing_now) == (2, 1)


async def test_the_incident_resolves_when_every_member_has(pipeline, pool):
    await pipeline.ingest(alert("web-1:9090"))
    await pipeline.ingest(alert("web-2:9090"))
    await pipeline.ingest(alert("web-1:9090", status="resolved"))
    result = await pipeline.ingest(alert("web-2:9090", status="resolved"))
    assert result.outcome == "resolved"
    assert await firing(pool) == []


async def test_a_member_firing_again_after_the_group_resolved_reopens_it(pipeline, pool):
    opened = await pipeline.ingest(alert("web-1:9090"))
    await pipeline.ingest(alert("web-1:9090", status="resolved"))
    again = await pipeline.ingest(alert("web-1:9090"))
    assert again.outcome == "reopened" and again.incident_id == opened.incident_id


async def test_alerts_no_group_by_rule_matches_keep_grouping_by_problem(pipeline, pool):
    generic = dict(source="generic", source_event_id="e", service="api", env="production", severity="high",
                   description="", occurred_at=datetime.now(timezone.utc))
    await pipeline.ingest(NormalizedAlert(fingerprint="a", title="A", **generic))
    await pipeline.ingest(NormalizedAlert(fingerprint="b", title="B", **generic))
    assert len(await firing(pool)) == 2


async def test_the_message_lists_the_members_and_how_many_fire(pipeline, pool, sandbox):
    sandbox.add_channel(CHANNEL, "ops-alerts")
    await pipeline.ingest(alert("web-1:9090"))
    await pipeline.ingest(alert("web-2:9090"))
    await pipeline.ingest(alert("web-1:9090", status="resolved"))
    delivery = SlackDelivery(pool, AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url))
    await IncidentNotifier(pool, delivery, default_channel=CHANNEL).deliver_due()
    [post] = sandbox.messages[CHANNEL]
    shown = json.dumps(post["attachments"], ensure_ascii=False)
    assert "1 of 2 firing" in shown
    assert "resolved · HighLatency on web-1:9090" in shown and "firing · HighLatency on web-2:9090" in shown


@pytest.mark.parametrize(
    "group_by, error",
    [
        ("alertname, sum(rate)", "not a label name: sum(rate)"),
        (",".join(f"l{i}" for i in range(11)), "at most 10 labels"),
    ],
)
def test_group_by_takes_label_names(group_by, error):
    with pytest.raises(RuleValidationError) as caught:
        validate_rule({"name": "x", "channel": CHANNEL, "group_by": group_by})
    assert caught.value.errors["group_by"].startswith(error)
