"""iCal in and out: a schedule's final shifts as a feed, and an imported calendar's events.

Export: one VEVENT per final shift, DTSTART/DTEND with the schedule's TZID (and its VTIMEZONE),
SUMMARY "On call: <name> (<U…>)" — the name when Pulser knows it, the ID always, so a calendar
made from the feed can be imported back into a layer and give the same answers.

Import: Google Calendar, an exported Grafana OnCall or PagerDuty schedule, or this feed. Events
are expanded (recurrences included) by `recurring-ical-events`, which also applies Google's
`X-WR-TIMEZONE` (with the `x-wr-timezone` package) to times written without a zone. Times still
without a zone, and all-day dates, are read in the schedule's zone. Each event names its people
by a Slack user ID in its summary or description (`U…`, `<@U…>`), else by e-mail: its attendees'
(`mailto:`), else addresses in its summary or description; e-mails are matched to Slack users
by the caller (`alerts.oncall.imports`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from alerts.oncall.compose import Shift

PRODID = "-//Pulser//on-call schedule//EN"
# A Slack user ID has a digit somewhere; "UTC" or "URGENT" in a summary is not one.
SLACK_ID = re.compile(r"(?<![A-Za-z0-9])([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{2,})(?![A-Za-z0-9])")
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
MAX_EVENTS = 5000


class CalendarError(Exception):
    """The document is not an iCal calendar we can read; the message says why (shown to people)."""


@dataclass(frozen=True)
class CalendarEvent:
    start: datetime  # aware UTC
    end: datetime
    label: str  # the summary
    user_ids: tuple[str, ...]  # Slack IDs the event names
    emails: tuple[str, ...]  # lower-case; used when it names no Slack ID


def export(
    *, schedule_id: int, name: str, zone: str, shifts: Sequence[Shift], names: Mapping[str, str], now: datetime
) -> bytes:
    tz = ZoneInfo(zone)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"On call: {name}")
    calendar.add("x-wr-timezone", zone)
    for shift in shifts:
        event = icalendar.Event()
        who = f"{names[shift.user]} ({shift.user})" if names.get(shift.user) else shift.user
        event.add("uid", f"pulser-{schedule_id}-{shift.user}-{int(shift.start.timestamp())}")
        event.add("dtstamp", now.astimezone(timezone.utc))
        event.add("summary", f"On call: {who}")
        event.add("dtstart", shift.start.astimezone(tz))
        event.add("dtend", shift.end.astimezone(tz))
        layer = "override" if shift.layer == "override" else f"layer {shift.layer}"
        event.add("description", f"{name}, {layer}. Slack user {shift.user}.")
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def read_events(document: bytes, zone: str, start: datetime, end: datetime) -> list[CalendarEvent]:
    """The events overlapping [start, end), expanded; CalendarError when it is not a calendar."""
    try:
        calendar = icalendar.Calendar.from_ical(document)
    except (ValueError, IndexError, KeyError) as exc:
        raise CalendarError(f"not an iCal calendar ({type(exc).__name__})") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise CalendarError("not an iCal calendar (no VCALENDAR)")
    tz = ZoneInfo(zone)
    try:
        expanded = recurring_ical_events.of(calendar, skip_bad_series=True).between(start, end)
    except Exception as exc:  # the library's errors for broken recurrences have no common base
        raise CalendarError(f"unreadable events ({type(exc).__name__})") from None
    found = []
    for event in expanded:
        if str(event.get("STATUS", "")).upper() == "CANCELLED" or "DTSTART" not in event:
            continue
        begins = _utc(event["DTSTART"].dt, tz)
        ends = _utc(event["DTEND"].dt, tz) if "DTEND" in event else begins
        if ends <= begins:
            continue
        summary, description = str(event.get("SUMMARY", "")), str(event.get("DESCRIPTION", ""))
        ids = tuple(dict.fromkeys(SLACK_ID.findall(f"{summary}\n{description}")))
        attendees = event.get("ATTENDEE") or []
        attendees = attendees if isinstance(attendees, list) else [attendees]
        emails = [str(a)[7:] for a in attendees if str(a).lower().startswith("mailto:")]
        if not emails:
            emails = EMAIL.findall(f"{summary}\n{description}")
        found.append(CalendarEvent(begins, ends, summary[:200], ids, tuple(dict.fromkeys(e.lower() for e in emails))))
        if len(found) >= MAX_EVENTS:
            break
    found.sort(key=lambda e: e.start)
    return found


def _utc(value: datetime | date, tz: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc)
