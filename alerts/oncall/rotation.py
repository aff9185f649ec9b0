"""A rotation layer's shifts, from its members, shift length, hand-off time and start date.

Calendar arithmetic is the iCalendar standard's, done by maintained libraries: each member's
turns are one RRULE-recurring VEVENT in the schedule's time zone (member i starts i shift lengths
after the layer's start, and recurs every n shift lengths for n members), expanded over a window
by `recurring-ical-events`. Recurrence is wall-clock in the zone, so a weekly hand-off at 09:00
stays at 09:00 local across a DST change, and that week's shift is 167 h or 169 h long in UTC.

A restriction (days of the week and/or hours of the day, local) clips each shift to the windows
it allows: outside them the layer has nobody, and a lower layer (or nobody) answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

Unit = Literal["hours", "days", "weeks"]
UTC = timezone.utc


@dataclass(frozen=True)
class Rotation:
    members: tuple[str, ...]
    shift_count: int
    shift_unit: Unit
    handoff: time
    start: date
    days: tuple[int, ...] | None = None  # ISO weekdays (1 = Monday) the layer covers; None: all
    hours: tuple[time, time] | None = None  # (from, to) local; to <= from runs past midnight

    @property
    def shift_length(self) -> timedelta:
        """Wall-clock length (a DST change makes one shift an hour longer or shorter in UTC)."""
        return timedelta(**{self.shift_unit: self.shift_count})


@dataclass(frozen=True)
class LayerShift:
    user: str
    start: datetime  # aware, UTC
    end: datetime


def rotation_shifts(rotation: Rotation, zone: str, start: datetime, end: datetime) -> list[LayerShift]:
    """Shifts (clipped to the restriction, not to the window) overlapping [start, end), by start."""
    tz = ZoneInfo(zone)
    # Widen the window by a shift so a shift that began before `start` is found too.
    expanded = recurring_ical_events.of(_calendar(rotation, zone)).between(
        start.astimezone(tz) - rotation.shift_length, end.astimezone(tz)
    )
    shifts = []
    for event in expanded:
        begins, ends = _utc(event["DTSTART"].dt, tz), _utc(event["DTEND"].dt, tz)
        if begins < end and ends > start:
            shifts.append(LayerShift(str(event["SUMMARY"]), begins, ends))
    shifts.sort(key=lambda s: s.start)
    if rotation.days is None and rotation.hours is None:
        return shifts
    return [clipped for s in shifts for clipped in _restrict(s, rotation, tz) if clipped.start < end and clipped.end > start]


@lru_cache(maxsize=256)
def _calendar(rotation: Rotation, zone: str) -> icalendar.Calendar:
    """The layer as a calendar: one recurring event per member (cached: layers rarely change)."""
    tz = ZoneInfo(zone)
    n = len(rotation.members)
    freq = {"hours": "hourly", "days": "daily", "weeks": "weekly"}[rotation.shift_unit]
    first = datetime.combine(rotation.start, rotation.handoff)  # naive: wall-clock arithmetic
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Pulser//on-call rotation//EN")
    calendar.add("version", "2.0")
    for i, member in enumerate(rotation.members):
        begins = (first + i * rotation.shift_length).replace(tzinfo=tz)
        event = icalendar.Event()
        event.add("uid", f"member-{i}")
        event.add("summary", member)
        event.add("dtstart", begins)
        event.add("dtend", (first + (i + 1) * rotation.shift_length).replace(tzinfo=tz))
        event.add("rrule", {"freq": freq, "interval": n * rotation.shift_count})
        calendar.add_component(event)
    return calendar


def _utc(value: datetime | date, tz: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):  # an all-day date: midnight, local
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _restrict(shift: LayerShift, rotation: Rotation, tz: ZoneInfo) -> list[LayerShift]:
    """The parts of `shift` inside the layer's days and hours (each local day's window)."""
    first_day = shift.start.astimezone(tz).date() - timedelta(days=1)  # a window from the day before may run past midnight
    last_day = shift.end.astimezone(tz).date()
    parts: list[LayerShift] = []
    day = first_day
    while day <= last_day:
        if rotation.days is None or day.isoweekday() in rotation.days:
            if rotation.hours is None:
                window = (datetime.combine(day, time(0), tz), datetime.combine(day + timedelta(days=1), time(0), tz))
            else:
                begins, ends = rotation.hours
                end_day = day + timedelta(days=1) if ends <= begins else day
                window = (datetime.combine(day, begins, tz), datetime.combine(end_day, ends, tz))
            lo, hi = max(shift.start, window[0].astimezone(UTC)), min(shift.end, window[1].astimezone(UTC))
            if lo < hi:
                if parts and parts[-1].end >= lo:  # adjacent windows (whole days) make one part
                    parts[-1] = LayerShift(shift.user, parts[-1].start, max(hi, parts[-1].end))
                else:
                    parts.append(LayerShift(shift.user, lo, hi))
        day += timedelta(days=1)
    return parts
