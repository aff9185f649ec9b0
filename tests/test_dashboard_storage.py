"""The aggregate queries behind `/pulser status` and App Home, on a real Postgres, with alerts
going through the real pipeline and time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.incident_actions import IncidentActions
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import dashboard, deliveries, envelopes, silences

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def alert(fingerprint: str, *, source: str = "generic", severity: str = "high", service: str = "api", **extra) -> NormalizedAlert:
    return NormalizedAlert(
        source=source, source_event_id=fingerprint, service=service, env="production", severity=severity,
        fingerprint=fingerprint, title=f"{fingerprint} is failing", description="", occurred_at=NOW, **extra,
    )


@pytest.fixture
def pipeline(pool) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts", spike_count=1000))


async def add_apps(pool, *, up: int = 0, late: int = 0, down: int = 0, paused: int = 0, new: int = 0) -> None:
    """Applications in each status, inserted with one statement per status."""
    shapes = {
        "up": ("up", True, "$2::timestamptz + interval '5 min'", "NULL"),
        "late": ("up", True, "$2::timestamptz - interval '1 min'", "NULL"),
        "down": ("down", True, "$2::timestamptz - interval '1 h'", "$2::timestamptz - (g * interval '1 min')"),
        "paused": ("up", False, "$2::timestamptz + interval '5 min'", "NULL"),
        "new": ("new", True, "NULL", "NULL"),
    }
    for status, n in {"up": up, "late": late, "down": down, "paused": paused, "new": new}.items():
        state, active, due, down_since = shapes[status]
        await pool.execute(
            f"""
            INSERT INTO applications (uuid, name, expected_interval, channel, state, is_active, due_at, down_since)
            SELECT gen_random_uuid(), '{status}-' || g, 300, '#ops', '{state}', {active}, {due}, {down_since}
              FROM generate_series(1, $1) AS g WHERE $2::timestamptz IS NOT NULL
            """,
            n,
            NOW,  # relative to the test's clock, not the database's: the suite may run for minutes
        )


# --- heartbeat apps --------------------------------------------------------------------------------


async def test_apps_are_counted_by_status_as_people_see_them(pool):
    await add_apps(pool, up=5, late=2, down=3, paused=1, new=4)
    overview = await dashboard.heartbeat_overview(pool, now=NOW, down_limit=10)
    assert overview["counts"] == {"new": 4, "up": 5, "late": 2, "down": 3, "paused": 1}
    assert overview["total"] == 15


async def test_down_apps_are_named_longest_down_first_up_to_the_limit(pool):
    await add_apps(pool, down=12)
    overview = await dashboard.heartbeat_overview(pool, now=NOW, down_limit=10)
    assert len(overview["down"]) == 10 and overview["counts"]["down"] == 12
    assert overview["down"][0]["name"] == "down-12"  # down for 12 minutes: the longest
    assert isinstance(overview["down"][0]["down_since"], datetime)


async def test_no_apps_is_all_zeros(pool):
    overview = await dashboard.heartbeat_overview(pool, now=NOW, down_limit=10)
    assert overview == {"counts": {"new": 0, "up": 0, "late": 0, "down": 0, "paused": 0}, "total": 0, "down": []}


# --- open incidents and what is kept quiet --------------------------------------------------------


async def test_open_incidents_list_unacknowledged_first_then_oldest(pool, pipeline):
    actions = IncidentActions(pool)
    oldest = await pipeline.ingest(alert("a", severity="critical"), now=NOW - timedelta(hours=3))
    middle = await pipeline.ingest(alert("b"), now=NOW - timedelta(hours=2))
    newest = await pipeline.ingest(alert("c", severity="low"), now=NOW - timedelta(hours=1))
    await actions.ack(oldest.incident_id, "U0ALICE", now=NOW - timedelta(minutes=150))
    result = await dashboard.open_incidents(pool, limit=10)
    assert [i["id"] for i in result["oldest"]] == [middle.incident_id, newest.incident_id, oldest.incident_id]
    assert result["total"] == 3 and result["unacked"] == 2
    assert result["by_severity"] == {"critical": 1, "high": 1, "low": 1}
    assert result["oldest"][2]["acked_by"] == "U0ALICE"


async def test_resolved_and_held_back_incidents_are_not_open(pool, pipeline):
    await pipeline.ingest(alert("gone"), now=NOW - timedelta(minutes=5))
    await pipeline.ingest(alert("gone", status="resolved"), now=NOW - timedelta(minutes=4))
    await silences.create_silence(
        pool, matchers=[{"name": "service", "op": "=", "value": "batch"}], starts_at=NOW - timedelta(minutes=10),
        ends_at=NOW + timedelta(hours=1), comment="", created_by="U0ALICE",
    )
    await pipeline.ingest(alert("quiet", service="batch"), now=NOW - timedelta(minutes=3))
    result = await dashboard.open_incidents(pool, limit=10)
    assert result["total"] == 0 and result["oldest"] == []
    quiet = await dashboard.quiet_figures(pool, now=NOW)
    assert quiet["active_silences"] == 1 and quiet["pending_silences"] == 0 and quiet["held_back"] == 1


async def test_the_open_list_is_cut_at_the_limit_but_the_count_is_not(pool, pipeline):
    for i in range(12):
        await pipeline.ingest(alert(f"f{i}"), now=NOW - timedelta(minutes=30 - i))
    result = await dashboard.open_incidents(pool, limit=10)
    assert result["total"] == 12 and len(result["oldest"]) == 10


async def test_silences_to_come_and_ended_ones_are_told_apart(pool):
    matchers = [{"name": "env", "op": "=", "value": "staging"}]
    await silences.create_silence(pool, matchers=matchers, starts_at=NOW + timedelta(hours=1),
                                  ends_at=NOW + timedelta(hours=2), comment="", created_by="api")
    await silences.create_silence(pool, matchers=matchers, starts_at=NOW - timedelta(hours=2),
                                  ends_at=NOW - timedelta(hours=1), comment="", created_by="api")
    quiet = await dashboard.quiet_figures(pool, now=NOW)
    assert quiet["active_silences"] == 0 and quiet["pending_silences"] == 1


async def test_snoozed_incidents_and_snoozed_apps_count_as_quiet(pool, pipeline):
    opened = await pipeline.ingest(alert("flaky"), now=NOW - timedelta(minutes=5))
    await IncidentActions(pool).snooze(opened.incident_id, "U0ALICE", 60, now=NOW - timedelta(minutes=1))
    await add_apps(pool, up=2)
    await pool.execute("UPDATE applications SET snoozed_until = $1 WHERE name = 'up-1'", NOW + timedelta(hours=1))
    quiet = await dashboard.quiet_figures(pool, now=NOW)
    assert quiet == {"active_silences": 0, "pending_silences": 0, "held_back": 0, "snoozed_incidents": 1, "snoozed_apps": 1}


# --- the last 24 hours ------------------------------------------------------------------------------


async def test_alert_figures_count_alerts_incidents_acks_and_time_to_ack(pool, pipeline):
    actions = IncidentActions(pool)
    first = await pipeline.ingest(alert("db"), now=NOW - timedelta(hours=2))
    for minute in range(1, 4):
        await pipeline.ingest(alert("db"), now=NOW - timedelta(hours=2) + timedelta(minutes=minute))
    await pipeline.ingest(alert("disk", source="alertmanager"), now=NOW - timedelta(hours=1))
    await actions.ack(first.incident_id, "U0ALICE", now=NOW - timedelta(hours=2) + timedelta(minutes=4))
    figures = await dashboard.alert_figures(pool, since=NOW - timedelta(hours=24), noisy_limit=5)
    assert figures["alerts"] == 5 and figures["incidents_opened"] == 2 and figures["acked"] == 1
    assert figures["mtta_seconds"] == pytest.approx(240)
    assert figures["noisy_sources"] == [
        {"source": "generic", "alerts": 4, "incidents": 1},
        {"source": "alertmanager", "alerts": 1, "incidents": 1},
    ]


async def test_alerts_before_the_window_and_resolutions_are_not_counted(pool, pipeline):
    await pipeline.ingest(alert("old"), now=NOW - timedelta(hours=30))
    await pipeline.ingest(alert("new"), now=NOW - timedelta(hours=1))
    await pipeline.ingest(alert("new", status="resolved"), now=NOW - timedelta(minutes=30))
    figures = await dashboard.alert_figures(pool, since=NOW - timedelta(hours=24), noisy_limit=5)
    assert figures["alerts"] == 1 and figures["incidents_opened"] == 1
    assert figures["acked"] == 0 and figures["mtta_seconds"] is None


# --- delivery health --------------------------------------------------------------------------------


async def test_delivery_figures_give_each_source_its_last_delivery_and_slack_its_last_call(pool):
    await envelopes.record_envelope(pool, source="sentry", scope="", envelope_id="e1", kind="error", payload={})
    await deliveries.record_delivery(pool, method="chat.postMessage", channel="C1", ok=True, latency_ms=12.0)
    await deliveries.record_delivery(pool, method="chat.update", channel="C1", ok=False, latency_ms=5.0, error="ratelimited")
    figures = await dashboard.delivery_figures(pool, sources=["sentry", "github"], since=NOW - timedelta(hours=24))
    assert isinstance(figures["webhooks"]["sentry"], datetime) and figures["webhooks"]["github"] is None
    assert figures["last_slack_delivery"] is not None and figures["last_slack_failure"] is not None
    assert figures["slack_failures"] == 1


async def test_delivery_figures_on_a_fresh_install_say_never(pool):
    figures = await dashboard.delivery_figures(pool, sources=["sentry"], since=NOW - timedelta(hours=24))
    assert figures == {"webhooks": {"sentry": None}, "last_slack_delivery": None, "last_slack_failure": None, "slack_failures": 0}
