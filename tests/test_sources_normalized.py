"""NormalizedAlert invariants, severity helpers, group_key, and the source registry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.normalized import (
    SEVERITIES,
    NormalizedAlert,
    bump_severity,
    group_key,
    max_severity,
    severity_at_least,
)
from alerts.sources import SOURCES
from alerts.sources.common import header, normalize_env, parse_timestamp, PayloadError


def make_alert(**changes) -> NormalizedAlert:
    fields = dict(
        source="generic",
        source_event_id="e1",
        service="api",
        env="production",
        severity="high",
        fingerprint="disk-full",
        title="Disk full",
        description="",
        occurred_at=datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc),
    )
    fields.update(changes)
    return NormalizedAlert(**fields)


def test_severities_are_ordered_from_info_to_critical():
    assert SEVERITIES == ("info", "low", "medium", "high", "critical")
    assert severity_at_least("critical", "high")
    assert not severity_at_least("medium", "high")


def test_bump_severity_goes_one_level_up_and_stops_at_critical():
    assert bump_severity("medium") == "high"
    assert bump_severity("critical") == "critical"
    assert max_severity("low", "critical", "medium") == "critical"


def test_occurred_at_is_converted_to_utc():
    alert = make_alert(occurred_at=datetime(2026, 11, 23, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert alert.occurred_at == datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert alert.occurred_at.tzinfo == timezone.utc


def test_naive_occurred_at_is_a_bug():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_alert(occurred_at=datetime(2026, 11, 23, 12, 0))


def test_unknown_severity_is_a_bug():
    with pytest.raises(ValueError, match="severity"):
        make_alert(severity="urgent")


def test_alerts_with_tags_are_hashable_and_comparable():
    assert make_alert(tags={"a": "1"}) == make_alert(tags={"a": "1"})
    assert hash(make_alert(tags={"a": "1"})) == hash(make_alert(tags={"a": "2"}))


def test_group_key_depends_only_on_source_service_env_fingerprint():
    first = make_alert(title="Disk full", occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    repeat = make_alert(title="Disk 99% full", source_event_id="e2", severity="critical")
    assert group_key(first) == group_key(repeat)
    assert len(group_key(first)) == 64
    assert group_key(first) != group_key(make_alert(env="staging"))


def test_group_key_join_is_unambiguous():
    assert group_key(make_alert(service="a:b", env="c")) != group_key(make_alert(service="a", env="b:c"))


def test_registry_offers_every_source_with_the_same_functions():
    assert set(SOURCES) == {"sentry", "alertmanager", "github", "generic", "heroku"}
    for name, module in SOURCES.items():
        assert module.NAME == name
        for function in ("decode", "verify", "idempotency_key", "parse"):
            assert callable(getattr(module, function)), f"{name}.{function}"


def test_header_lookup_ignores_case():
    assert header({"x-github-event": "ping"}, "X-GitHub-Event") == "ping"
    assert header({}, "X-GitHub-Event") is None


def test_environment_short_forms_are_expanded():
    assert normalize_env("Prod") == "production"
    assert normalize_env("Development") == "development"
    assert normalize_env(None) == ""


def test_timestamps_with_nanoseconds_and_offsets_become_utc():
    parsed = parse_timestamp("2018-03-07T06:33:21.873077559-05:00", "startsAt")
    assert parsed == datetime(2018, 3, 7, 11, 33, 21, 873077, tzinfo=timezone.utc)
    assert parse_timestamp(1566248317.391, "timestamp").year == 2019


def test_unparseable_timestamp_names_the_field():
    with pytest.raises(PayloadError, match="startsAt"):
        parse_timestamp("yesterday", "startsAt")


def test_json_round_trip_keeps_every_field():
    alert = make_alert(tags={"team": "payments"}, link="https://example.com/x", status="resolved")
    assert NormalizedAlert.from_json_dict(alert.to_json_dict()) == alert

