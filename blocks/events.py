"""Slack messages for platform events (CI runs, deploys, error rates, scheduled tasks, manual notes)
and the `/pulser events` answers.

One function renders an event's message from its whole state — the headline event of its chain,
the chain's timeline, who acked or investigates — so every chat.update re-renders the same layout.
A deployment's started → completed/failed is one message updated in place, with its duration.

Pure functions over an `EventView`; text that came from a sender is escaped before it lands in
mrkdwn and cut to Slack's limits (one over-long field makes Slack reject the whole message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from blocks.incidents import (
    BUTTON_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_MAX,
    SEVERITY_EMOJI,
    TITLE_IN_TEXT,
    UNKNOWN_SEVERITY_EMOJI,
    clip,
    clip_escaped,
    escape,
    slack_date,
    user,
)

from blocks.kit import channel_ref, coloured_message, count_noun, mrkdwn as _mrkdwn, plain as _plain

# --- ids: Bolt routes on these, the handlers read the event id back from the value -------------------

ACK = "platform_event_ack"
INVESTIGATE = "platform_event_investigate"
LINK = "platform_event_link"
ACTIONS_BLOCK = "platform_event_actions"

EVENT_TYPES = ("ci", "deploy", "error_rate", "scheduled_task", "manual")
TYPE_NAMES = {
    "ci": "CI",
    "deploy": "Deploy",
    "error_rate": "Error rate",
    "scheduled_task": "Scheduled task",
    "manual": "Manual",
}
TYPE_EMOJI = {
    "ci": ":construction_worker:",
    "deploy": ":rocket:",
    "error_rate": ":chart_with_upwards_trend:",
    "scheduled_task": ":alarm_clock:",
    "manual": ":memo:",
}
STATUS_EMOJI = {
    "passed": ":white_check_mark:",
    "completed": ":white_check_mark:",
    "recovered": ":white_check_mark:",
    "started": ":hourglass_flowing_sand:",
    "failed": ":x:",
    "exceeded": ":red_circle:",
}
FAILED_COLOR = "#e01e5a"
GOOD_COLOR = "#2eb67d"
RUNNING_COLOR = "#439fe0"
NEUTRAL_COLOR = "#8d99ae"
GOOD_STATUSES = frozenset({"passed", "completed", "recovered"})

DETAILS_SHOWN = 20
FIELDS_PER_SECTION = 10  # Slack's limit for a section's fields
TIMELINE_SHOWN = 10


@dataclass(frozen=True)
class TimelineStep:
    status: str
    at: datetime


@dataclass(frozen=True)
class EventView:
    """One event message as Slack shows it; texts are raw (escaped here), user fields are IDs."""

    event_id: int  # the headline event: the buttons act on it
    event_type: str
    status: str
    title: str
    service: str
    env: str
    severity: str
    occurred_at: datetime
    failure: bool  # ci failed, deploy failed, error_rate exceeded, scheduled_task failed
    link: str | None = None
    actor: str | None = None  # the sender's name ("github-actions"), shown as text
    details: tuple[tuple[str, str], ...] = ()
    timeline: tuple[TimelineStep, ...] = ()  # a chain's events, oldest first (empty: a lone event)
    acked_by: str | None = None
    acked_at: datetime | None = None
    investigator: str | None = None


# --- the event message -------------------------------------------------------------------------------


def event_message(view: EventView) -> dict:
    """chat.postMessage / chat.update kwargs: fallback text, the title as a block, the rest in a
    coloured attachment."""
    headline = [{"type": "header", "block_id": "event_title", "text": _plain(_header_text(view))}]
    blocks: list[dict] = [{"type": "section", "block_id": "event_facts", "fields": _facts(view)}]
    if len(view.timeline) > 1:
        blocks.append({"type": "context", "block_id": "event_timeline", "elements": [_mrkdwn(timeline_text(view))]})
    for number, fields in enumerate(_detail_sections(view.details)):
        blocks.append({"type": "section", "block_id": f"event_details_{number}", "fields": fields})
    notes = _state_notes(view)
    if notes:
        blocks.append({"type": "context", "block_id": "event_state", "elements": [_mrkdwn(n) for n in notes]})
    actions = _actions(view)
    if actions:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": actions})
    return coloured_message(_fallback_text(view), headline, blocks, _colour(view))


def type_name(event_type: str) -> str:
    return TYPE_NAMES.get(event_type, event_type.replace("_", " ").capitalize() or "Event")


def status_text(status: str) -> str:
    """The status with its emoji; a manual event's free text is escaped."""
    emoji = STATUS_EMOJI.get(status)
    shown = clip_escaped(status, 40, 200) if status.strip() else "—"
    return f"{emoji} {shown}" if emoji else shown


def timeline_text(view: EventView) -> str:
    """`started 12:00 → completed 12:07 · took 7 min`; times in each reader's time zone."""
    steps = view.timeline[-TIMELINE_SHOWN:]
    text = " → ".join(f"{STATUS_EMOJI.get(s.status, '•')} {clip_escaped(s.status, 20, 60)} {slack_date(s.at)}" for s in steps)
    took = deploy_duration(view.timeline)
    if took is not None:
        text += f" · took {format_seconds(took)}"
    return f"*Timeline* {text}"


def deploy_duration(timeline: Sequence[TimelineStep]) -> float | None:
    """Seconds from the first `started` to the last completed/failed after it, when both exist."""
    started = next((s.at for s in timeline if s.status == "started"), None)
    if started is None:
        return None
    ends = [s.at for s in timeline if s.status in ("completed", "failed") and s.at >= started]
    return (max(ends) - started).total_seconds() if ends else None


def format_seconds(seconds: float) -> str:
    """42 s, 7 min, 1 h 5 min, 2 d 3 h."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def _title(view: EventView) -> str:
    return view.title.strip() or f"{type_name(view.event_type)} event"


def _header_text(view: EventView) -> str:
    emoji = TYPE_EMOJI.get(view.event_type, ":bell:")
    # Header blocks are plain_text: nothing in them is parsed, so no escaping.
    return clip(f"{emoji} {_title(view)}", HEADER_MAX)


def _fallback_text(view: EventView) -> str:
    text = f"{TYPE_EMOJI.get(view.event_type, ':bell:')} {clip_escaped(_title(view), TITLE_IN_TEXT)}"
    where = clip_escaped(view.service, 80) if view.service.strip() else ""
    if view.env.strip():
        env = clip_escaped(view.env, 40)
        where = f"{where} ({env})" if where else f"({env})"
    if where:
        text += f" — {where}"
    if view.status.strip():
        text += f" — {clip_escaped(view.status, 40)}"
    return text


def _colour(view: EventView) -> str:
    if view.failure:
        return FAILED_COLOR
    if view.status in GOOD_STATUSES:
        return GOOD_COLOR
    if view.status == "started":
        return RUNNING_COLOR
    return NEUTRAL_COLOR


def _facts(view: EventView) -> list[dict]:
    facts = [("Type", f"{TYPE_EMOJI.get(view.event_type, ':bell:')} {escape(type_name(view.event_type))}")]
    facts.append(("Status", status_text(view.status)))
    if view.service.strip():
        facts.append(("Service", clip_escaped(view.service, 200, FIELD_TEXT_MAX - 20)))
    if view.env.strip():
        facts.append(("Env", clip_escaped(view.env, 100, FIELD_TEXT_MAX - 20)))
    emoji = SEVERITY_EMOJI.get(view.severity, UNKNOWN_SEVERITY_EMOJI)
    facts.append(("Severity", f"{emoji} {escape(view.severity)}"))
    facts.append(("When", slack_date(view.occurred_at)))
    if view.actor and view.actor.strip():
        facts.append(("By", clip_escaped(view.actor, 100, 300)))
    return [_mrkdwn(f"*{name}*\n{value}") for name, value in facts]


def _detail_sections(details: Sequence[tuple[str, str]]) -> list[list[dict]]:
    shown = list(details)[:DETAILS_SHOWN]
    fields = [_mrkdwn(f"*{clip_escaped(k, 50, 200)}*\n{clip_escaped(v, 300, FIELD_TEXT_MAX - 250)}") for k, v in shown]
    sections = [fields[i : i + FIELDS_PER_SECTION] for i in range(0, len(fields), FIELDS_PER_SECTION)]
    if len(details) > DETAILS_SHOWN and sections:
        sections[-1][-1] = _mrkdwn(f"…and {count_noun(len(details) - DETAILS_SHOWN + 1, 'more detail')}")
    return sections


def _state_notes(view: EventView) -> list[str]:
    notes = []
    if view.acked_by:
        when = f" at {slack_date(view.acked_at)}" if view.acked_at else ""
        notes.append(f":eyes: Acked by {user(view.acked_by)}{when}")
    if view.investigator:
        notes.append(f":mag: Investigating: {user(view.investigator)}")
    return notes


def _actions(view: EventView) -> list[dict]:
    """Ack until acked and Investigate until someone does, on failures only; the link always."""
    value = str(view.event_id)
    actions: list[dict] = []
    if view.failure:
        if not view.acked_by:
            actions.append(_button(ACK, "Ack", value, style="primary"))
        if not view.investigator:
            actions.append(_button(INVESTIGATE, "Investigate", value))
    if link := usable_url(view.link):
        actions.append(_button(LINK, "Open link", value, url=link))
    return actions


def usable_url(url: str | None) -> str | None:
    """The URL when Slack will take it: a malformed or over-long one rejects the whole message."""
    if url and url.startswith(("https://", "http://")) and len(url) <= 3000 and not any(c.isspace() for c in url):
        return url
    return None


# --- /pulser events ----------------------------------------------------------------------------------

USAGE = "/pulser events route <type> <#channel|default>"


def routes_message(routes: Mapping[str, str], default_channel: str, *, notice: str | None = None) -> dict:
    """Where each event type goes: its own channel, or the default one."""
    lines = []
    for event_type in EVENT_TYPES:
        channel = routes.get(event_type)
        where = channel_ref(channel) if channel else f"{channel_ref(default_channel)} _(default)_"
        lines.append(f"{TYPE_EMOJI[event_type]} *{type_name(event_type)}* (`{event_type}`) → {where}")
    blocks: list[dict] = []
    if notice:
        blocks.append({"type": "section", "block_id": "events_notice", "text": _mrkdwn(notice)})
    blocks.append({"type": "section", "block_id": "events_routes", "text": _mrkdwn("*Event routes*\n" + "\n".join(lines))})
    blocks.append(
        {
            "type": "context",
            "block_id": "events_usage",
            "elements": [_mrkdwn(f"Change one with `{escape(USAGE)}` (admins). Senders POST events to `/events`.")],
        }
    )
    text = (notice + "\n" if notice else "") + "Event routes: " + ", ".join(
        f"{t} → {channel_ref(routes.get(t) or default_channel)}" for t in EVENT_TYPES
    )
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


def events_usage(problem: str | None = None) -> dict:
    lines = [
        "`/pulser events` — where each event type (ci, deploy, error_rate, scheduled_task, manual) is posted.",
        f"`{escape(USAGE)}` — send a type to a channel, or back to the default one (admins).",
    ]
    text = "\n".join(lines)
    if problem:
        text = f":warning: {escape(problem)}\n{text}"
    return {"response_type": "ephemeral", "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}


def events_refused(reason: str) -> dict:
    text = f":lock: {reason} Anyone can see the routes with `/pulser events`."
    return {"response_type": "ephemeral", "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}


def route_notice(event_type: str, channel: str | None, default_channel: str) -> str:
    where = channel_ref(channel) if channel else f"the default channel {channel_ref(default_channel)}"
    return f":white_check_mark: *{type_name(event_type)}* events now go to {where}."



# --- Block Kit atoms -----------------------------------------------------------------------------------


def _button(action_id: str, label: str, value: str, *, style: str | None = None, url: str | None = None) -> dict:
    button: dict = {"type": "button", "action_id": action_id, "text": _plain(clip(label, BUTTON_TEXT_MAX)), "value": value}
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


