"""Work waiting for Slack is taken most severe first, then oldest: a critical never waits behind
mediums for a channel's budget."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import incidents

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


def alert(title: str, severity: str) -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", source_event_id=title, service="api", env="production", severity=severity,
        fingerprint=title, title=title, description="", occurred_at=T0,
    )


async def test_a_critical_is_claimed_before_older_mediums(pool):
    pipeline = AlertPipeline(pool, PipelineSettings(default_channel="C0OPS", storms=None))
    for i in range(3):
        await pipeline.ingest(alert(f"medium {i}", "medium"), now=T0 + timedelta(seconds=i))
    await pipeline.ingest(alert("critical", "critical"), now=T0 + timedelta(seconds=10))
    await pipeline.ingest(alert("high", "high"), now=T0 + timedelta(seconds=11))
    claimed = await incidents.claim_due_messages(pool, now=T0 + timedelta(seconds=20), limit=2, lease=timedelta(seconds=60))
    titles = [(await incidents.get_incident(pool, m["incident_id"]))["title"] for m in claimed]
    assert titles == ["critical", "high"]
    rest = await incidents.claim_due_messages(pool, now=T0 + timedelta(seconds=20), limit=5, lease=timedelta(seconds=60))
    assert [(await incidents.get_incident(pool, m["incident_id"]))["title"] for m in rest] == ["medium 0", "medium 1", "medium 2"]
