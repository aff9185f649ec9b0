"""A storm digest: one message per channel standing for every incident that folded into it, its
thread replies naming them, and the Show all modal.

Why a digest: 300 incidents in ten seconds as 300 posts bury the channel and cannot be posted
faster than Slack's one message a second per channel anyway; as one message, updated in place,
they are readable and can be acknowledged or resolved together.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Iterable

from blocks.incidents import SEVERITY_EMOJI, UNKNOWN_SEVERITY_EMOJI, clip, slack_date, user
from blocks.kit import channel_ref, context, count_noun, escape, plain, section

SHOW_ALL = "storm_show_all"
ACK_ALL = "storm_ack_all"
RESOLVE_ALL = "storm_resolve_all"
PAGE = "storm_page"
ACK_ONE = "storm_ack_one"
RESOLVE_ONE = "storm_resolve_one"
MODAL_CALLBACK = "storm_members"

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
TITLE_SHOWN = 90
LISTED_IN_DIGEST = 15
NAMED_PER_REPLY = 50  # incidents one thread reply names (five sections of ten lines)
PAGE_SIZE = 20  # incidents per Show all page (two blocks each; a modal holds 100)


def _emoji(severity: str) -> str:
    return SEVERITY_EMOJI.get(severity, UNKNOWN_SEVERITY_EMOJI)


def incident_line(incident: dict[str, Any]) -> str:
    """`:red_circle: #123 Disk full on db-1 · db (prod) — acknowledged by @ann`"""
    where = escape(incident["service"] or "")
    if incident.get("env"):
        where += f" ({escape(incident['env'])})"
    state = ""
    if incident["status"] == "resolved":
        state = " — :white_check_mark: resolved"
    elif incident.get("acked_by"):
        state = f" — acknowledged by {user(incident['acked_by'])}"
    link = ""
    if incident.get("slack_ts") and not incident.get("folded", True):
        link = " (own message)"
    return f"{_emoji(incident['severity'])} *#{incident['id']}* {escape(clip(incident['title'], TITLE_SHOWN))} · {where}{state}{link}"


def _top(counter: Counter, shown: int = 5) -> str:
    parts = [f"{escape(str(name) or '—')} {n:,}" for name, n in counter.most_common(shown)]
    rest = len(counter) - shown
    if rest > 0:
        parts.append(f"+{rest} more")
    return " · ".join(parts)


def digest_message(digest: dict, summary: dict, *, now: datetime) -> dict:
    """The digest as it stands: counts, the incidents most worth seeing, and the buttons."""
    status: Counter = Counter()
    severity: Counter = Counter()
    service: Counter = Counter()
    source: Counter = Counter()
    acked = 0
    for row in summary["counts"]:
        n = row["n"]
        status[row["status"]] += n
        severity[row["severity"]] += n
        service[row["service"]] += n
        source[row["source"]] += n
        if row["acked"] and row["status"] == "firing":
            acked += n
    total = sum(status.values())
    over = digest["closed_at"] is not None
    firing, resolved = status["firing"], status["resolved"]
    if over:
        headline = (
            f":white_check_mark: *Alert storm over* in {channel_ref(digest['slack_channel'] or digest['channel'])}: "
            f"{count_noun(total, 'incident')} from {slack_date(digest['opened_at'])} to {slack_date(digest['closed_at'])}"
        )
    else:
        headline = (
            f":rotating_light: *Alert storm:* {count_noun(total, 'incident')} since {slack_date(digest['opened_at'])}"
            f" — more incidents fold into this message until none arrives for a while"
        )
    severities = " · ".join(f"{_emoji(s)} {s} {severity[s]:,}" for s in SEVERITY_ORDER if severity[s])
    blocks: list[dict] = [
        section(headline),
        section(
            f"*Firing* {firing:,} ({acked:,} acknowledged) · *Resolved* {resolved:,}\n"
            f"*By severity:* {severities or '—'}\n*By service:* {_top(service) or '—'}\n*By source:* {_top(source) or '—'}"
        ),
    ]
    listed = summary["listed"]
    if listed:
        lines = "\n".join(incident_line(i) for i in listed)
        blocks.append(section(lines))
    if total > len(listed):
        blocks.append(context(f"{count_noun(total - len(listed), 'more incident')} — every one is named in this thread; *Show all* lists them with their buttons."))
    value = str(digest["id"])
    buttons: list[dict] = [{"type": "button", "action_id": SHOW_ALL, "text": plain("Show all"), "value": value}]
    if firing:
        buttons.append({"type": "button", "action_id": ACK_ALL, "text": plain("Ack all"), "value": value})
        buttons.append(
            {
                "type": "button",
                "action_id": RESOLVE_ALL,
                "text": plain("Resolve all"),
                "style": "danger",
                "value": value,
                "confirm": {
                    "title": plain("Resolve every incident?"),
                    "text": plain(f"This resolves all {firing:,} firing incidents of this storm. Each is recorded as resolved by you."),
                    "confirm": plain("Resolve all"),
                    "deny": plain("Cancel"),
                    "style": "danger",
                },
            }
        )
    blocks.append({"type": "actions", "block_id": f"storm_actions:{digest['id']}", "elements": buttons})
    text = f"Alert storm: {total:,} incidents ({firing:,} firing, {resolved:,} resolved)"
    if over:
        text = f"Alert storm over: {total:,} incidents ({firing:,} still firing)"
    return {"text": text, "blocks": blocks}


def roll_call(incidents: Iterable[dict[str, Any]]) -> dict:
    """A thread reply naming folded incidents (up to NAMED_PER_REPLY)."""
    lines = [incident_line(i) for i in incidents]
    blocks = [section("\n".join(lines[start : start + 10])) for start in range(0, len(lines), 10)]
    return {"text": f"{count_noun(len(lines), 'incident')} folded into this storm", "blocks": blocks}


def members_modal(digest_id: int, rows: list[dict], total: int, page: int) -> dict:
    """Show all: one page of the storm's incidents, each with Ack and Resolve."""
    blocks: list[dict] = [context(f"{count_noun(total, 'incident')} in this storm, critical first. Page {page + 1} of {max(1, -(-total // PAGE_SIZE))}.")]
    for incident in rows:
        blocks.append(section(incident_line(incident) + f" · ×{incident['count']:,}"))
        if incident["status"] == "firing":
            buttons = []
            if not incident["acked_by"]:
                buttons.append({"type": "button", "action_id": ACK_ONE, "text": plain("Ack"), "value": f"{digest_id}:{page}:{incident['id']}"})
            buttons.append({"type": "button", "action_id": RESOLVE_ONE, "text": plain("Resolve"), "value": f"{digest_id}:{page}:{incident['id']}"})
            blocks.append({"type": "actions", "block_id": f"storm_member:{incident['id']}", "elements": buttons})
    pager = []
    if page > 0:
        pager.append({"type": "button", "action_id": PAGE, "text": plain("Previous"), "value": f"{digest_id}:{page - 1}"})
    if (page + 1) * PAGE_SIZE < total:
        pager.append({"type": "button", "action_id": f"{PAGE}_next", "text": plain("Next"), "value": f"{digest_id}:{page + 1}"})
    if pager:
        blocks.append({"type": "actions", "block_id": "storm_pager", "elements": pager})
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": f"{digest_id}:{page}",
        "title": plain("Alert storm"),
        "close": plain("Close"),
        "blocks": blocks,
    }
