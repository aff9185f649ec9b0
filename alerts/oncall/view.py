"""Schedules as the API shows them (JSON), and as Slack's answers need them (`Standing`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.oncall import Schedule, next_change
from alerts.oncall.compose import Shift
from storage import schedules as store

FEED_PATH = "/schedules/{token}.ics"


def feed_path(schedule: Schedule) -> str:
    return FEED_PATH.format(token=schedule.feed_token)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def shift_json(shift: Shift) -> dict[str, Any]:
    return {"user": shift.user, "start": shift.start.isoformat(), "end": shift.end.isoformat(), "layer": shift.layer}


def override_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "user": row["user_id"], "start": row["starts_at"].isoformat(), "end": row["ends_at"].isoformat(),
        "created_by": row["created_by"], "created_at": _iso(row["created_at"]),
    }


def swap_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "shift_start": row["shift_start"].isoformat(), "from_user": row["from_user"],
        "to_user": row["to_user"], "created_by": row["created_by"], "created_at": _iso(row["created_at"]),
    }


async def schedule_json(pool, schedule: Schedule, *, base_url: str, now: datetime) -> dict[str, Any]:
    calendars = {c["url"]: c for c in await store.calendars_of(pool, schedule.id)}
    layers = []
    for layer in schedule.layers:
        item = layer.as_json()
        if layer.imported is not None:
            c = calendars.get(layer.imported.url) or {}
            item["status"] = {
                "fetched_at": _iso(c.get("fetched_at")), "last_success_at": _iso(c.get("last_success_at")),
                "last_error": c.get("last_error"), "events": c.get("event_count", 0), "unmatched": c.get("unmatched", 0),
            }
        layers.append(item)
    overrides = await store.overrides_between(pool, schedule.id, now, now + timedelta(days=366))
    return {
        "id": schedule.id,
        "name": schedule.name,
        "time_zone": schedule.time_zone,
        "layers": layers,
        "overrides": [override_json(o) for o in overrides],
        "feed_url": base_url.rstrip("/") + feed_path(schedule),
        "created_by": schedule.created_by,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
        "managed_by": schedule.managed_by,
    }


@dataclass(frozen=True)
class Standing:
    """Who is on call now, until when, and who is next."""

    schedule: Schedule
    now: list[str]
    until: datetime | None
    next: list[str]
    calendar_errors: tuple[str, ...] = ()


async def standing(pool, schedule: Schedule, at: datetime) -> Standing:
    now_on, until, then = await next_change(pool, schedule, at)
    errors = tuple(c["last_error"] for c in await store.calendars_of(pool, schedule.id) if c["last_error"])
    return Standing(schedule, now_on, until, then, errors)


def standing_json(s: Standing, at: datetime) -> dict[str, Any]:
    return {"at": at.isoformat(), "on_call": s.now, "until": _iso(s.until), "next": s.next}
