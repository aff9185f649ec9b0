"""Application validation and the heartbeat clock rules: pure functions, checked by value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.applications import (
    ValidationError,
    effective_status,
    format_duration,
    next_due,
    parse_duration,
    validate_application,
)
from alerts.heartbeat_rules import AppClock, apply_heartbeat

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def valid(**overrides):
    data = {"name": "billing-sync", "expected_interval": 300, "grace_period": 60}
    data.update(overrides)
    return validate_application(data, default_channel="#ops-alerts")


def errors_of(**overrides) -> dict:
    with pytest.raises(ValidationError) as info:
        valid(**overrides)
    return info.value.errors


def test_defaults_fill_channel_grace_timezone_and_active():
    spec = validate_application({"name": " x ", "expected_interval": 60}, default_channel="#ops-alerts")
    assert (spec.name, spec.channel, spec.grace_period, spec.timezone, spec.is_active) == ("x", "#ops-alerts", 60, "UTC", True)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("name", "", "required"),
        ("name", "n" * 101, "at most 100"),
        ("expected_interval", 9, "from 10"),
        ("expected_interval", 2678401, "31 days"),
        ("expected_interval", True, "whole number"),
        ("expected_interval", "soon", "5m"),
        ("grace_period", -1, "from 0"),
        ("channel", "ops alerts", "#ops-alerts"),
        ("owner", "alice", "Slack user ID"),
        ("timezone", "Mars/Olympus", "IANA"),
        ("schedule", "every day", "cron"),
        ("is_active", "yes", "true or false"),
        ("colour", "red", "unknown field"),
    ],
)
def test_each_bad_field_is_named_with_what_is_allowed(field, value, words):
    errors = errors_of(**{field: value})
    assert words in errors[field]


def test_all_errors_are_reported_at_once():
    assert set(errors_of(name="", grace_period=-5, channel="x")) == {"name", "grace_period", "channel"}


def test_an_interval_or_a_schedule_is_required():
    with pytest.raises(ValidationError) as info:
        validate_application({"name": "x"}, default_channel="#ops-alerts")
    assert "expected_interval" in info.value.errors
    spec = validate_application({"name": "x", "schedule": "0 2 * * *"}, default_channel="#ops-alerts")
    assert spec.expected_interval is None and spec.schedule == "0 2 * * *"


def test_durations_accept_units():
    assert [parse_duration(t) for t in ("90", "90s", "5m", "2h", "1d", "1w")] == [90, 90, 300, 7200, 86400, 604800]
    assert valid(expected_interval="5m").expected_interval == 300


def test_a_partial_update_keeps_the_other_fields():
    current = valid(owner="U0ALICE")
    updated = validate_application({"grace_period": 0}, default_channel="#ops-alerts", current=current)
    assert (updated.grace_period, updated.owner, updated.expected_interval) == (0, "U0ALICE", 300)


def test_format_duration_reads_like_a_person_would_say_it():
    assert [format_duration(s) for s in (5, 300, 5400, 90000)] == ["5 s", "5 min", "1 h 30 min", "1 d 1 h"]


def test_next_due_follows_a_cron_schedule_in_its_time_zone():
    due = next_due(expected_interval=None, schedule="0 2 * * *", timezone="Europe/Berlin", after=T0)
    assert due == datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)  # 02:00 CET


def test_status_is_late_between_due_and_deadline_and_paused_when_inactive():
    due = T0 + timedelta(minutes=5)
    assert effective_status(is_active=True, state="up", due_at=due, now=due - timedelta(seconds=1)) == "up"
    assert effective_status(is_active=True, state="up", due_at=due, now=due + timedelta(seconds=1)) == "late"
    assert effective_status(is_active=False, state="up", due_at=due, now=T0) == "paused"


def clock(**overrides) -> AppClock:
    base = dict(
        id=1, name="job", is_active=True, state="new", expected_interval=300, grace_period=60, schedule=None,
        timezone="UTC", last_heartbeat=None, last_start=None, due_at=None, next_deadline=None, down_since=None,
        snoozed_until=None,
    )
    base.update(overrides)
    return AppClock(**base)


def test_a_success_starts_the_clock_with_interval_plus_grace():
    effect = apply_heartbeat(clock(), "success", T0)
    assert effect.clock.state == "up"
    assert effect.clock.due_at == T0 + timedelta(minutes=5)
    assert effect.clock.next_deadline == T0 + timedelta(minutes=6)
    assert effect.notification is None


def test_start_then_success_gives_the_run_duration():
    started = apply_heartbeat(clock(), "start", T0).clock
    effect = apply_heartbeat(started, "success", T0 + timedelta(seconds=42.5))
    assert effect.duration_ms == 42500 and effect.clock.last_start is None


def test_a_success_after_an_outage_is_a_recovery():
    effect = apply_heartbeat(clock(state="down", down_since=T0), "success", T0 + timedelta(minutes=14))
    assert effect.notification == "heartbeat_recovered" and effect.clock.state == "up"


def test_a_fail_goes_down_at_once_but_only_alerts_once():
    first = apply_heartbeat(clock(state="up"), "fail", T0)
    assert first.notification == "heartbeat_fail" and first.clock.state == "down" and first.clock.next_deadline is None
    again = apply_heartbeat(first.clock, "fail", T0 + timedelta(seconds=5))
    assert again.notification is None


def test_a_paused_app_records_but_does_not_change_state():
    effect = apply_heartbeat(clock(is_active=False, state="down"), "success", T0)
    assert effect.clock.state == "down" and effect.clock.last_heartbeat == T0 and effect.notification is None
