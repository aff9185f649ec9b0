"""Block Kit for the incident detail modal (Open) and the Add note modal it pushes.

The detail is one modal: title and state, the facts, the labels, the runbook, the timeline
(occurrences collapsed into runs, state changes, escalations, thread replies, who did what) and
the notes, then Add note. Slack allows a modal 100 blocks and a section 3,000 characters: the
timeline is cut newest-kept with "…N earlier entries" said, never a rejected view.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from blocks.incident_inbox import STATE_WORDS
from blocks.incidents import (
    SEVERITY_EMOJI,
    UNKNOWN_SEVERITY_EMOJI,
    _labels_text,
    _usable_url,
    clip,
    clip_escaped,
    format_mention,
    severity_label,
    slack_date,
    source_name,
    user,
)
from blocks.kit import context, count_noun, escape, plain, section, text_input

DETAIL_CALLBACK = "incident_detail"
NOTE_CALLBACK = "incident_note"
ADD_NOTE = "incident_add_note"
NOTE_INPUT = "note_text"
NOTE_MAX = 3000
TIMELINE_LINES = 60
MODAL_TITLE_MAX = 24
LINE_MAX = 400

KIND_EMOJI = {
    "opened": ":small_red_triangle:",
    "repeats": ":repeat:",
    "resolved_by_source": ":white_check_mark:",
    "reopened": ":arrows_counterclockwise:",
    "posted": ":speech_balloon:",
    "escalation_post": ":rotating_light:",
    "ack": ":eyes:",
    "snooze": ":zzz:",
    "resolve": ":white_check_mark:",
    "investigate": ":mag:",
    "assign": ":bust_in_silhouette:",
    "escalate": ":rotating_light:",
    "auto_close": ":hourglass:",
    "expired": ":hourglass:",
    "note": ":memo:",
    "thread_reply": ":thread:",
}


def detail_modal(detail: Any, *, state: str, assignee: str | None) -> dict:
    """`detail` is an alerts.incident_detail.IncidentDetail: the incident row, its timeline
    entries (at, kind, text, actor, details), runbook URLs, notes and occurrence count; `state`
    and `assignee` as that module decides them."""
    incident = detail.incident
    blocks: list[dict] = [
        {"type": "header", "block_id": "detail_title", "text": plain(clip(_headline(incident), 150))},
        section(_facts(detail, state, assignee), "detail_facts"),
    ]
    if incident["description"].strip():
        blocks.append(section(clip_escaped(incident["description"], 1500), "detail_description"))
    labels = {k: v for k, v in (incident["labels"] or {}).items() if str(v).strip()}
    if labels:
        blocks.append(section(_labels_text(labels), "detail_labels"))
    links = _links(detail)
    if links:
        blocks.append(section(" · ".join(links), "detail_links"))
    blocks.append({"type": "divider"})
    blocks += timeline_blocks(detail.timeline)
    blocks.append({
        "type": "actions",
        "block_id": "detail_actions",
        "elements": [{"type": "button", "action_id": ADD_NOTE, "text": plain(":memo: Add note"), "value": str(incident["id"]), "style": "primary"}],
    })
    blocks.append(context(f"Incident #{incident['id']} · {count_noun(detail.occurrence_total, 'occurrence')} kept of ×{incident['count']:,}"))
    return {
        "type": "modal",
        "callback_id": DETAIL_CALLBACK,
        "title": plain(clip(f"Incident #{incident['id']}", MODAL_TITLE_MAX)),
        "close": plain("Close"),
        "private_metadata": json.dumps({"incident_id": incident["id"]}),
        "blocks": blocks[:100],
    }


def timeline_blocks(entries: list[Any]) -> list[dict]:
    """The timeline as sections of whole lines (each under 3,000 characters); the oldest lines
    go first when there are more than TIMELINE_LINES."""
    shown = entries[-TIMELINE_LINES:]
    lines = [timeline_line(e) for e in shown]
    if len(entries) > len(shown):
        lines.insert(0, f"…{count_noun(len(entries) - len(shown), 'earlier entry', 'earlier entries')}")
    blocks, chunk = [], "*Timeline*"
    for line in lines:
        if len(chunk) + len(line) + 1 > 2900:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    blocks.append(section(chunk, "detail_timeline"))
    return blocks


def timeline_line(entry: Any) -> str:
    emoji = KIND_EMOJI.get(entry.kind, ":small_blue_diamond:")
    who = ""
    if entry.actor and entry.actor not in ("source", "system"):
        who = f" — {user(entry.actor)}"
    text = entry.text
    if entry.kind == "assign" and entry.details.get("assignee"):
        text = f"Assigned to {user(str(entry.details['assignee']))}"
    if entry.kind == "escalate" and entry.details.get("to"):
        text = f"Escalated (level {entry.details.get('level', '?')}) to {_target(str(entry.details['to']))}"
    if entry.kind in ("posted", "escalation_post") and entry.details.get("channel"):
        channel = str(entry.details["channel"])
        text = text.replace(channel, f"<#{escape(channel)}>") if channel.startswith(("C", "G")) else text
        return f"{emoji} {slack_date(entry.at)} {text}{who}"
    if entry.kind == "repeats":
        last = entry.details.get("last_at")
        tail = f", the last at {slack_date(datetime.fromisoformat(last))}" if last else ""
        return f"{emoji} {slack_date(entry.at)} {escape(text)}{tail}"
    if entry.kind in ("assign", "escalate"):
        return f"{emoji} {slack_date(entry.at)} {text}{who}"
    return f"{emoji} {slack_date(entry.at)} {clip_escaped(text, LINE_MAX, LINE_MAX * 5)}{who}"


def note_modal(incident_id: int, title: str, *, parent_view_id: str | None) -> dict:
    return {
        "type": "modal",
        "callback_id": NOTE_CALLBACK,
        "title": plain("Add a note"),
        "submit": plain("Add note"),
        "close": plain("Back"),
        "private_metadata": json.dumps({"incident_id": incident_id, "parent": parent_view_id}),
        "blocks": [
            section(f"*{clip_escaped(title or '(untitled alert)', 150, 600)}* · #{incident_id}"),
            text_input(NOTE_INPUT, "Note", multiline=True, max_length=NOTE_MAX,
                       hint="Shown in the incident's timeline and posted in its thread."),
        ],
    }


def notice_modal(title: str, text: str) -> dict:
    return {"type": "modal", "callback_id": "incident_notice", "title": plain(clip(title, MODAL_TITLE_MAX)),
            "close": plain("Close"), "blocks": [section(text)]}


def _headline(incident: dict) -> str:
    if incident["status"] == "resolved":
        prefix = ":white_check_mark:"
    else:
        prefix = SEVERITY_EMOJI.get(incident["severity"], UNKNOWN_SEVERITY_EMOJI)
    return f"{prefix} {severity_label(incident['severity'])} {incident['title'].strip() or '(untitled alert)'}"


def _facts(detail: Any, state: str, who: str | None) -> str:
    incident = detail.incident
    parts = [
        f"*State* {STATE_WORDS.get(state, state)}",
        f"*Count* ×{incident['count']:,}",
        f"*Source* {escape(source_name(incident['source']))}",
    ]
    if incident["service"].strip():
        parts.append(f"*Service* {clip_escaped(incident['service'], 80)}")
    if incident["env"].strip():
        parts.append(f"*Env* {clip_escaped(incident['env'], 40)}")
    parts.append(f"*Assignee* {user(who) if who else 'nobody yet'}")
    if incident["source_severity"] != incident["severity"]:
        parts.append(f"*Suggested severity* {severity_label(incident['severity'])} (the source said {severity_label(incident['source_severity'])})")
    parts.append(f"*First seen* {slack_date(incident['first_seen'])} · *Last seen* {slack_date(incident['last_seen'])}")
    return "\n".join(parts)


def _links(detail: Any) -> list[str]:
    links = []
    for url in detail.runbook_urls:
        if usable := _usable_url(url):
            links.append(f":book: <{escape(usable)}|Runbook>")
    if usable := _usable_url(detail.incident["link"]):
        links.append(f":link: <{escape(usable)}|Open in {escape(source_name(detail.incident['source']))}>")
    return links


def _target(target: str) -> str:
    return format_mention(target) or escape(target)


def note_error(text: str) -> str | None:
    """Why a note cannot be saved, or None."""
    if not text.strip():
        return "Write something: the note is empty."
    if len(text) > NOTE_MAX:
        return f"At most {NOTE_MAX:,} characters."
    return None

