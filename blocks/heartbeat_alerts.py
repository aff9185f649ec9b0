"""Slack messages for heartbeat outages: the alert, its in-place updates, and the recovery reply.

One function renders an alert from its whole state (what happened, who acked, snoozed or paused,
whether it recovered), so every update re-renders the same message and no click can leave it
half-changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from blocks.kit import coloured_message, count_noun, escape

ACK = "heartbeat_alert_ack"
SNOOZE = "heartbeat_alert_snooze"
PAUSE = "heartbeat_alert_pause"

SNOOZE_OPTIONS = (("30 min", 1800), ("1 hour", 3600), ("4 hours", 14400), ("24 hours", 86400))
RED, GREEN, GREY = "#d62828", "#2a9d8f", "#8d99ae"


@dataclass(frozen=True)
class AlertView:
    app_id: int
    app_name: str
    kind: str  # heartbeat_down | heartbeat_fail
    expected: str  # "every 5 min" / "on `0 2 * * *` (UTC)"
    grace: str
    last_seen_ago: str | None  # "12 min" or None for never
    exit_code: int | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    snoozed_by: str | None = None
    snoozed_until: datetime | None = None
    paused_by: str | None = None
    recovered_after: str | None = None  # "14 min" once recovered


def headline(view: AlertView) -> str:
    name = escape(view.app_name)
    if view.recovered_after is not None:
        return f"✅ {name} recovered after {view.recovered_after}"
    if view.kind == "heartbeat_fail":
        code = f" (exit code {view.exit_code})" if view.exit_code is not None else ""
        return f"🚨 {name} reported a failure{code}"
    seen = f"last seen {view.last_seen_ago} ago" if view.last_seen_ago else "never seen"
    return f"🚨 Missed heartbeat: {name} — {seen}, expected {view.expected}"


def alert_message(view: AlertView) -> dict:
    """The whole message: text (for notifications and screen readers), coloured blocks, buttons."""
    title = headline(view)
    details = f"*Expected* {view.expected} · *grace* {view.grace}"
    top = [{"type": "section", "block_id": "headline", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    blocks: list[dict] = [{"type": "context", "block_id": "details", "elements": [{"type": "mrkdwn", "text": details}]}]
    notes = _state_notes(view)
    if notes:
        blocks.append({"type": "context", "block_id": "state", "elements": [{"type": "mrkdwn", "text": n} for n in notes]})
    actions = _actions(view)
    if actions:
        blocks.append({"type": "actions", "block_id": "alert_actions", "elements": actions})
    colour = GREEN if view.recovered_after else (GREY if view.paused_by else RED)
    return coloured_message(title, top, blocks, colour)


def recovery_reply(app_name: str, recovered_after: str) -> str:
    return f"✅ {escape(app_name)} is sending heartbeats again — recovered after {recovered_after}."


def _state_notes(view: AlertView) -> list[str]:
    notes = []
    if view.acked_by:
        when = f" at {view.acked_at:%H:%M} UTC" if view.acked_at else ""
        notes.append(f"👀 Acknowledged by <@{view.acked_by}>{when}")
    if view.snoozed_by and view.snoozed_until:
        notes.append(f"😴 Snoozed by <@{view.snoozed_by}> until {view.snoozed_until:%Y-%m-%d %H:%M} UTC")
    if view.paused_by:
        notes.append(f"⏸️ Monitoring paused by <@{view.paused_by}>")
    return notes


def _actions(view: AlertView) -> list[dict]:
    if view.recovered_after is not None or view.paused_by:
        return []
    value = str(view.app_id)
    actions: list[dict] = []
    if not view.acked_by:
        actions.append(
            {"type": "button", "action_id": ACK, "text": {"type": "plain_text", "text": "Ack"}, "style": "primary", "value": value}
        )
    actions.append(
        {
            "type": "static_select",
            "action_id": SNOOZE,
            "placeholder": {"type": "plain_text", "text": "Snooze…"},
            "options": [
                {"text": {"type": "plain_text", "text": label}, "value": f"{value}:{seconds}"}
                for label, seconds in SNOOZE_OPTIONS
            ],
        }
    )
    actions.append(
        {
            "type": "button",
            "action_id": PAUSE,
            "text": {"type": "plain_text", "text": "Pause monitoring"},
            "value": value,
            "confirm": {
                "title": {"type": "plain_text", "text": "Pause monitoring?"},
                "text": {"type": "mrkdwn", "text": f"No alerts for *{escape(view.app_name)}* until someone resumes it."},
                "confirm": {"type": "plain_text", "text": "Pause"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            },
        }
    )
    return actions


# Sections of names one storm summary holds: a message takes 50 blocks, and a few are needed for
# the headline and labels. Beyond that the summary says how many more (`/pulser apps` lists all).
NAME_SECTIONS_MAX = 20


def _name_sections(names: list[str], block_prefix: str, *, most: int = NAME_SECTIONS_MAX) -> list[dict]:
    """Every name, comma-separated, in as many sections as Slack's 3,000-character limit needs,
    up to `most` sections; a last line says how many did not fit."""
    blocks, chunk = [], ""
    for shown, name in enumerate(names):
        piece = escape(name)
        if chunk and len(chunk) + len(piece) + 2 > 2900:
            blocks.append(chunk)
            chunk = ""
            if len(blocks) == most:
                blocks[-1] += f" … and {len(names) - shown:,} more (`/pulser apps` lists them)"
                break
        chunk = f"{chunk}, {piece}" if chunk else piece
    else:
        if chunk:
            blocks.append(chunk)
    return [
        {"type": "section", "block_id": f"{block_prefix}{i}", "text": {"type": "mrkdwn", "text": text}}
        for i, text in enumerate(blocks)
    ]


def storm_message(names: list[str], *, recovered: list[str] | tuple[str, ...] = ()) -> dict:
    """One message for many apps that went down together or one after another (a network blip, a
    shared dependency): Slack accepts about one message per second per channel, and a person reads
    one summary. It names every app, and is updated in place as more go down and as they recover."""
    down = sorted(set(names) - set(recovered))
    back = sorted(set(recovered) & set(names))
    total = len(set(names))
    title = f"🚨 {count_noun(total, 'app')} missed " + ("its heartbeat" if total == 1 else "their heartbeats")
    top = [{"type": "section", "block_id": "headline", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    blocks: list[dict] = []
    if down:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*Still down ({len(down):,}):*"}]})
        blocks += _name_sections(down, "down")
    if back:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f":white_check_mark: *Recovered ({len(back):,}):*"}]})
        blocks += _name_sections(back, "back")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Updated in place as apps go down and recover. `/pulser apps` shows them all."}]})
    return coloured_message(title, top, blocks[:50], GREEN if not down else RED)
