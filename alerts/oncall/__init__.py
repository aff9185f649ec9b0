"""On-call schedules: who is on call at a time, for Slack, the API, the iCal feed and escalation.

The model (migration 0012; each part's details in its module):

- A *schedule* has a unique name (ignoring case), an IANA time zone, layers, overrides, swaps, an
  iCal feed token (random; rotated by a PUT with `rotate_feed_token`), and `managed_by` like every
  object the config file may own (NULL: edited in Slack or over the API).
- *Layers* are listed bottom first; where a higher layer has someone, it wins. A *rotation*
  (`rotation.py`) hands off between its members every shift length at a local wall-clock time
  from a start date, optionally only on some days / hours. An *imported* layer (`imports.py`) is
  an iCal URL, fetched every 15 minutes and on demand, read-only; its events name Slack users.
- An *override* (user, start, end) replaces whoever is on call in its window; overrides of one
  schedule never overlap (refused at creation).
- A *swap* gives the shift of user A that starts at a given time (in any layer) to user B; it is
  refused when A is not on call then.
- *Who is on call* at t: the override's user if any; else everyone the highest layer with someone
  at t has; else nobody (`compose.py`).

The escalation engine codes against `on_call`, `shifts`, `Shift` and `ScheduleNotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from alerts.oncall.compose import OVERRIDE, Override, Shift, Swap, apply_swaps, compose, on_call_at
from alerts.oncall.rotation import LayerShift, rotation_shifts
from alerts.oncall.validation import MAX_SHIFT, LayerSpec
from storage import schedules as store

__all__ = ["OVERRIDE", "Schedule", "ScheduleNotFound", "Shift", "load_schedule", "on_call", "shifts", "next_change"]


class ScheduleNotFound(LookupError):
    """No schedule has this id or name."""


@dataclass(frozen=True)
class Schedule:
    id: int
    name: str
    time_zone: str
    feed_token: str
    layers: tuple[LayerSpec, ...]
    managed_by: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_rows(cls, row: dict[str, Any], layers: Sequence[dict[str, Any]]) -> "Schedule":
        return cls(
            id=row["id"], name=row["name"], time_zone=row["time_zone"], feed_token=row["feed_token"],
            layers=tuple(LayerSpec.from_row(layer) for layer in layers), managed_by=row["managed_by"],
            created_by=row["created_by"], created_at=row["created_at"], updated_at=row["updated_at"],
        )


async def load_schedule(conn, schedule: int | str | Schedule) -> Schedule:
    """By id (an int, or digits) or by name (ignoring case); ScheduleNotFound otherwise."""
    if isinstance(schedule, Schedule):
        return schedule
    row = None
    if isinstance(schedule, str):
        row = await store.find_schedule(conn, schedule.strip())
        if row is None and schedule.strip().isdigit() and len(schedule.strip()) <= 18:
            row = await store.get_schedule(conn, int(schedule.strip()))
    elif isinstance(schedule, int) and not isinstance(schedule, bool):
        row = await store.get_schedule(conn, schedule)
    if row is None:
        raise ScheduleNotFound(f"no on-call schedule {schedule!r}")
    layers = (await store.layers_of(conn, [row["id"]]))[row["id"]]
    return Schedule.from_rows(row, layers)


async def shifts(conn, schedule: int | str | Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The final shifts overlapping [start, end), cut to it, by start then user."""
    s = await load_schedule(conn, schedule)
    start, end = _aware(start), _aware(end)
    if end <= start:
        return []
    layers = await _layer_shifts(conn, s, start, end)
    overrides = [
        Override(o["user_id"], o["starts_at"], o["ends_at"]) for o in await store.overrides_between(conn, s.id, start, end)
    ]
    return compose(layers, overrides, start, end)


async def on_call(conn, schedule: int | str | Schedule, at: datetime) -> list[str]:
    """Slack user IDs on call at `at` (usually one); [] when nobody is."""
    at = _aware(at)
    return on_call_at(await shifts(conn, schedule, at, at + timedelta(seconds=1)), at)


async def layer_shifts(conn, schedule: int | str | Schedule, start: datetime, end: datetime) -> list[list[LayerShift]]:
    """Each layer's own shifts (swaps applied), bottom first: what a swap may name."""
    s = await load_schedule(conn, schedule)
    return await _layer_shifts(conn, s, _aware(start), _aware(end))


async def next_change(
    conn, schedule: int | str | Schedule, at: datetime, *, horizon: timedelta = timedelta(days=60)
) -> tuple[list[str], datetime | None, list[str]]:
    """(who is on call at `at`, when that next changes, who is on call from then); the time is
    None when nothing changes within `horizon`."""
    at = _aware(at)
    final = await shifts(conn, schedule, at, at + horizon)
    now_on = on_call_at(final, at)
    for t in sorted({t for s in final for t in (s.start, s.end) if at < t < at + horizon}):
        then = on_call_at(final, t)
        if then != now_on:
            return now_on, t, then
    return now_on, None, []


async def _layer_shifts(conn, s: Schedule, start: datetime, end: datetime) -> list[list[LayerShift]]:
    swaps = [
        Swap(w["shift_start"], w["from_user"], w["to_user"])
        for w in await store.swaps_between(conn, s.id, start - MAX_SHIFT, end)
    ]
    found: list[list[LayerShift]] = []
    for layer in s.layers:
        if layer.rotation is not None:
            found.append(rotation_shifts(layer.rotation, s.time_zone, start, end))
        else:
            events = await store.imported_events(conn, s.id, layer.imported.url, start, end)
            found.append([LayerShift(e["user_id"], e["starts_at"], e["ends_at"]) for e in events if e["user_id"]])
    return [apply_swaps(layer, swaps) for layer in found]


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("on-call times must be aware datetimes (with a zone)")
    return at.astimezone(timezone.utc)
