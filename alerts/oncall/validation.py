"""What a schedule, a layer, an override and a swap may be, checked field by field.

The API and Slack share these checks and their words. Errors are collected per field, keyed by
the field's path in the JSON body (`layers[1].shift`), each saying what to write instead.

Times people type (`when`): an ISO 8601 time with a zone, a local time in the schedule's zone
(`2026-12-08 09:00` or `2026-12-08T09:00`), `now`, or `+4h` / `+30m` / `+2d` after a base time
(now for a start, the start for an end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.oncall.rotation import Rotation

SLACK_USER = re.compile(r"^<?@?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")
USER_HINT = "a Slack user ID like U012ABCDEF (or a mention <@U012ABCDEF>)"
SHIFT = re.compile(r"^\s*(\d{1,4})\s*(h|hrs?|hours?|d|days?|w|wks?|weeks?)\s*$", re.IGNORECASE)
HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
RELATIVE = re.compile(r"^\+\s*(\d{1,5})\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)$", re.IGNORECASE)
LOCAL_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})(?::\d{2})?$")
DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
DAY_SETS = {"weekdays": (1, 2, 3, 4, 5), "weekends": (6, 7), "every day": (1, 2, 3, 4, 5, 6, 7)}
MAX_SHIFT = timedelta(weeks=8)
MAX_MEMBERS = 100
MAX_LAYERS = 20
MAX_OVERRIDE = timedelta(days=90)
NAME_MAX = 80
MIN_YEAR, MAX_YEAR = 1970, 2200  # dates outside are typos, and near datetime's limits arithmetic overflows


class ValidationError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Imported:
    url: str


@dataclass(frozen=True)
class LayerSpec:
    name: str
    rotation: Rotation | None = None
    imported: Imported | None = None

    def as_row(self) -> dict[str, Any]:
        r = self.rotation
        return {
            "name": self.name,
            "kind": "rotation" if r else "imported",
            "members": list(r.members) if r else [],
            "shift_count": r.shift_count if r else None,
            "shift_unit": r.shift_unit if r else None,
            "handoff_time": r.handoff if r else None,
            "start_date": r.start if r else None,
            "restrict_days": list(r.days) if r and r.days else None,
            "restrict_from": r.hours[0] if r and r.hours else None,
            "restrict_to": r.hours[1] if r and r.hours else None,
            "ical_url": self.imported.url if self.imported else None,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "LayerSpec":
        if row["kind"] == "imported":
            return cls(row["name"], imported=Imported(row["ical_url"]))
        hours = (row["restrict_from"], row["restrict_to"]) if row["restrict_from"] is not None else None
        return cls(row["name"], rotation=Rotation(
            members=tuple(row["members"]), shift_count=row["shift_count"], shift_unit=row["shift_unit"],
            handoff=row["handoff_time"], start=row["start_date"],
            days=tuple(row["restrict_days"]) if row["restrict_days"] else None, hours=hours,
        ))

    def as_json(self) -> dict[str, Any]:
        if self.imported:
            return {"name": self.name, "kind": "imported", "ical_url": self.imported.url}
        r = self.rotation
        assert r is not None
        out: dict[str, Any] = {
            "name": self.name, "kind": "rotation", "members": list(r.members),
            "shift": f"{r.shift_count} {r.shift_unit[:-1] if r.shift_count == 1 else r.shift_unit}",
            "handoff": r.handoff.strftime("%H:%M"), "start": r.start.isoformat(),
        }
        out["days"] = [name for name, n in DAY_NAMES.items() if n in r.days] if r.days else None
        out["hours"] = f"{r.hours[0]:%H:%M}-{r.hours[1]:%H:%M}" if r.hours else None
        return out


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    time_zone: str
    layers: tuple[LayerSpec, ...]


SCHEDULE_FIELDS = ("name", "time_zone", "layers")
ROTATION_FIELDS = ("name", "kind", "members", "shift", "handoff", "start", "days", "hours")
IMPORTED_FIELDS = ("name", "kind", "ical_url", "status")  # status: a GET's fetch status sent back, ignored


def validate_schedule(data: dict[str, Any]) -> ScheduleSpec:
    errors: dict[str, str] = {f: "unknown field" for f in data if f not in SCHEDULE_FIELDS}
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= NAME_MAX:
        errors["name"] = f"1–{NAME_MAX} characters, e.g. primary"
    zone = data.get("time_zone")
    if not valid_zone(zone):
        errors["time_zone"] = "an IANA time zone like Europe/Berlin or America/New_York"
    layers_in = data.get("layers", [])
    layers: list[LayerSpec] = []
    if not isinstance(layers_in, list) or len(layers_in) > MAX_LAYERS:
        errors["layers"] = f"a list of up to {MAX_LAYERS} layers, bottom first (a later layer wins where it has someone)"
    else:
        for i, layer in enumerate(layers_in):
            spec = _layer(layer, f"layers[{i}]", i + 1, errors)
            if spec is not None:
                layers.append(spec)
    if errors:
        raise ValidationError(errors)
    return ScheduleSpec(name.strip(), zone, tuple(layers))


def valid_zone(zone: Any) -> bool:
    if not isinstance(zone, str) or not zone or zone.startswith(("/", ".")) or ".." in zone:
        return False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _layer(data: Any, at: str, number: int, errors: dict[str, str]) -> LayerSpec | None:
    if not isinstance(data, dict):
        errors[at] = 'an object: {"members": [...], "shift": "1 week", "handoff": "09:00", "start": "2026-12-07"} or {"ical_url": "https://…"}'
        return None
    before = len(errors)
    kind = data.get("kind") or ("imported" if "ical_url" in data else "rotation")
    if kind not in ("rotation", "imported"):
        errors[f"{at}.kind"] = "rotation or imported"
        return None
    allowed = ROTATION_FIELDS if kind == "rotation" else IMPORTED_FIELDS
    for field in data:
        if field not in allowed:
            errors[f"{at}.{field}"] = "unknown field" + (" for an imported layer" if kind == "imported" else "")
    name = data.get("name") or f"layer {number}"
    if not isinstance(name, str) or len(name) > NAME_MAX:
        errors[f"{at}.name"] = f"up to {NAME_MAX} characters"
    if kind == "imported":
        url = data.get("ical_url")
        if not isinstance(url, str) or not _calendar_url(url):
            errors[f"{at}.ical_url"] = "an http(s) or webcal:// address of an iCal feed"
            return None
        return None if len(errors) > before else LayerSpec(name, imported=Imported(url.strip()))
    members = _members(data.get("members"), f"{at}.members", errors)
    shift = parse_shift(data.get("shift"))
    if shift is None:
        errors[f"{at}.shift"] = "a length like 1 week, 2 days or 12 hours (at most 8 weeks)"
    handoff = parse_hhmm(data.get("handoff", "09:00"))
    if handoff is None:
        errors[f"{at}.handoff"] = "a local time like 09:00"
    start = _date(data.get("start"))
    if start is None:
        errors[f"{at}.start"] = "the date of the first hand-off, like 2026-12-07"
    days = _days(data.get("days"))
    if days is False:
        errors[f"{at}.days"] = "weekdays, weekends, or a list of days like [mon, tue, wed]"
    hours = _hours(data.get("hours"))
    if hours is False:
        errors[f"{at}.hours"] = "local hours like 09:00-17:00 (17:00-09:00 runs past midnight)"
    if len(errors) > before:
        return None
    return LayerSpec(name, rotation=Rotation(
        members=tuple(members), shift_count=shift[0], shift_unit=shift[1], handoff=handoff, start=start,
        days=days or None, hours=hours or None,
    ))


def _members(value: Any, at: str, errors: dict[str, str]) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MEMBERS:
        errors[at] = f"1–{MAX_MEMBERS} Slack user IDs in rotation order, e.g. [U012ABCDEF, U034GHIJKL]"
        return []
    found = []
    for item in value:
        user = slack_user(item)
        if user is None:
            errors[at] = f"{_shown(item)} is not {USER_HINT}"
            return []
        found.append(user)
    return found


def slack_user(value: Any) -> str | None:
    match = SLACK_USER.match(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def parse_shift(value: Any) -> tuple[int, str] | None:
    match = SHIFT.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    count, word = int(match.group(1)), match.group(2).lower()
    unit = "hours" if word.startswith("h") else "days" if word.startswith("d") else "weeks"
    if count < 1 or timedelta(**{unit: count}) > MAX_SHIFT:
        return None
    return count, unit


def parse_hhmm(value: Any) -> time | None:
    match = HHMM.match(value.strip()) if isinstance(value, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        found = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return found if MIN_YEAR <= found.year < MAX_YEAR else None


def _days(value: Any) -> tuple[int, ...] | None | bool:
    """ISO weekdays; None when not restricted; False when unreadable."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in DAY_SETS:
            return DAY_SETS[text]
        span = re.fullmatch(r"([a-z]{3})\w*\s*-\s*([a-z]{3})\w*", text)
        if span and span.group(1) in DAY_NAMES and span.group(2) in DAY_NAMES:
            a, b = DAY_NAMES[span.group(1)], DAY_NAMES[span.group(2)]
            return tuple(range(a, b + 1)) if a <= b else tuple([*range(a, 8), *range(1, b + 1)])
        value = [v for v in re.split(r"[\s,]+", text) if v]
    if not isinstance(value, list):
        return False
    days = set()
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 7:
            days.add(item)
        elif isinstance(item, str) and item.strip().lower()[:3] in DAY_NAMES:
            days.add(DAY_NAMES[item.strip().lower()[:3]])
        else:
            return False
    return tuple(sorted(days))


def _hours(value: Any) -> tuple[time, time] | None | bool:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "-" not in value:
        return False
    lo, _, hi = value.partition("-")
    begins, ends = parse_hhmm(lo), parse_hhmm(hi.replace("24:00", "00:00"))
    if begins is None or ends is None or begins == ends:
        return False
    return begins, ends


def _calendar_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https", "webcal") and bool(parts.netloc) and len(url) <= 2000


def fetchable_url(url: str) -> str:
    """webcal:// is https:// to a calendar app."""
    return "https://" + url.strip()[len("webcal://"):] if url.strip().lower().startswith("webcal://") else url.strip()


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


# --- times people type --------------------------------------------------------------------------------


def parse_when(value: Any, zone: str, *, base: datetime) -> datetime | None:
    """An aware UTC datetime, or None when `value` is none of the accepted forms (or not within
    the years a schedule can mean, 1970–2199)."""
    try:
        found = _parse_when(value, zone, base)
    except (OverflowError, ValueError):
        return None
    return found if found is not None and MIN_YEAR <= found.year < MAX_YEAR else None


def _parse_when(value: Any, zone: str, base: datetime) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() == "now":
        return base.astimezone(timezone.utc)
    relative = RELATIVE.match(text)
    if relative:
        n, word = int(relative.group(1)), relative.group(2).lower()
        unit = "minutes" if word.startswith("m") else "hours" if word.startswith("h") else "days" if word.startswith("d") else "weeks"
        return (base + timedelta(**{unit: n})).astimezone(timezone.utc)
    local = LOCAL_TIME.match(text)
    if local:
        try:
            naive = datetime.fromisoformat(f"{local.group(1)}T{int(local.group(2).split(':')[0]):02d}:{local.group(2).split(':')[1]}")
        except ValueError:
            return None
        return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(timezone.utc)


WHEN_HINT = "a time like 2026-12-08 09:00 (in the schedule's zone), an ISO 8601 time with a zone, now, or +4h"


@dataclass(frozen=True)
class OverrideSpec:
    user: str
    start: datetime
    end: datetime


def validate_override(data: dict[str, Any], zone: str, *, now: datetime) -> OverrideSpec:
    errors: dict[str, str] = {f: "unknown field" for f in data if f not in ("user", "start", "end")}
    user = slack_user(data.get("user"))
    if user is None:
        errors["user"] = USER_HINT
    start = parse_when(data.get("start"), zone, base=now)
    if start is None:
        errors["start"] = WHEN_HINT
    end: datetime | None = None
    if start is not None or not _is_relative(data.get("end")):  # +4h after an unreadable start: its error says it
        end = parse_when(data.get("end"), zone, base=start or now)
        if end is None:
            errors["end"] = WHEN_HINT.replace("+4h", "+4h (after the start)")
    if end is not None and start is not None:
        if end <= start:
            errors["end"] = "must be after the start"
        elif end - start > MAX_OVERRIDE:
            errors["end"] = "an override lasts at most 90 days"
        elif end <= now:
            errors["end"] = "is in the past: an override must end in the future"
    if errors:
        raise ValidationError(errors)
    return OverrideSpec(user, start, end)


def _is_relative(value: Any) -> bool:
    return isinstance(value, str) and bool(RELATIVE.match(value.strip()))


@dataclass(frozen=True)
class SwapSpec:
    shift_start: datetime
    from_user: str
    to_user: str


def validate_swap(data: dict[str, Any], zone: str, *, now: datetime) -> SwapSpec:
    errors: dict[str, str] = {f: "unknown field" for f in data if f not in ("shift_start", "from_user", "to_user")}
    start = parse_when(data.get("shift_start"), zone, base=now)
    if start is None:
        errors["shift_start"] = "the start of the shift to swap: " + WHEN_HINT
    from_user, to_user = slack_user(data.get("from_user")), slack_user(data.get("to_user"))
    if from_user is None:
        errors["from_user"] = "whose shift it is: " + USER_HINT
    if to_user is None:
        errors["to_user"] = "who takes it: " + USER_HINT
    elif to_user == from_user:
        errors["to_user"] = "must be someone other than from_user"
    if errors:
        raise ValidationError(errors)
    return SwapSpec(start, from_user, to_user)
