"""Block Kit for heartbeat applications in Slack: the register/edit modal (and reading it back), the
"registered" message with ready-to-paste curl lines, the `/pulser apps` list and an app's recent
heartbeats.

Pure functions over plain values: the handler decides an app's status and words its durations
(that is domain knowledge in `alerts/`) and hands them over as an `AppSummary`; these functions
only lay them out. Every piece of user text that lands in mrkdwn goes through `escape`, so an app
called `<!channel>` is shown, never obeyed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from blocks.kit import (
    channel_ref,
    context as _context,
    count_noun,
    escape,
    is_channel_id as _is_channel_id,
    plain as _plain,
    section as _section,
    text_input as _text_input,
)

# --- ids: Bolt routes on these, tests and the handler read forms by them ---------------------------

REGISTER_CALLBACK = "application_register"
EDIT_CALLBACK = "application_edit"
HEARTBEATS_CALLBACK = "application_heartbeats"

PAUSE = "apps_pause"
RESUME = "apps_resume"
EDIT = "apps_edit"
DELETE = "apps_delete"
HEARTBEATS = "apps_heartbeats"

# The modal's block ids (each input's action id is the same word), keyed by the validator's field
# names, so a ValidationError maps straight onto the block that shows it.
FIELD_BLOCKS: dict[str, str] = {
    "name": "name",
    "expected_interval": "interval",
    "grace_period": "grace",
    "channel": "channel",
    "owner": "owner",
    "schedule": "schedule",
    "timezone": "timezone",
}

MAX_MESSAGE_BLOCKS = 50  # Slack rejects a message with more
HISTORY_SHOWN = 10
NAME_MAX = 100
DEFAULT_GRACE_TEXT = "1m"

STATUS_EMOJI = {"new": "⚪", "up": "🟢", "late": "🟡", "down": "🔴", "paused": "⏸️"}
_ATTENTION_FIRST = {"down": 0, "late": 1}  # everything else ranks 2, then by name
_KIND_EMOJI = {"success": "✅", "start": "▶️", "fail": "❌"}
_CURL = "curl -fsS -m 10 --retry 5 -X POST"


@dataclass(frozen=True)
class AppSummary:
    """One application as Slack shows it; every text is ready to display (not yet escaped)."""

    id: int
    uuid: str
    name: str
    status: str  # new | up | late | down | paused
    expected: str  # "every 5 min" / "on `0 2 * * *` (UTC)"
    grace: str  # "1 min"
    last_heartbeat: str  # "12 min ago" / "never"
    channel: str  # channel ID or #name
    owner: str | None = None
    is_active: bool = True


def duration_input(seconds: int | None) -> str:
    """Seconds as the shortest text the form accepts back: 300 → '5m', 90 → '90s', None → ''."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- the register / edit modal ------------------------------------------------------------------


def _application_modal(
    *,
    callback_id: str,
    title: str,
    submit: str,
    metadata: Mapping[str, Any],
    name: str,
    interval: str,
    grace: str,
    channel: str | None,
    channel_hint: str,
    owner: str | None,
    schedule: str,
    timezone_name: str,
) -> dict:
    channel_select: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": FIELD_BLOCKS["channel"],
        "placeholder": _plain("Choose a channel"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if _is_channel_id(channel):
        channel_select["initial_conversation"] = channel
    owner_select: dict[str, Any] = {
        "type": "users_select",
        "action_id": FIELD_BLOCKS["owner"],
        "placeholder": _plain("Who looks after it"),
    }
    if owner:
        owner_select["initial_user"] = owner
    blocks = [
        _text_input(
            "name", "Name", initial=name, placeholder="nightly-backup", max_length=NAME_MAX,
            hint="Unique, up to 100 characters. Alerts and the list show it.",
        ),
        _text_input(
            "interval", "Expected every", initial=interval, placeholder="5m", optional=True,
            hint="How often the app sends a heartbeat: 300 (seconds), 5m, 1h or 1d; 10 s to 31 days. "
            "Leave empty if you give a cron schedule below.",
        ),
        _text_input(
            "grace", "Grace period", initial=grace, placeholder=DEFAULT_GRACE_TEXT, optional=True,
            hint="How long past due before Pulser alerts: 0, 30s, 5m, 1h; empty means 1m.",
        ),
        {"type": "input", "block_id": "channel", "label": _plain("Alert channel"), "element": channel_select,
         "optional": True, "hint": _plain(channel_hint)},
        {"type": "input", "block_id": "owner", "label": _plain("Owner"), "element": owner_select, "optional": True},
        _context("*Optional:* a cron schedule instead of a fixed interval, for jobs that run at set times."),
        _text_input(
            "schedule", "Cron schedule", initial=schedule, placeholder="0 2 * * *", optional=True,
            hint="minute hour day month weekday, e.g. 0 2 * * * for 02:00 every day. The grace period still applies.",
        ),
        _text_input(
            "timezone", "Time zone", initial=timezone_name, placeholder="UTC", optional=True,
            hint="For the schedule: an IANA name like Europe/Berlin. Empty means UTC.",
        ),
    ]
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "blocks": blocks,
    }


def register_modal(*, default_channel: str, metadata: Mapping[str, Any], name: str = "") -> dict:
    """The empty form; `metadata` (where the command came from) rides along in private_metadata."""
    return _application_modal(
        callback_id=REGISTER_CALLBACK,
        title="Register an app",
        submit="Register",
        metadata=metadata,
        name=name[:NAME_MAX],
        interval="",
        grace=DEFAULT_GRACE_TEXT,
        channel=default_channel,
        # A plain-text hint cannot show <#C…>; an ID is preselected in the picker instead.
        channel_hint="Where alerts go. Empty means the default channel"
        + ("." if _is_channel_id(default_channel) else f", {default_channel}."),
        owner=None,
        schedule="",
        timezone_name="",
    )


def edit_modal(*, app: Any, metadata: Mapping[str, Any]) -> dict:
    """The same form filled with `app`'s values (anything with the stored application's fields)."""
    if _is_channel_id(app.channel):
        hint = "Where alerts go."
    else:  # a #name cannot preselect a conversations_select; say what stays if left empty
        hint = f"Where alerts go. Now {app.channel}; leave empty to keep it."
    return _application_modal(
        callback_id=EDIT_CALLBACK,
        title="Edit app",
        submit="Save",
        metadata=metadata,
        name=app.name,
        interval=duration_input(app.expected_interval),
        grace=duration_input(app.grace_period),
        channel=app.channel,
        channel_hint=hint,
        owner=app.owner,
        schedule=app.schedule or "",
        timezone_name="" if app.timezone == "UTC" and not app.schedule else app.timezone,
    )


def submitted_fields(values: Mapping[str, Any]) -> dict[str, str | None]:
    """A submitted form's `view.state.values`, by validator field name; empty inputs are None."""
    out: dict[str, str | None] = {}
    for field, block_id in FIELD_BLOCKS.items():
        actions = values.get(block_id) or {}
        action = actions.get(block_id) or next(iter(actions.values()), None) or {}
        raw = None
        for key in ("value", "selected_conversation", "selected_channel", "selected_user"):
            if action.get(key):
                raw = str(action[key])
                break
        if raw is not None and field != "name":  # the validator trims names and says when one is blank
            raw = raw.strip() or None
        out[field] = raw
    return out


def form_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Validator errors keyed by the blocks that show them; a field without a block lands on name."""
    out: dict[str, str] = {}
    for field, message in errors.items():
        block = FIELD_BLOCKS.get(field, FIELD_BLOCKS["name"])
        out[block] = f"{out[block]} {message}" if block in out else message
    return out


# --- after registering ----------------------------------------------------------------------------


def curl_lines(base_url: str, app_uuid: str) -> list[str]:
    ping = f"{base_url.rstrip('/')}/heartbeat/{app_uuid}"
    return [
        f"{_CURL} {ping}",
        f"{_CURL} {ping}/start",
        f"{_CURL} {ping}/fail",
        f"my-job.sh; {_CURL} {ping}/$?",
    ]


def registered_message(app: AppSummary, base_url: str) -> dict:
    """What the person who registered an app sees: its UUID and how to send heartbeats."""
    success, start, fail, exit_code = (escape(line) for line in curl_lines(base_url, app.uuid))
    name = escape(app.name)
    blocks = [
        _section(
            f"✅ Registered *{name}* — expected {escape(app.expected)}, grace {escape(app.grace)}, "
            f"alerts to {channel_ref(app.channel)}.",
            "registered",
        ),
        _section(f"*UUID* `{app.uuid}`", "uuid"),
        _section(f"*When the job succeeds*, send a heartbeat:\n```{success}```", "curl"),
        _section(
            "*Optional signals*: the run began, it failed (alerts at once), or pass the exit code "
            f"(0 = success):\n```{start}\n{fail}\n{exit_code}```",
            "curl_signals",
        ),
        _context(
            "Pulser starts watching with the first heartbeat. GET and HEAD work too, and so does "
            "`/ping/…` instead of `/heartbeat/…`. `/pulser apps` lists, pauses and edits apps."
        ),
    ]
    # `text` is mrkdwn too (and drives notifications), so it is escaped like the blocks
    text = f"Registered {name}: UUID {app.uuid}. Heartbeat: {success}"
    return {"text": text, "blocks": blocks}


# --- /pulser apps --------------------------------------------------------------------------------


def _button(text: str, action_id: str, app_id: int, style: str | None = None, confirm: dict | None = None) -> dict:
    button: dict[str, Any] = {"type": "button", "text": _plain(text), "action_id": action_id, "value": str(app_id)}
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def delete_confirm(name: str) -> dict:
    """Slack's own "are you sure" dialog; plain text, so the name needs no escaping (≤ 300 chars)."""
    return {
        "title": _plain("Delete this app?"),
        "text": _plain(
            f"Delete “{name}”? Its UUID stops working at once (heartbeats get 404) and it is no longer watched."
        ),
        "confirm": _plain("Delete"),
        "deny": _plain("Cancel"),
        "style": "danger",
    }


def _app_blocks(app: AppSummary) -> list[dict]:
    emoji = STATUS_EMOJI.get(app.status, "❔")
    owner = f" · owner <@{app.owner}>" if app.owner else ""
    text = (
        f"{emoji} *{app.status}* · *{escape(app.name)}*\n"
        f"Expected {escape(app.expected)} · grace {escape(app.grace)}\n"
        f"Last heartbeat {escape(app.last_heartbeat)} · alerts to {channel_ref(app.channel)}{owner}"
    )
    toggle = _button("Resume", RESUME, app.id) if not app.is_active else _button("Pause", PAUSE, app.id)
    return [
        _section(text, f"app_{app.id}"),
        {
            "type": "actions",
            "block_id": f"app_actions_{app.id}",
            "elements": [
                toggle,
                _button("Edit", EDIT, app.id),
                _button("Delete", DELETE, app.id, style="danger", confirm=delete_confirm(app.name)),
                _button("Heartbeats", HEARTBEATS, app.id),
            ],
        },
    ]


def _attention_order(app: AppSummary) -> tuple[int, str]:
    return _ATTENTION_FIRST.get(app.status, 2), app.name.lower()


def change_notice(change: str, name: str) -> str:
    """One line on top of a refreshed list saying what the click did (mrkdwn, name escaped)."""
    name = escape(name)
    return {
        "paused": f"⏸️ Paused *{name}*: it is not watched until resumed.",
        "resumed": f"▶️ Resumed *{name}*: watching starts again with its next heartbeat.",
        "deleted": f"🗑️ Deleted *{name}*: its UUID no longer accepts heartbeats.",
        "updated": f"✏️ Updated *{name}*.",
        "missing": "That app no longer exists; here is the current list.",
    }[change]


def apps_list(
    apps: Sequence[AppSummary],
    *,
    total: int | None = None,
    counts: dict[str, int] | None = None,
    notice: str | None = None,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
) -> dict:
    """The ephemeral `/pulser apps` answer: down and late apps first, then by name.

    Each app takes two blocks (text, buttons), so a long list is cut to fit Slack's block limit and
    says how many it left out. `total` is the number of apps that exist when `apps` is not all of
    them, and `counts` (status → number) the whole fleet's; `notice` is mrkdwn (see
    `change_notice`) shown on top.
    """
    total = len(apps) if total is None else max(total, len(apps))
    ordered = sorted(apps, key=_attention_order)
    head: list[dict] = []
    if notice:
        head.append(_context(notice))
    if not ordered:
        empty = "*Applications* · none yet. An admin can register one with `/pulser register`."
        head.append(_section(empty, "apps_header"))
        return {"response_type": "ephemeral", "text": "No applications registered yet.", "blocks": head}

    if counts is None:
        counts = {status: sum(1 for a in ordered if a.status == status) for status in ("down", "late")}
    counts = {status: counts.get(status, 0) for status in ("down", "late")}
    summary = f"*Applications* · {total} total"
    summary += "".join(f" · {STATUS_EMOJI[s]} {n} {s}" for s, n in counts.items() if n)
    head.append(_section(summary, "apps_header"))

    room = (max_blocks - len(head) - 1) // 2  # one block stays free for the footer
    shown = ordered[:room]
    hidden = total - len(shown)
    body = [block for app in shown for block in _app_blocks(app)]
    footer = "Pause, Edit and Delete need admin rights; anyone can list apps and see heartbeats."
    if hidden > 0:
        footer = (
            f"…and {hidden} more not shown (down and late come first). `GET /api/applications` lists them all. "
            + footer
        )
    text = count_noun(total, "application") + "".join(f", {n} {s}" for s, n in counts.items() if n)
    return {"response_type": "ephemeral", "text": text, "blocks": head + body + [_context(footer)]}


# --- heartbeat history ---------------------------------------------------------------------------


def _run_time(duration_ms: int) -> str:
    if duration_ms < 1000:
        return f"{duration_ms} ms"
    seconds = duration_ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _when(received_at: datetime) -> str:
    """Slack renders the date in each reader's own time zone; the fallback is UTC."""
    utc = received_at.astimezone(timezone.utc)
    fallback = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def heartbeat_line(row: Mapping[str, Any]) -> str:
    kind = str(row["kind"])
    parts = [f"{_KIND_EMOJI.get(kind, '•')} *{escape(kind)}*", _when(row["received_at"])]
    if row.get("exit_code") is not None:
        parts.append(f"exit code {int(row['exit_code'])}")
    if row.get("duration_ms") is not None:
        parts.append(f"ran {_run_time(int(row['duration_ms']))}")
    return " · ".join(parts)


def heartbeats_list(app: AppSummary, rows: Iterable[Mapping[str, Any]]) -> dict:
    """A read-only modal with the app's newest heartbeats (newest first, at most 10)."""
    rows = list(rows)[:HISTORY_SHOWN]
    emoji = STATUS_EMOJI.get(app.status, "❔")
    blocks: list[dict] = [
        _section(
            f"*{escape(app.name)}* · {emoji} {app.status}\n"
            f"Expected {escape(app.expected)} · grace {escape(app.grace)} · last heartbeat {escape(app.last_heartbeat)}",
            "heartbeats_app",
        ),
    ]
    if rows:
        blocks.append(_context(f"The last {len(rows)}, newest first; times are in your time zone."))
        blocks += [_section(heartbeat_line(row), f"heartbeat_{i}") for i, row in enumerate(rows)]
    else:
        blocks.append(_section("No heartbeats yet. Pulser starts watching with the first one.", "heartbeats_none"))
    return {
        "type": "modal",
        "callback_id": HEARTBEATS_CALLBACK,
        "title": _plain("Heartbeats"),
        "close": _plain("Close"),
        "private_metadata": json.dumps({"app_id": app.id}),
        "blocks": blocks,
    }


# --- refusals ------------------------------------------------------------------------------------


def admin_only(action: str) -> dict:
    """A polite ephemeral no that says who *can*; `action` reads like 'register apps'."""
    return {
        "response_type": "ephemeral",
        "text": f":lock: Only Pulser admins can {action}: workspace admins/owners or users listed in "
        "PULSER_ADMINS. Ask one of them, or see what is registered with `/pulser apps`.",
    }
