"""An incident as the inbox, the detail modal and the API show it: its summary, and its timeline
put together from what the database already keeps.

Sources of the timeline (oldest first):
- occurrences (`alert_occurrences`): the first one opens the incident; consecutive repeats are
  collapsed into one entry with their count; a resolved one after firing is "resolved by the
  source", a firing one after that is "reopened";
- the audit log (target `incident:<id>`): who acked, snoozed, resolved, investigated, assigned,
  noted; escalations and auto-closes by Pulser;
- the incident's Slack messages (`incident_messages`): where it was posted, escalation posts;
- thread replies (`notifications.incident_id`): what was said in the thread and whether it went;
- notes (`incident_notes`);
- escalation policy steps (audit `incident.escalation_step`) and every page they sent beyond a
  Slack channel (`outbound_deliveries`): to whom, how, and whether it was delivered or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from storage import incident_queries, incidents

OCCURRENCES_SHOWN = 50
ACTION_KINDS = {
    "incident.ack": "ack",
    "incident.snooze": "snooze",
    "incident.resolve": "resolve",
    "incident.investigate": "investigate",
    "incident.assign": "assign",
    "incident.escalate": "escalate",
    "incident.auto_close": "auto_close",
    "incident.note": "note",
    "incident.escalation_step": "escalation_step",
}
PAGE_METHODS = {"slack_dm": "Slack DM", "sms": "SMS", "email": "e-mail"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str  # plain words, no mrkdwn: the modal escapes it, the API returns it as is
    actor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "kind": self.kind, "actor": self.actor, "text": self.text, "details": _jsonable(self.details)}


@dataclass(frozen=True)
class IncidentDetail:
    incident: dict
    timeline: list[TimelineEntry]
    occurrences: list[dict]  # newest first
    occurrence_total: int
    notes: list[dict]
    messages: list[dict]

    @property
    def runbook_urls(self) -> list[str]:
        return list(dict.fromkeys(m["runbook_url"] for m in self.messages if m["runbook_url"]))


def state(incident: dict, now: datetime) -> str:
    """One word for where the incident stands: firing, acknowledged, snoozed, resolved, held_back."""
    if incident["status"] == "resolved":
        return "resolved"
    if incident["suppressed_by"]:
        return "held_back"
    if incident["snoozed_until"] is not None and _utc(incident["snoozed_until"]) > now:
        return "snoozed"
    if incident["acked_by"]:
        return "acknowledged"
    return "firing"


def assignee(incident: dict) -> str | None:
    """Who has it: the investigator, else whoever acknowledged it."""
    return incident["investigator"] or incident["acked_by"]


def summary_json(incident: dict, now: datetime) -> dict[str, Any]:
    return {
        "id": incident["id"],
        "title": incident["title"],
        "source": incident["source"],
        "service": incident["service"],
        "env": incident["env"],
        "severity": incident["severity"],
        "source_severity": incident["source_severity"],
        "status": incident["status"],
        "state": state(incident, now),
        "count": incident["count"],
        "first_seen": iso(incident["first_seen"]),
        "last_seen": iso(incident["last_seen"]),
        "age_seconds": max(0, int((now - _utc(incident["first_seen"])).total_seconds())),
        "assignee": assignee(incident),
        "acked_by": incident["acked_by"],
        "acked_at": iso(incident["acked_at"]),
        "snoozed_by": incident["snoozed_by"],
        "snoozed_until": iso(incident["snoozed_until"]),
        "investigator": incident["investigator"],
        "resolved_by": incident["resolved_by"],
        "resolved_at": iso(incident["resolved_at"]),
        "resolve_reason": incident["resolve_reason"],
        "reopened_count": incident["reopened_count"],
        "suppressed_by": incident["suppressed_by"],
        "link": incident["link"],
        "labels": dict(incident["labels"] or {}),
        "url": f"/api/incidents/{incident['id']}",
    }


def occurrence_json(row: dict) -> dict[str, Any]:
    alert = dict(row["alert"] or {})
    return {
        "id": row["id"],
        "incident_id": row["incident_id"],
        "received_at": iso(row["received_at"]),
        "status": row["status"],
        **{key: alert.get(key) for key in (
            "source", "source_event_id", "service", "env", "severity", "fingerprint", "title", "description",
            "occurred_at", "link",
        )},  # fmt: skip
        "tags": dict(alert.get("tags") or {}),
    }


def note_json(note: dict) -> dict[str, Any]:
    return {
        "id": note["id"],
        "incident_id": note["incident_id"],
        "author": note["author"],
        "text": note["text"],
        "created_at": iso(note["created_at"]),
    }


def detail_json(detail: IncidentDetail, now: datetime) -> dict[str, Any]:
    return {
        **summary_json(detail.incident, now),
        "description": detail.incident["description"],
        "runbook_urls": detail.runbook_urls,
        "messages": [
            {
                "channel": m["slack_channel"] or m["channel"],
                "ts": m["slack_ts"],
                "escalation_of": m["escalation_of"],
                "escalation_level": m["escalation_level"],
            }
            for m in detail.messages
        ],
        "timeline": [e.as_json() for e in detail.timeline],
        "occurrences": [occurrence_json(o) for o in detail.occurrences],
        "occurrence_total": detail.occurrence_total,
        "notes": [note_json(n) for n in detail.notes],
    }


async def load_detail(pool: asyncpg.Pool, incident_id: int) -> IncidentDetail | None:
    """The incident and everything its timeline is made of, from one connection."""
    async with pool.acquire() as conn:
        incident = await incidents.get_incident(conn, incident_id)
        if incident is None:
            return None
        occurrences = await incident_queries.occurrences_of(conn, incident_id)
        total = await conn.fetchval("SELECT count(*) FROM alert_occurrences WHERE incident_id = $1", incident_id)
        rows = await incident_queries.timeline_rows(conn, incident_id)
    return IncidentDetail(
        incident=incident,
        timeline=build_timeline(incident, occurrences, rows),
        occurrences=list(reversed(occurrences))[:OCCURRENCES_SHOWN],
        occurrence_total=total,
        notes=rows["notes"],
        messages=rows["messages"],
    )


def build_timeline(incident: dict, occurrences: list[dict], rows: dict[str, list[dict]]) -> list[TimelineEntry]:
    entries = _occurrence_entries(incident, occurrences)
    entries += _message_entries(rows["messages"])
    entries += _action_entries(rows["actions"], {n["id"]: n for n in rows["notes"]})
    entries += _reply_entries(rows["replies"])
    entries += _page_entries(rows.get("pages", []))
    if incident["status"] == "resolved" and incident["resolve_reason"] == "expired" and incident["resolved_at"]:
        entries.append(TimelineEntry(incident["resolved_at"], "expired", "Closed: superseded by a new incident", "system"))
    order = {"opened": 0, "repeats": 1, "posted": 2}
    return sorted(entries, key=lambda e: (_utc(e.at), order.get(e.kind, 3)))


def _occurrence_entries(incident: dict, occurrences: list[dict]) -> list[TimelineEntry]:
    """First, then runs of repeats collapsed, source resolutions and reopenings between them."""
    entries: list[TimelineEntry] = []
    if not occurrences:
        return [TimelineEntry(incident["first_seen"], "opened", f"First occurrence: {incident['title']}", "source")]
    first = occurrences[0]
    if first["status"] == "firing":
        entries.append(TimelineEntry(
            first["received_at"], "opened", f"First occurrence: {_title(first, incident)}", "source",
            {"occurrence_id": first["id"], "severity": (first["alert"] or {}).get("severity")},
        ))
    run: list[dict] = []
    previous = first["status"]

    def close_run() -> None:
        if run:
            count = len(run)
            entries.append(TimelineEntry(
                run[0]["received_at"], "repeats",
                f"{count} more occurrence{'s' if count != 1 else ''} grouped into this incident",
                "source",
                {"count": count, "first_at": iso(run[0]["received_at"]), "last_at": iso(run[-1]["received_at"])},
            ))
            run.clear()

    for occurrence in occurrences[1:] if first["status"] == "firing" else occurrences:
        if occurrence["status"] == "resolved":
            close_run()
            entries.append(TimelineEntry(occurrence["received_at"], "resolved_by_source", "Resolved by the source", "source",
                                         {"occurrence_id": occurrence["id"]}))
        elif previous == "resolved":
            close_run()
            entries.append(TimelineEntry(occurrence["received_at"], "reopened", "Fired again: reopened", "source",
                                         {"occurrence_id": occurrence["id"]}))
        else:
            run.append(occurrence)
        previous = occurrence["status"]
    close_run()
    return entries


def _message_entries(messages: list[dict]) -> list[TimelineEntry]:
    entries = []
    for m in messages:
        if not m["slack_ts"]:
            continue
        at = _slack_time(m["slack_ts"]) or m["created_at"]
        channel = m["slack_channel"] or m["channel"]
        if m["escalation_of"] is None:
            entries.append(TimelineEntry(at, "posted", f"Posted to {channel}", "system", {"channel": channel, "ts": m["slack_ts"]}))
        else:
            entries.append(TimelineEntry(
                at, "escalation_post", f"Escalation post (level {m['escalation_level']}) in {channel}", "system",
                {"channel": channel, "ts": m["slack_ts"], "level": m["escalation_level"], "to": m["escalate_to"]},
            ))
    return entries


def _action_entries(actions: list[dict], notes: dict[int, dict]) -> list[TimelineEntry]:
    entries = []
    for a in actions:
        details = dict(a["details"] or {})
        if details.get("outcome") == "unchanged":
            continue  # a click that changed nothing (already acked) is not part of the story
        kind = ACTION_KINDS.get(a["action"], "action")
        text = _action_text(kind, a["action"], details, notes)
        details.pop("outcome", None)
        entries.append(TimelineEntry(a["at"], kind, text, a["actor"], details))
    return entries


def _action_text(kind: str, action: str, details: dict, notes: dict[int, dict]) -> str:
    if kind == "ack":
        return "Acknowledged"
    if kind == "snooze":
        return f"Snoozed until {details.get('until', '?')}"
    if kind == "resolve":
        return "Resolved"
    if kind == "investigate":
        return "Started investigating"
    if kind == "assign":
        return f"Assigned to {details.get('assignee', '?')}"
    if kind == "escalate":
        return f"Escalated to {details.get('to', '?')} (level {details.get('level', '?')})"
    if kind == "auto_close":
        return f"Auto-closed after {details.get('quiet_minutes', '?')} quiet minutes"
    if kind == "escalation_step":
        return f"{details.get('policy', '?')}, step {details.get('step', '?')}: {details.get('what', '?')} — {details.get('outcome', '?')}"
    if kind == "note":
        note = notes.get(details.get("note_id"))
        return f"Note: {note['text']}" if note else "Note added"
    return action


def _page_entries(pages: list[dict]) -> list[TimelineEntry]:
    """One entry per page sent beyond a Slack channel, at the time it was queued, with its outcome."""
    entries = []
    for p in pages:
        if p["method"] == "channel":
            how = f"{p['channel_name'] or 'a deleted channel'} ({p['channel_kind'] or '?'})"
        else:
            how = f"{PAGE_METHODS.get(p['method'], p['method'])} to {p['recipient']}"
        outcome = {"pending": "waiting" + (f" (try {p['attempts']} failed: {p['last_error']})" if p["last_error"] else ""),
                   "delivered": "delivered", "failed": f"failed: {p['last_error']}"}[p["status"]]
        entries.append(TimelineEntry(
            p["created_at"], "page", f"{p['action'].capitalize()} → {how}: {outcome}", "system",
            {"delivery_id": p["id"], "status": p["status"], "method": p["method"], "reason": p["reason"],
             "attempts": p["attempts"], "finished_at": iso(p["finished_at"])},
        ))
    return entries


def _reply_entries(replies: list[dict]) -> list[TimelineEntry]:
    entries = []
    for r in replies:
        message = (r["payload"] or {}).get("message") or {}
        text = " ".join(str(message.get("text") or r["kind"]).split())
        at = r["sent_at"] or r["created_at"]
        entries.append(TimelineEntry(
            at, "thread_reply", f"Thread reply: {text[:300]}", "system",
            {"status": r["status"], "channel": r["slack_channel"]},
        ))
    return entries


def _title(occurrence: dict, incident: dict) -> str:
    return str((occurrence["alert"] or {}).get("title") or incident["title"])


def _slack_time(ts: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(Decimal(ts)), timezone.utc) if ts else None
    except (InvalidOperation, ValueError, OverflowError):
        return None


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
