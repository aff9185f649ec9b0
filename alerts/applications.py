"""Heartbeat applications: validation of what a person or the API submits, and the clock rules.

One validator serves the HTTP API and the Slack modal, so both give the same answer for the same
input; errors name the field (`{"grace_period": "must be 0 s – 31 days"}`).

Clock rules (healthchecks.io's, where it has one):
- a `new` app (never pinged) is not watched; its first heartbeat starts the clock;
- after a heartbeat the next one is *due* one interval later (or at the next cron time) and the
  app is *down* once `due + grace` passes; between due and deadline it shows as `late`;
- a paused app keeps its history but is neither watched nor changed by heartbeats; resuming it
  makes it `new` again, so a long pause does not alert the moment it ends.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from storage.applications import ApplicationSpec  # noqa: F401  (the validated shape, re-exported)

MIN_INTERVAL = 10
MAX_SECONDS = 31 * 24 * 3600
DEFAULT_GRACE = 60
NAME_MAX = 100

CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_\-]{0,79}|[CG][A-Z0-9]{2,})$")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

FIELDS = ("name", "expected_interval", "grace_period", "schedule", "timezone", "channel", "owner", "is_active")


class ValidationError(ValueError):
    """Field name → what is wrong with it, in words a person can act on."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def parse_duration(text: str) -> int:
    """'300', '300s', '5m', '2h', '1d', '1w' → seconds. Raises ValueError otherwise."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def format_duration(seconds: float | int | None) -> str:
    """Seconds → the largest whole units a person reads at a glance: '5 min', '1 h 30 min', '2 d'."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def validate_application(
    data: Mapping[str, Any],
    *,
    default_channel: str,
    current: ApplicationSpec | None = None,
) -> ApplicationSpec:
    """Validate a full submission (current=None) or a partial update of `current`.

    Collects every field's error before raising, so a form shows them all at once.
    """
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    for key in unknown:
        errors[key] = "unknown field"

    def pick(field: str, default: Any) -> Any:
        if field in data:
            return data[field]
        return getattr(current, field) if current is not None else default

    name = pick("name", None)
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "required: 1–100 characters"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = f"too long: {len(name.strip())} characters, at most {NAME_MAX}"
    else:
        name = name.strip()

    schedule = pick("schedule", None)
    if isinstance(schedule, str) and not schedule.strip():
        schedule = None
    timezone = pick("timezone", "UTC")
    if not isinstance(timezone, str) or not _valid_timezone(timezone):
        errors["timezone"] = "unknown time zone: use an IANA name like UTC or Europe/Berlin"
        timezone = "UTC"
    if schedule is not None:
        if not isinstance(schedule, str):
            errors["schedule"] = "must be a cron expression like '0 2 * * *'"
        else:
            schedule = " ".join(schedule.split())
            try:
                cron_trigger(schedule, timezone)
            except ValueError as exc:
                errors["schedule"] = f"not a valid cron expression (minute hour day month weekday): {exc}"

    interval = _seconds_field(pick("expected_interval", None), "expected_interval", errors, MIN_INTERVAL)
    if interval is None and schedule is None and "expected_interval" not in errors and "schedule" not in errors:
        errors["expected_interval"] = f"required (seconds, {MIN_INTERVAL} s – 31 days) unless a cron schedule is given"

    grace = _seconds_field(pick("grace_period", DEFAULT_GRACE), "grace_period", errors, 0)

    channel = pick("channel", None) or default_channel
    if not isinstance(channel, str) or not CHANNEL.match(channel):
        errors["channel"] = "must be a channel like #ops-alerts or a channel ID like C012ABCDEF"

    owner = pick("owner", None)
    if owner in ("", None):
        owner = None
    elif not isinstance(owner, str) or not SLACK_USER.match(owner):
        errors["owner"] = "must be a Slack user ID like U012ABCDEF"

    is_active = pick("is_active", True)
    if not isinstance(is_active, bool):
        errors["is_active"] = "must be true or false"

    if errors:
        raise ValidationError(errors)
    return ApplicationSpec(
        name=name,
        expected_interval=interval,
        grace_period=grace if grace is not None else DEFAULT_GRACE,
        schedule=schedule,
        timezone=timezone,
        channel=channel,
        owner=owner,
        is_active=is_active,
    )


def _seconds_field(value: Any, field: str, errors: dict[str, str], minimum: int) -> int | None:
    if value is None:
        return None
    allowed = f"must be a whole number of seconds from {minimum} to {MAX_SECONDS} (31 days)"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        errors[field] = allowed
        return None
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except ValueError:
            errors[field] = allowed + "; 90, 90s, 5m, 2h, 1d also work"
            return None
    if not minimum <= value <= MAX_SECONDS:
        errors[field] = allowed
        return None
    return value


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1024)
def cron_trigger(schedule: str, timezone: str) -> CronTrigger:
    """A parsed cron schedule (APScheduler's parser: 5 fields, names like MON and JAN allowed)."""
    return CronTrigger.from_crontab(schedule, timezone=ZoneInfo(timezone))


def next_due(*, expected_interval: int | None, schedule: str | None, timezone: str, after: datetime) -> datetime:
    """When the heartbeat after one received at `after` is expected."""
    if schedule:
        fire = cron_trigger(schedule, timezone).get_next_fire_time(None, after + timedelta(seconds=1))
        if fire is None:  # a schedule that never fires again: treat as never due
            return after + timedelta(seconds=MAX_SECONDS)
        return fire
    assert expected_interval is not None
    return after + timedelta(seconds=expected_interval)


def clock_after_edit(current: Any, spec: ApplicationSpec) -> tuple[datetime | None, datetime | None]:
    """(due_at, next_deadline) after an edit. An `up` app whose timing changed is due again from
    its last heartbeat, so the change counts at once; every other app keeps its clock (a new app
    waits for its first heartbeat, a down app for its recovery).

    `current` is the row as locked by storage, so a heartbeat or the watcher committing meanwhile
    is never overwritten."""
    timing = (spec.expected_interval, spec.grace_period, spec.schedule, spec.timezone)
    before = (current.expected_interval, current.grace_period, current.schedule, current.timezone)
    if current.state != "up" or current.last_heartbeat is None or timing == before:
        return current.due_at, current.next_deadline
    due = next_due(
        expected_interval=spec.expected_interval, schedule=spec.schedule, timezone=spec.timezone,
        after=current.last_heartbeat,
    )
    return due, due + timedelta(seconds=spec.grace_period)


def effective_status(*, is_active: bool, state: str, due_at: datetime | None, now: datetime) -> str:
    """new | up | late | down | paused, as a person should see it right now."""
    if not is_active:
        return "paused"
    if state == "up" and due_at is not None and now > due_at:
        return "late"
    return state


def expected_text(expected_interval: int | None, schedule: str | None, timezone: str) -> str:
    """'every 5 min' or 'on 0 2 * * * (Europe/Berlin)'."""
    if schedule:
        return f"on `{schedule}` ({timezone})"
    return f"every {format_duration(expected_interval)}"
