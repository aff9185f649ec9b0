"""Block Kit for the incident inbox: `/pulser incidents [filters]` and the App Home saved filters.

One page is at most PAGE_SIZE incidents, each a section (state, count, age, assignee) and a row of
buttons (Open, Ack while unacknowledged, Resolve while firing), then "Next page" / "First page".
The same blocks go into an ephemeral message (the command) or a modal (Home); the buttons carry
what they need to redraw the page they sit on: the filter as typed and the page's cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from blocks.incidents import (
    OPEN,
    SEVERITY_EMOJI,
    UNKNOWN_SEVERITY_EMOJI,
    clip,
    clip_escaped,
    severity_label,
    source_name,
    user,
)
from blocks.kit import context, count_noun, escape, mrkdwn, plain, section
from blocks.status import duration, relative

INBOX_ACK = "inbox_ack"
INBOX_RESOLVE = "inbox_resolve"
INBOX_PAGE = "inbox_page"
INBOX_MODAL = "incident_inbox"
PAGE_SIZE = 10
FILTER_IN_VALUE = 1500  # a button value holds 2,000 characters; the filter goes in it whole or not at all

STATE_WORDS = {
    "firing": ":rotating_light: Firing",
    "acknowledged": ":eyes: Acknowledged",
    "snoozed": ":zzz: Snoozed",
    "resolved": ":white_check_mark: Resolved",
    "held_back": ":mute: Held back",
}

# The App Home's saved filters: (button value, label, filter words).
SAVED_FILTERS: tuple[tuple[str, str, str], ...] = (
    ("my_open", "My open", "status=open assignee=@me"),
    ("prod_high", "Prod high+", "status=open env=prod severity>=high"),
    ("all_open", "All open", "status=open sort=oldest-unacked"),
)


@dataclass(frozen=True)
class PageState:
    """What a button needs to redraw its page: the filter as typed, the cursor of this page (None:
    the first), and the page number shown."""

    filter_text: str
    cursor: str | None = None
    page: int = 1

    def value(self, **extra: Any) -> str:
        data = {"q": self.filter_text, "c": self.cursor, "p": self.page, **extra}
        return json.dumps(data, separators=(",", ":"))


def parse_page_value(value: str) -> tuple[PageState, dict] | None:
    """A button's PageState and its extra fields; None for a value that is not ours."""
    try:
        data = json.loads(value)
        state = PageState(str(data["q"]), data.get("c") if isinstance(data.get("c"), str) else None, int(data.get("p") or 1))
    except (ValueError, TypeError, KeyError):
        return None
    return state, {k: v for k, v in data.items() if k not in ("q", "c", "p")}


def inbox_blocks(
    rows: list[dict],
    *,
    state: PageState,
    total: int,
    next_cursor: str | None,
    now: datetime,
    sort: str,
    note: str | None = None,
) -> list[dict]:
    """The page: a headline with the filter and how many match, one section + buttons per
    incident, and the paging buttons."""
    shown_filter = escape(clip(state.filter_text, 300)) or "everything"
    order = {"newest": "newest first", "oldest": "oldest first", "oldest_unacked": "unacknowledged first, oldest first"}[sort]
    blocks: list[dict] = [
        section(f"*Incidents* · `{shown_filter}` · {count_noun(total, 'match', 'matches')} · {order}", "inbox_head"),
    ]
    if note:
        blocks.append(context(note))
    if not rows:
        blocks.append(section("Nothing matches. Try `status=all` or a longer `since=`.", "inbox_empty"))
    for incident in rows:
        blocks.append(section(row_text(incident, now), f"inbox_row:{incident['id']}"))
        blocks.append({"type": "actions", "block_id": f"inbox_actions:{incident['id']}", "elements": row_buttons(incident, state)})
    paging = []
    if next_cursor is not None:
        following = PageState(state.filter_text, next_cursor, state.page + 1)
        paging.append(_button(f"Next {PAGE_SIZE} →", INBOX_PAGE, following.value()))
    if state.page > 1:
        paging.append(_button("↩ First page", INBOX_PAGE + "_first", PageState(state.filter_text).value()))
    if paging:
        blocks.append({"type": "actions", "block_id": "inbox_paging", "elements": paging})
    start = (state.page - 1) * PAGE_SIZE + 1
    if rows:
        blocks.append(context(f"Page {state.page} · incidents {start}–{start + len(rows) - 1} of {total:,}"))
    return blocks


def inbox_message(blocks: list[dict], total: int) -> dict:
    return {"response_type": "ephemeral", "text": f"Incidents: {count_noun(total, 'match', 'matches')}", "blocks": blocks}


def inbox_modal(blocks: list[dict], *, title: str, metadata: str) -> dict:
    return {
        "type": "modal",
        "callback_id": INBOX_MODAL,
        "title": plain(clip(title, 24)),
        "close": plain("Close"),
        "private_metadata": metadata[:3000],
        "blocks": blocks[:100],
    }


def row_text(incident: dict, now: datetime) -> str:
    emoji = ":white_check_mark:" if incident["status"] == "resolved" else SEVERITY_EMOJI.get(incident["severity"], UNKNOWN_SEVERITY_EMOJI)
    title = clip_escaped(incident["title"] or "(untitled alert)", 120)
    where = " ".join(filter(None, [clip_escaped(incident["service"], 60), f"({clip_escaped(incident['env'], 30)})" if incident["env"] else ""]))
    age = duration((now - _utc(incident["first_seen"])).total_seconds())
    who = incident.get("investigator") or incident.get("acked_by")
    facts = [
        STATE_WORDS.get(incident["state"], incident["state"]),
        f"×{incident['count']:,}",
        f"open {age}" if incident["status"] == "firing" else f"lasted {duration((_utc(incident['resolved_at'] or now) - _utc(incident['first_seen'])).total_seconds())}",
        f"last {relative(incident['last_seen'], now)}",
        escape(source_name(incident["source"])),
        f"assignee {user(who)}" if who else "unassigned",
    ]
    if where:
        facts.insert(4, where)
    return f"{emoji} *{severity_label(incident['severity'])} {title}* · #{incident['id']}\n" + " · ".join(facts)


def row_buttons(incident: dict, state: PageState) -> list[dict]:
    value = str(incident["id"])
    buttons = [_button("Open", OPEN, value)]
    firing = incident["status"] == "firing"
    if firing and not incident["acked_by"]:
        buttons.append(_button("Ack", INBOX_ACK, state.value(i=incident["id"]), style="primary"))
    if firing:
        resolve = _button("Resolve", INBOX_RESOLVE, state.value(i=incident["id"]), style="danger")
        resolve["confirm"] = {
            "title": plain("Resolve this incident?"),
            "text": mrkdwn(f"*{clip_escaped(incident['title'] or '(untitled alert)', 100, 250)}* will be marked resolved for everyone."),
            "confirm": plain("Resolve"),
            "deny": plain("Cancel"),
            "style": "danger",
        }
        buttons.append(resolve)
    return buttons


def filter_error_message(problems: dict[str, str], allowed: str) -> dict:
    """The ephemeral answer to a filter that does not parse: what was wrong, then every filter."""
    wrong = "\n".join(f"• `{escape(clip(key, 40))}`: {escape(why.split('; allowed:')[0])}" for key, why in problems.items())
    text = (
        f":warning: I could not use that filter.\n{wrong}\n\n*Filters `/pulser incidents` takes:*\n{allowed}\n"
        "Example: `/pulser incidents status=open env=prod severity>=high since=24h`"
    )
    return {"response_type": "ephemeral", "text": text, "blocks": [section(text, "inbox_filter_error")]}


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict:
    button: dict[str, Any] = {"type": "button", "text": plain(text), "action_id": action_id, "value": value[:2000]}
    if style:
        button["style"] = style
    return button


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
