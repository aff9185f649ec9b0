"""Slack messages for incidents (alert groups): the channel message, its thread replies, escalations.

One function renders an incident's message from its whole state (count, last seen, who acked,
snoozed, investigates or resolved it), so every chat.update re-renders the same layout and no click
can leave it half-changed — like Grafana OnCall's alert-group message.

Pure functions over an `IncidentView`; the caller decides what the state is and which mention a
route wants. Every piece of text that came from an alert source goes through `escape` before it
lands in mrkdwn, so an alert titled `<!channel>` is shown, never obeyed, and everything is cut to
Slack's limits here because one over-long field makes Slack reject the whole message.
"""

from __future__ import annotations

import json

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Sequence

from blocks.kit import coloured_message, count_noun, escape, mrkdwn as _mrkdwn, plain as _plain

# --- ids: Bolt routes on these, the handlers read them back ------------------------------------------

ACK = "incident_ack"
SNOOZE = "incident_snooze"
RESOLVE = "incident_resolve"
INVESTIGATE = "incident_investigate"
RUNBOOK = "incident_runbook"
SOURCE_LINK = "incident_source_link"
ROLLBACK = "incident_rollback"
OPEN = "incident_open"  # the detail modal: timeline, labels, runbook, notes
# Pause monitoring on a heartbeat incident. The id (and its value, the app's id) is the one heartbeat
# alerts had before they were incidents, so the button on messages posted back then still works.
PAUSE_MONITORING = "heartbeat_alert_pause"

SNOOZE_CHOICES: tuple[tuple[int, str], ...] = ((30, "30 min"), (60, "1 hour"), (240, "4 hours"), (1440, "24 hours"))
SNOOZE_VALUE_PREFIX = "snooze:"

# The actions block carries the incident id because a static_select has no `value` of its own.
ACTIONS_BLOCK_PREFIX = "incident_actions:"

SEVERITY_EMOJI = {
    "info": ":information_source:",
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":large_orange_circle:",
    "critical": ":red_circle:",
}
SEVERITY_COLOR = {
    "info": "#8d99ae",
    "low": "#439fe0",
    "medium": "#ecb22e",
    "high": "#f2711c",
    "critical": "#e01e5a",
}
RESOLVED_COLOR = "#2eb67d"
UNKNOWN_SEVERITY_EMOJI = ":grey_question:"
UNKNOWN_SEVERITY_COLOR = "#8d99ae"

SOURCE_NAMES = {"sentry": "Sentry", "alertmanager": "Alertmanager", "github": "GitHub", "generic": "Webhook",
                "heartbeat": "Heartbeat"}

# --- Slack's limits (a message over any of them is rejected whole) ----------------------------------

HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
CONFIRM_TEXT_MAX = 300
MAX_MESSAGE_BLOCKS = 50

DESCRIPTION_SHOWN = 500
THREAD_DESCRIPTION_SHOWN = 2500
OCCURRENCES_SHOWN = 10
LABELS_SHOWN = 30
NOTE_SHOWN = 2800
TITLE_IN_TEXT = 150

_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]+$")
_SPECIAL_MENTIONS = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}


@dataclass(frozen=True)
class RollbackOffer:
    """A deploy that can be undone: roll `app` back to release `version` (id `release_id`)."""

    app: str
    release_id: str
    version: int


@dataclass(frozen=True)
class PauseOffer:
    """A heartbeat incident's app, which an admin may stop watching from the message."""

    app_id: int
    app_name: str


@dataclass(frozen=True)
class IncidentView:
    """One incident as a Slack message shows it; texts are raw (escaped here), user fields are IDs."""

    incident_id: int
    title: str
    description: str
    source: str  # sentry | alertmanager | github | generic | heroku | heartbeat
    service: str  # may be ""
    env: str  # may be ""
    severity: str  # effective severity
    status: str  # firing | resolved
    count: int
    first_seen: datetime
    last_seen: datetime
    link: str | None = None
    runbook_url: str | None = None
    mention: str | None = None  # already Slack-formatted: "<!here>", "<@U1>", "<!subteam^S1>"
    acked_by: str | None = None
    acked_at: datetime | None = None
    snoozed_by: str | None = None
    snoozed_until: datetime | None = None
    investigator: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolve_reason: str | None = None  # source | user | auto_close | expired
    spiked: bool = False
    reopened_count: int = 0
    escalation_level: int = 0
    suppressed_by: str | None = None  # never rendered: a suppressed incident is not posted at all
    now: datetime | None = None
    rollback: RollbackOffer | None = None  # Heroku deploys: offer a Rollback button (admins only)
    action_note: str | None = None  # Pulser's own words on an action's outcome ("Rolled back to v41 by <@U1>")
    pause: PauseOffer | None = None  # a heartbeat incident: offer Pause monitoring (admins only) while firing
    # A group_by incident's alerts (title, service, env, severity, status, count), the shown ones,
    # how many there are and how many fire; empty for an incident of one problem.
    members: tuple[dict, ...] = ()
    members_total: int = 0
    members_firing: int = 0


# --- text helpers ------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when something was cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip_escaped(text: str, shown: int, limit: int = SECTION_TEXT_MAX) -> str:
    """Escaped mrkdwn of at most `shown` source characters and `limit` output characters.

    Escaping can grow text fivefold (`<` → `&lt;`), so the output is cut on whole entities too.
    """
    out = escape(clip(text, shown))
    if len(out) <= limit:
        return out
    pieces, size = [], 0
    for char in text.strip():
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + "…"


def format_mention(target: str | None) -> str | None:
    """A route's mention setting as Slack mrkdwn: "@here", a user ID or a user-group ID.

    Anything already formatted passes through; anything unrecognised is shown escaped, never obeyed.
    """
    if target is None or not target.strip():
        return None
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):
        return target
    if target.lower() in _SPECIAL_MENTIONS:
        return _SPECIAL_MENTIONS[target.lower()]
    if _USER_ID.match(target):
        return f"<@{target}>"
    if _GROUP_ID.match(target):
        return f"<!subteam^{target}>"
    return escape(target)


def slack_date(moment: datetime) -> str:
    """A date token each reader sees in their own time zone, with a UTC ISO fallback."""
    moment = _utc(moment)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{iso}>"


# Actors that are not Slack users: what the audit log and the incident columns call them.
ACTOR_NAMES = {"api": "the API", "system": "Pulser"}


def user(user_id: str) -> str:
    """A Slack user ID (from an action payload) as a mention; an already formatted one passes;
    `api` (a change made through the HTTP API) and `system` are named, not mentioned."""
    user_id = user_id.strip()
    if user_id in ACTOR_NAMES:
        return ACTOR_NAMES[user_id]
    if user_id.startswith("<@") and user_id.endswith(">"):
        return user_id
    return f"<@{escape(user_id)}>" if user_id else "someone"


def severity_label(severity: str) -> str:
    return f"[{severity.upper()}]"


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source.capitalize() or "source")


def incident_id_from_block(block_id: str) -> int | None:
    """The incident an action belongs to, from its actions block (what a Snooze select needs)."""
    if not block_id.startswith(ACTIONS_BLOCK_PREFIX):
        return None
    rest = block_id[len(ACTIONS_BLOCK_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def snooze_minutes(option_value: str) -> int | None:
    """Minutes from a Snooze option value ("snooze:60"); None for anything not offered."""
    if not option_value.startswith(SNOOZE_VALUE_PREFIX):
        return None
    rest = option_value[len(SNOOZE_VALUE_PREFIX) :]
    offered = {minutes for minutes, _ in SNOOZE_CHOICES}
    return int(rest) if rest.isdigit() and int(rest) in offered else None


# --- the incident message ----------------------------------------------------------------------------


def incident_message(view: IncidentView) -> dict:
    """chat.postMessage / chat.update kwargs: fallback text (what notifications show), the title
    (and mention) as blocks, and a coloured attachment with description, facts, notes and buttons."""
    headline: list[dict] = []
    if view.mention:  # in a block, so it notifies: with blocks, `text` is only the fallback
        headline.append({"type": "section", "block_id": "incident_mention", "text": _mrkdwn(view.mention)})
    headline.append({"type": "header", "block_id": "incident_title", "text": _plain(_header_text(view))})
    blocks: list[dict] = []
    if view.description.strip():
        text = clip_escaped(view.description, DESCRIPTION_SHOWN)
        blocks.append({"type": "section", "block_id": "incident_description", "text": _mrkdwn(text)})
    blocks.append({"type": "section", "block_id": "incident_facts", "fields": _facts(view)})
    if view.members:
        blocks.append({"type": "section", "block_id": "incident_members", "text": _mrkdwn(_members_text(view))})
    notes = _state_notes(view)
    if notes:
        blocks.append({"type": "context", "block_id": "incident_state", "elements": [_mrkdwn(n) for n in notes]})
    actions = _actions(view)
    if actions:
        blocks.append({"type": "actions", "block_id": _actions_block_id(view), "elements": actions})
    return coloured_message(_fallback_text(view), headline, blocks, _colour(view))


def _members_text(view: IncidentView) -> str:
    """The alerts of a group_by incident, firing ones first: the incident resolves when all have."""
    lines = [f"*Alerts in this group:* {view.members_firing:,} of {view.members_total:,} firing"]
    for member in view.members:
        where = clip_escaped(member["service"], 60) if member["service"] else ""
        if member["env"]:
            where = f"{where} ({clip_escaped(member['env'], 30)})" if where else f"({clip_escaped(member['env'], 30)})"
        mark = ":white_check_mark: resolved" if member["status"] == "resolved" else f"{SEVERITY_EMOJI.get(member['severity'], UNKNOWN_SEVERITY_EMOJI)} firing"
        times = f" ×{member['count']:,}" if member["count"] > 1 else ""
        lines.append(f"{mark} · {clip_escaped(member['title'], 90)}{' — ' + where if where else ''}{times}")
    if view.members_total > len(view.members):
        lines.append(f"… and {view.members_total - len(view.members):,} more")
    return "\n".join(lines)


def _is_resolved(view: IncidentView) -> bool:
    return view.status == "resolved"


def _title(view: IncidentView) -> str:
    return view.title.strip() or "(untitled alert)"


def _header_text(view: IncidentView) -> str:
    label = severity_label(view.severity)
    if _is_resolved(view):
        prefix = f":white_check_mark: Resolved: {label}"
    else:
        prefix = f"{SEVERITY_EMOJI.get(view.severity, UNKNOWN_SEVERITY_EMOJI)} {label}"
    # Header blocks are plain_text: nothing in them is parsed, so no escaping.
    return clip(f"{prefix} {_title(view)}", HEADER_MAX)


def _fallback_text(view: IncidentView) -> str:
    label = severity_label(view.severity)
    if _is_resolved(view):
        text = f":white_check_mark: Resolved: {label} "
    else:
        text = f"{SEVERITY_EMOJI.get(view.severity, UNKNOWN_SEVERITY_EMOJI)} {label} "
    text += clip_escaped(_title(view), TITLE_IN_TEXT)
    where = clip_escaped(view.service, 80) if view.service.strip() else ""
    if view.env.strip():
        env = clip_escaped(view.env, 40)
        where = f"{where} ({env})" if where else f"({env})"
    if where:
        text += f" — {where}"
    return f"{view.mention} {text}" if view.mention else text


def _colour(view: IncidentView) -> str:
    if _is_resolved(view):
        return RESOLVED_COLOR
    return SEVERITY_COLOR.get(view.severity, UNKNOWN_SEVERITY_COLOR)


def _facts(view: IncidentView) -> list[dict]:
    facts = []
    if view.service.strip():
        facts.append(("Service", clip_escaped(view.service, 200, FIELD_TEXT_MAX - 20)))
    if view.env.strip():
        facts.append(("Env", clip_escaped(view.env, 200, FIELD_TEXT_MAX - 20)))
    facts.append(("Source", escape(source_name(view.source))))
    facts.append(("Count", f"×{view.count:,}"))
    facts.append(("First seen", slack_date(view.first_seen)))
    facts.append(("Last seen", slack_date(view.last_seen)))
    return [_mrkdwn(f"*{name}*\n{value}") for name, value in facts]


def _state_notes(view: IncidentView) -> list[str]:
    notes = []
    if _is_resolved(view):
        notes.append(_resolution_note(view))
    if view.acked_by:
        when = f" at {slack_date(view.acked_at)}" if view.acked_at else ""
        notes.append(f":eyes: Acked by {user(view.acked_by)}{when}")
    if not _is_resolved(view) and (until := _snoozed_until(view)):
        by = f" by {user(view.snoozed_by)}" if view.snoozed_by else ""
        notes.append(f":zzz: Snoozed{by} until {slack_date(until)}")
    if view.investigator:
        notes.append(f":mag: Investigating: {user(view.investigator)}")
    if view.spiked:
        notes.append(":chart_with_upwards_trend: Severity raised: prod spike")
    if view.reopened_count > 0:
        notes.append(f":repeat: Reopened ×{view.reopened_count}")
    if view.escalation_level > 0:
        notes.append(f":rotating_light: Escalated ×{view.escalation_level}")
    if view.action_note:
        notes.append(clip(view.action_note, 500))
    return notes


def _resolution_note(view: IncidentView) -> str:
    when = f" at {slack_date(view.resolved_at)}" if view.resolved_at else ""
    if view.resolve_reason == "source":
        return f":white_check_mark: Resolved by the source{when}"
    if view.resolve_reason == "auto_close":
        return f":white_check_mark: Auto-closed after no repeats{when}"
    if view.resolve_reason == "expired":
        return f":white_check_mark: Closed: superseded by a new incident{when}"
    if view.resolved_by:
        return f":white_check_mark: Resolved by {user(view.resolved_by)}{when}"
    return f":white_check_mark: Resolved{when}"


def _snoozed_until(view: IncidentView) -> datetime | None:
    """The snooze's end while it is still ahead; a lapsed snooze is not worth a line."""
    if view.snoozed_until is None:
        return None
    now = _utc(view.now) if view.now else datetime.now(timezone.utc)
    return view.snoozed_until if _utc(view.snoozed_until) > now else None


def _actions_block_id(view: IncidentView) -> str:
    return f"{ACTIONS_BLOCK_PREFIX}{view.incident_id}"


def _actions(view: IncidentView) -> list[dict]:
    """Buttons while firing (Ack until acked, Investigate until someone does); Open (the detail
    modal) and links always."""
    value = str(view.incident_id)
    actions: list[dict] = []
    if not _is_resolved(view):
        if not view.acked_by:
            actions.append(_button(ACK, "Ack", value, style="primary"))
        actions.append(_snooze_select())
        resolve = _button(RESOLVE, "Resolve", value, style="danger")
        resolve["confirm"] = _resolve_confirm(view)
        actions.append(resolve)
        if not view.investigator:
            actions.append(_button(INVESTIGATE, "Investigate", value))
        if view.pause is not None:
            actions.append(_pause_button(view.pause))
    if view.rollback is not None:
        # Offered whatever the status: resolving a deploy notice does not make the deploy good.
        actions.append(_rollback_button(view.incident_id, view.rollback))
    actions.append(_button(OPEN, "Open", value))
    if runbook := _usable_url(view.runbook_url):
        actions.append(_button(RUNBOOK, ":book: Runbook", value, url=runbook))
    if link := _usable_url(view.link):
        name = SOURCE_NAMES.get(view.source)
        label = f"Open in {name}" if name and view.source != "generic" else "Open source link"
        actions.append(_button(SOURCE_LINK, label, value, url=link))
    return actions


def _button(action_id: str, label: str, value: str, *, style: str | None = None, url: str | None = None) -> dict:
    button: dict = {"type": "button", "action_id": action_id, "text": _plain(clip(label, BUTTON_TEXT_MAX)), "value": value}
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def rollback_value(incident_id: int, offer: RollbackOffer) -> str:
    return json.dumps({"incident_id": incident_id, "app": offer.app, "release_id": offer.release_id, "version": offer.version})


def parse_rollback_value(value: str) -> tuple[int, RollbackOffer] | None:
    """The incident and target a Rollback button carries; None when the value is not ours."""
    try:
        data = json.loads(value)
        return int(data["incident_id"]), RollbackOffer(str(data["app"]), str(data["release_id"]), int(data["version"]))
    except (ValueError, TypeError, KeyError):
        return None


def _rollback_button(incident_id: int, offer: RollbackOffer) -> dict:
    button = _button(ROLLBACK, f":rewind: Rollback to v{offer.version}", rollback_value(incident_id, offer), style="danger")
    app = clip_escaped(offer.app, 60, 200)
    button["confirm"] = {
        "title": _plain("Roll back this deploy?"),
        "text": _mrkdwn(
            f"Roll *{app}* back to *v{offer.version}*? Heroku creates a new release running v{offer.version}'s "
            "code and config; the current release stays in the history."
        ),
        "confirm": _plain(f"Roll back to v{offer.version}"),
        "deny": _plain("Cancel"),
        "style": "danger",
    }
    return button


def _pause_button(offer: PauseOffer) -> dict:
    button = _button(PAUSE_MONITORING, "Pause monitoring", str(offer.app_id))
    name = clip_escaped(offer.app_name, 60, 200)
    button["confirm"] = {
        "title": _plain("Pause monitoring?"),
        "text": _mrkdwn(f"No alerts for *{name}* until someone resumes it; this incident is resolved."),
        "confirm": _plain("Pause"),
        "deny": _plain("Cancel"),
    }
    return button


def _snooze_select() -> dict:
    return {
        "type": "static_select",
        "action_id": SNOOZE,
        "placeholder": _plain("Snooze…"),
        "options": [
            {"text": _plain(label), "value": f"{SNOOZE_VALUE_PREFIX}{minutes}"} for minutes, label in SNOOZE_CHOICES
        ],
    }


def _resolve_confirm(view: IncidentView) -> dict:
    tail = " will be marked resolved for everyone. If the source fires again, it comes back."
    title = clip_escaped(_title(view), 100, CONFIRM_TEXT_MAX - len(tail) - 2)
    return {
        "title": _plain("Resolve this incident?"),
        "text": _mrkdwn(f"*{title}*{tail}"),
        "confirm": _plain("Resolve"),
        "deny": _plain("Cancel"),
        "style": "danger",
    }


def _usable_url(url: str | None) -> str | None:
    """The URL when Slack will take it: a malformed or over-long one rejects the whole message."""
    if url and url.startswith(("https://", "http://")) and len(url) <= URL_MAX and not any(c.isspace() for c in url):
        return url
    return None


# --- thread replies and escalations ------------------------------------------------------------------


def investigation_thread(
    view: IncidentView,
    occurrences: Sequence[Mapping],
    investigator: str,
    labels: Mapping[str, str] | None = None,
    total: int | None = None,
) -> dict:
    """The thread reply Investigate posts: who, the full description, labels, the link and the last
    occurrences newest first — what the investigator would otherwise open three tabs for.
    `total` is how many occurrences exist when only the newest few are passed in."""
    who = user(investigator)
    title = clip_escaped(_title(view), TITLE_IN_TEXT)
    blocks: list[dict] = [
        {"type": "section", "block_id": "investigation_who", "text": _mrkdwn(f":mag: {who} is investigating *{title}*")}
    ]
    if view.description.strip():
        description = clip_escaped(view.description, THREAD_DESCRIPTION_SHOWN)
        blocks.append({"type": "section", "block_id": "investigation_description", "text": _mrkdwn(description)})
    # A label without a value (`env=` when the sender named no environment) tells nobody anything.
    filled = {k: v for k, v in (labels or {}).items() if str(v).strip()}
    if filled:
        blocks.append(
            {"type": "section", "block_id": "investigation_labels", "text": _mrkdwn(_labels_text(filled))}
        )
    if url := _usable_url(view.link):
        link = f"<{escape(url)}|Open in {escape(source_name(view.source))}>"
        blocks.append({"type": "section", "block_id": "investigation_link", "text": _mrkdwn(link)})
    if occurrences:
        blocks.append(
            {"type": "section", "block_id": "investigation_occurrences", "text": _mrkdwn(_occurrences_text(occurrences, total))}
        )
    return {"text": f"{who} is investigating: {title}", "blocks": blocks}


def _labels_text(labels: Mapping[str, str]) -> str:
    """`key=value` chips in key order, as many as fit one section, then "…and N more"."""
    items = sorted((str(k), str(v)) for k, v in labels.items())
    text, budget = "*Labels*", SECTION_TEXT_MAX - 30  # room for the "…and N more" tail
    for shown, (key, value) in enumerate(items):
        chip = f" `{clip_escaped(key, 40, 100)}={clip_escaped(value, 60, 150)}`"
        if shown == LABELS_SHOWN or len(text) + len(chip) > budget:
            return f"{text} …and {len(items) - shown} more"
        text += chip
    return text


def _occurrences_text(occurrences: Sequence[Mapping], total: int | None = None) -> str:
    newest_first = sorted(occurrences, key=lambda o: _utc(o["received_at"]), reverse=True)
    shown = min(len(newest_first), OCCURRENCES_SHOWN)
    lines = [f"*Last {count_noun(shown, 'occurrence')}*"]
    lines += [_occurrence_line(o) for o in newest_first[:OCCURRENCES_SHOWN]]
    earlier = max(total or 0, len(newest_first)) - shown
    if earlier > 0:
        lines.append(f"…and {earlier} earlier")
    return "\n".join(lines)


def _occurrence_line(occurrence: Mapping) -> str:
    """One line of at most ~260 characters, so ten of them fit a section."""
    status = str(occurrence.get("status") or "firing")
    mark = ":white_check_mark:" if status == "resolved" else ":small_red_triangle:"
    line = f"• {slack_date(occurrence['received_at'])} {mark} {clip_escaped(status, 12, 20)}"
    title = str(occurrence.get("title") or "").strip()
    if title:
        line += f" — {clip_escaped(title, 80, 100)}"
    description = " ".join(str(occurrence.get("description") or "").split())
    if description:
        line += f" — {clip_escaped(description, 50, 60)}"
    return line


def escalation_reply(view: IncidentView, target: str, level: int, levels: int, after_minutes: int) -> dict:
    """The thread reply when an escalation fires: who is paged now and why."""
    who = format_mention(target) or "on-call"
    text = f":rotating_light: {who} — not acknowledged after {after_minutes} min (escalation {level}/{levels})"
    return {"text": text}


def escalation_post(view: IncidentView, target: str, level: int, permalink: str | None) -> dict:
    """A fresh channel post so an escalation is not buried in a busy channel, with the same buttons
    (same action ids and values) so it can be acked right there. It is re-rendered whenever the
    incident changes: once acked or resolved it says so and offers only what the incident's own
    message offers then, never a stale "not acknowledged" with live buttons."""
    who = format_mention(target) or "on-call"
    title = clip_escaped(_title(view), TITLE_IN_TEXT)
    headline, fallback_state = _escalation_state(view)
    text = f"{who} :rotating_light: Escalation (level {level}): *{title}* {headline}"
    emoji = ":white_check_mark:" if _is_resolved(view) else SEVERITY_EMOJI.get(view.severity, UNKNOWN_SEVERITY_EMOJI)
    body = f"{text}\n{emoji} {severity_label(view.severity)} · ×{view.count:,} · first seen {slack_date(view.first_seen)}"
    if thread := _usable_url(permalink):
        body += f"\n<{escape(thread)}|View the incident thread>"
    blocks: list[dict] = [{"type": "section", "block_id": "escalation", "text": _mrkdwn(body)}]
    notes = _state_notes(view)
    if notes:
        blocks.append({"type": "context", "block_id": "incident_state", "elements": [_mrkdwn(n) for n in notes]})
    actions = _actions(view)
    if actions:
        blocks.append({"type": "actions", "block_id": _actions_block_id(view), "elements": actions})
    fallback = f"{who} :rotating_light: Escalation (level {level}): {title} {fallback_state}"
    return {"text": fallback, "blocks": blocks}


def _escalation_state(view: IncidentView) -> tuple[str, str]:
    """What an escalation post says of the incident now (mrkdwn, plain)."""
    if _is_resolved(view):
        return "is resolved", "is resolved"
    if view.acked_by:
        return f"was acknowledged by {user(view.acked_by)}", "was acknowledged"
    if _snoozed_until(view):
        return "is snoozed", "is snoozed"
    return "has not been acknowledged", "has not been acknowledged"


def severity_lowered_reply(before: str, after: str, *, source: str) -> dict:
    """The thread reply when an incident's severity goes down (a Sentry metric alert going from
    critical to warning): the message shows only the new label, so this says what it was."""
    why = f"the latest alert from {escape(source_name(source))}"
    return {"text": f":arrow_down: Severity lowered {severity_label(before)} → {severity_label(after)}: {why}"}


def note_reply(author: str, text: str) -> dict:
    """A note someone added to the incident, as a reply in its thread; the note is user text,
    so it is escaped (a note saying <!channel> pings nobody)."""
    body = f":memo: Note from {user(author)}:\n{clip_escaped(text, NOTE_SHOWN)}"
    return {"text": body, "blocks": [{"type": "section", "block_id": "incident_note", "text": _mrkdwn(body)}]}


def status_reply(text: str) -> dict:
    """A plain thread reply ("Resolved by the source", "Snooze ended…"); the caller's text is
    Pulser's own wording, so it is not escaped and may carry mentions."""
    return {"text": text}


# --- small builders ----------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC (the database's timestamptz are), never as local time.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
