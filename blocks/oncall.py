"""Block Kit for on-call: the `/pulser oncall` answers, the "Add override" modal, and errors.

Pure functions over plain values (the handler asks `alerts.oncall` and hands over `Standing`s).
Names are escaped; people are mentions (an ephemeral mention notifies nobody); times use Slack's
date formatting, so each reader sees their own zone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from blocks.kit import context, escape, plain, section, text_input

ADD_OVERRIDE = "oncall_add_override"
OVERRIDE_CALLBACK = "oncall_override_submit"
MAX_SCHEDULES_SHOWN = 20
MAX_SHIFTS_SHOWN = 10
USAGE = (
    "`/pulser oncall` — every schedule · `/pulser oncall <schedule>` — one, with its next shifts · "
    "`/pulser oncall override <schedule> <person> <start> <end>` — person: a member ID (U…) or @me; "
    "e.g. `U012ABCDEF now +4h` or `@me 2026-12-08 09:00 2026-12-08 17:00` (in the schedule's zone; admins)"
)


@dataclass(frozen=True)
class ShiftLine:
    user: str
    start: datetime
    end: datetime
    source: str  # "layer 1", "override"


@dataclass(frozen=True)
class ScheduleStanding:
    id: int
    name: str
    time_zone: str
    now: Sequence[str]
    until: datetime | None
    next: Sequence[str]
    calendar_errors: Sequence[str] = ()
    layers: Sequence[str] = ()  # one-line descriptions, bottom first
    shifts: Sequence[ShiftLine] = field(default_factory=tuple)


def when(at: datetime) -> str:
    utc = at.astimezone(timezone.utc)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} at {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


def people(users: Sequence[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users) if users else "_nobody_"


def standing_line(s: ScheduleStanding) -> str:
    """One schedule in one line: who now, until when, who next (and a calendar that fails)."""
    return _line(s)


def _line(s: ScheduleStanding) -> str:
    text = f"*{escape(s.name)}* — now {people(s.now)}"
    if s.until is not None:
        text += f" until {when(s.until)}, then {people(s.next)}"
    else:
        text += " (no change in the next 60 days)"
    for error in s.calendar_errors:
        text += f"\n:warning: an imported calendar could not be read: {escape(error)} (its last good copy is used)"
    return text


def _button(schedule_id: int) -> dict:
    return {"type": "button", "action_id": ADD_OVERRIDE, "text": plain("Add override"), "value": str(schedule_id)}


def oncall_list(standings: Sequence[ScheduleStanding]) -> dict:
    if not standings:
        text = "No on-call schedules yet. Add one with `POST /api/schedules` (see the docs' on-call page)."
        return {"response_type": "ephemeral", "text": text, "blocks": [section(text), context(USAGE)]}
    blocks: list[dict] = [section(f":pager: *On call* — {len(standings)} schedule{'s' if len(standings) != 1 else ''}")]
    for s in standings[:MAX_SCHEDULES_SHOWN]:
        blocks.append(section(_line(s), block_id=f"schedule_{s.id}", accessory=_button(s.id)))
    if len(standings) > MAX_SCHEDULES_SHOWN:
        blocks.append(context(f"…and {len(standings) - MAX_SCHEDULES_SHOWN} more: `/pulser oncall <schedule>` shows one."))
    blocks.append(context(USAGE))
    fallback = "On call: " + "; ".join(f"{s.name}: {', '.join(s.now) or 'nobody'}" for s in standings[:MAX_SCHEDULES_SHOWN])
    return {"response_type": "ephemeral", "text": fallback, "blocks": blocks}


def oncall_detail(s: ScheduleStanding, notice: str | None = None) -> dict:
    blocks: list[dict] = []
    if notice:
        blocks.append(section(notice))
    blocks.append(section(_line(s), block_id=f"schedule_{s.id}"))
    if s.shifts:
        lines = [
            f"• {when(x.start)} → {when(x.end)}  {people([x.user])}  _{escape(x.source)}_" for x in s.shifts[:MAX_SHIFTS_SHOWN]
        ]
        blocks.append(section("*Next shifts*\n" + "\n".join(lines)))
    if s.layers:
        blocks.append(context(f"Zone {escape(s.time_zone)} · layers, bottom first: " + " · ".join(escape(x) for x in s.layers)))
    blocks.append({"type": "actions", "block_id": "oncall_actions", "elements": [_button(s.id)]})
    text = f"{s.name}: on call now {', '.join(s.now) or 'nobody'}"
    return {"response_type": "ephemeral", "text": notice or text, "blocks": blocks}


def oncall_error(text: str) -> dict:
    return {"response_type": "ephemeral", "text": text, "blocks": [section(f":warning: {text}"), context(USAGE)]}


def override_modal(*, schedule_id: int, schedule_name: str, time_zone: str, channel_id: str | None) -> dict:
    return {
        "type": "modal",
        "callback_id": OVERRIDE_CALLBACK,
        "private_metadata": json.dumps({"schedule_id": schedule_id, "channel_id": channel_id}),
        "title": plain("Add override"),
        "submit": plain("Add"),
        "close": plain("Cancel"),
        "blocks": [
            section(f"*{escape(schedule_name)}* — times are in {escape(time_zone)}"),
            {"type": "input", "block_id": "user", "label": plain("Who is on call instead"),
             "element": {"type": "users_select", "action_id": "user"}},
            text_input("start", "From", initial="now", hint="now, +1h, or 2026-12-08 09:00"),
            text_input("end", "Until", placeholder="+4h or 2026-12-08 17:00", hint="+4h counts from the start"),
        ],
    }


def submitted_override(values: dict[str, Any]) -> dict[str, Any]:
    """The modal's values as the API's override body."""
    def get(block: str, key: str) -> Any:
        return ((values.get(block) or {}).get(block) or {}).get(key)

    return {"user": get("user", "selected_user"), "start": get("start", "value") or "", "end": get("end", "value") or ""}
