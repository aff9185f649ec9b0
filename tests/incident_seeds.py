"""Incidents made the way Pulser makes them — alerts through the real pipeline, clicks through
the real IncidentActions — for the inbox, detail and API tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg

from alerts.incident_actions import IncidentActions
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings

ALERTS = "C0ALERTS"


def alert(
    fingerprint: str,
    *,
    source: str = "generic",
    service: str = "api",
    env: str = "prod",
    severity: str = "high",
    status: str = "firing",
    title: str | None = None,
    tags: dict[str, str] | None = None,
) -> NormalizedAlert:
    return NormalizedAlert(
        source=source, source_event_id=fingerprint, service=service, env=env, severity=severity,
        fingerprint=fingerprint, title=title or f"{fingerprint} is failing", description=f"{fingerprint} details",
        occurred_at=datetime.now(timezone.utc), status=status, tags=tags or {},
    )  # fmt: skip


def pipeline(pool: asyncpg.Pool) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel=ALERTS, storms=None))


async def open_incident(pool: asyncpg.Pool, a: NormalizedAlert, *, at: datetime | None = None) -> int:
    result = await pipeline(pool).ingest(a, now=at or datetime.now(timezone.utc))
    assert result.incident_id is not None, result
    return result.incident_id


async def inbox_fixture(pool: asyncpg.Pool) -> dict[str, int]:
    """Six incidents, one of each kind a filter tells apart (names → ids):
    checkout (prod high, team=payments, unacked), frontend (sentry, staging low), db (alertmanager,
    prod critical, acked by U0ALICE), ci (github, medium, resolved), search (prod medium, assigned
    to U0BOB, seen two days ago only), cache (prod low, snoozed)."""
    now = datetime.now(timezone.utc)
    ids = {
        "checkout": await open_incident(pool, alert("checkout", tags={"team": "payments"})),
        "frontend": await open_incident(pool, alert("frontend", source="sentry", service="web", env="staging", severity="low")),
        "db": await open_incident(pool, alert("db", source="alertmanager", service="db", severity="critical")),
        "ci": await open_incident(pool, alert("ci", source="github", service="acme/api", env="", severity="medium")),
        "search": await open_incident(pool, alert("search", service="search", severity="medium"), at=now - timedelta(days=2)),
        "cache": await open_incident(pool, alert("cache", service="cache", severity="low")),
    }
    actions = IncidentActions(pool)
    assert (await actions.ack(ids["db"], "U0ALICE")).changed
    assert (await actions.resolve(ids["ci"], "U0ALICE")).changed
    assert (await actions.assign(ids["search"], "U0ALICE", "U0BOB", now=now)).changed
    assert (await actions.snooze(ids["cache"], "U0BOB", 240)).changed
    return ids
