"""What one heartbeat does to an application's clock — pure functions, no I/O.

The batching writer locks the affected rows, runs each event through `apply_heartbeat` in arrival
order, and writes the results back in the same transaction, so the rules live here once and the
SQL stays a bulk write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.applications import next_due
from storage.applications import AppClock  # noqa: F401  (the shape the rules work on, re-exported)

KINDS = ("success", "start", "fail")
# A start older than this is a run that never reported; it yields no duration.
MAX_RUN = timedelta(days=1)


@dataclass(frozen=True)
class HeartbeatEffect:
    clock: AppClock
    duration_ms: int | None
    notification: str | None  # heartbeat_fail | heartbeat_recovered | None


def kind_for_exit_code(exit_code: int) -> str:
    return "success" if exit_code == 0 else "fail"


def apply_heartbeat(clock: AppClock, kind: str, received_at: datetime) -> HeartbeatEffect:
    if kind not in KINDS:
        raise ValueError(f"unknown heartbeat kind {kind!r}")
    if kind == "start":
        return HeartbeatEffect(clock._replace(last_start=received_at), None, None)

    duration_ms = None
    if clock.last_start is not None and timedelta(0) <= received_at - clock.last_start <= MAX_RUN:
        duration_ms = int((received_at - clock.last_start).total_seconds() * 1000)
    clock = clock._replace(last_start=None, last_heartbeat=received_at)
    if not clock.is_active:
        return HeartbeatEffect(clock, duration_ms, None)  # paused: history only

    if kind == "success":
        due = next_due(
            expected_interval=clock.expected_interval,
            schedule=clock.schedule,
            timezone=clock.timezone,
            after=received_at,
        )
        recovered = clock.state == "down"
        clock = clock._replace(
            state="up",
            due_at=due,
            next_deadline=due + timedelta(seconds=clock.grace_period),
            down_since=None,
        )
        return HeartbeatEffect(clock, duration_ms, "heartbeat_recovered" if recovered else None)

    # kind == "fail": down at once; a fail while already down alerts no second time.
    if clock.state == "down":
        return HeartbeatEffect(clock, duration_ms, None)
    clock = clock._replace(state="down", down_since=received_at, due_at=None, next_deadline=None)
    return HeartbeatEffect(clock, duration_ms, "heartbeat_fail")
