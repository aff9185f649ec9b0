"""Block Kit for Heroku in Slack: the `/heroku-status` answer, its help, the monitoring-settings
modal (and reading it back), and one-line answers.

Pure functions over plain values: the handler asks Heroku (through `alerts.heroku_monitor`) and
hands over each app's summary as the dict `HerokuMonitor.app_summary` returns; these functions only
lay it out. Everything Heroku or a person typed goes through `escape` before it lands in mrkdwn,
so a release described as `<!channel>` is shown, never obeyed. No config-var value is ever handed
in here, so none can be shown.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from blocks.kit import channel_ref, context as _context, count_noun, escape, plain as _plain, section as _section, text_input as _text_input

# --- ids: Bolt routes on these, the handler and tests read the form by them --------------------------

CONFIG_CALLBACK = "heroku_config"

# The modal's block ids are the validator's field names (each input's action id is the same word),
# so a SettingsError's {field: message} is already the {block_id: message} Slack wants.
FIELDS = ("apps", "channel", "interval_minutes")

# Slack rejects a message over 50 blocks; a header, a note and a footer leave room for this many
# apps, and asking Heroku about more in one command would cost 3 requests each anyway.
APPS_SHOWN = 20
ADDONS_SHOWN = 10
SECTION_TEXT_MAX = 3000
DESCRIPTION_SHOWN = 120
ERROR_SHOWN = 300

# Dyno states that mean the process is not serving; the app line turns red for them.
TROUBLED_STATES = frozenset({"crashed", "down"})

USAGE = (
    "*`/heroku-status`* — every monitored Heroku app: dynos, current release, add-ons, last poll.\n"
    "*`/heroku-status <app>`* — one app, monitored or not.\n"
    "*`/heroku-status config`* — which apps Pulser watches, where it alerts and how often (admins).\n"
    "*`/heroku-status help`* — this help."
)


# --- text helpers ------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """At most `limit` characters on one line, ending in "…" when something was cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"




def ago(moment: datetime | str | None, now: datetime) -> str | None:
    """"just now", "12 min ago", "3 h ago", "2 d ago"; None when there is no (readable) moment."""
    when = _as_datetime(moment)
    if when is None:
        return None
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def dynos_text(dynos: Mapping[str, Mapping[str, int]]) -> str:
    """{"web": {"up": 2}, "worker": {"crashed": 1}} → "web: 2 up · worker: 1 crashed"."""
    if not dynos:
        return "no dynos"
    parts = []
    for process_type in sorted(dynos):
        states = dynos[process_type]
        counts = ", ".join(f"{states[state]} {escape(str(state))}" for state in sorted(states, key=_state_order))
        parts.append(f"{escape(str(process_type))}: {counts}")
    return " · ".join(parts)


def release_text(release: Mapping[str, Any] | None, now: datetime) -> str:
    """"v42 by dev@example.com 3 h ago: Deploy abc123 (succeeded)" from a raw Heroku release."""
    if not release:
        return "no releases yet"
    user = release.get("user")
    email = user.get("email") if isinstance(user, Mapping) else user
    text = f"v{release.get('version', '?')}"
    if email:
        text += f" by {escape(str(email))}"
    if when := ago(release.get("created_at"), now):
        text += f" {when}"
    if description := clip(release.get("description") or "", DESCRIPTION_SHOWN):
        text += f": {escape(description)}"
    if status := release.get("status"):
        text += f" ({escape(str(status))})"
    return text


def addons_text(addons: Sequence[Mapping[str, Any]]) -> str:
    """"shop-db (heroku-postgresql:essential-0) provisioned · …", at most ADDONS_SHOWN of them."""
    if not addons:
        return "none"
    parts = []
    for addon in addons[:ADDONS_SHOWN]:
        name = escape(str(addon.get("name") or addon.get("service") or "?"))
        plan = addon.get("plan") or addon.get("service")
        text = f"{name} ({escape(str(plan))})" if plan and plan != addon.get("name") else name
        parts.append(f"{text} {escape(str(addon.get('state') or 'unknown'))}")
    if len(addons) > ADDONS_SHOWN:
        parts.append(f"…and {len(addons) - ADDONS_SHOWN} more")
    return " · ".join(parts)


def monitoring_line(*, active: bool, why: str | None, apps: int, interval_minutes: int, channel: str) -> str:
    """The header: "Monitoring ACTIVE — 2 apps every 5 min → #ops-alerts" or "Monitoring INACTIVE: why"."""
    if not active:
        return f":double_vertical_bar: *Monitoring INACTIVE*: {escape(why or 'unknown reason')}"
    return f":satellite_antenna: *Monitoring ACTIVE* — {count_noun(apps, 'app')} every {interval_minutes} min → {channel_ref(channel)}"


# --- /heroku-status ----------------------------------------------------------------------------------


def app_section(summary: Mapping[str, Any], *, now: datetime, monitored: bool = True) -> dict:
    """One app as `HerokuMonitor.app_summary` describes it: dynos, release, add-ons, last poll."""
    app = str(summary.get("app") or "?")
    dynos = summary.get("dynos") or {}
    lines = [
        f"{_health_emoji(dynos)} *{escape(app)}*{_not_monitored(monitored)}",
        f"*Dynos* {dynos_text(dynos)}",
        f"*Release* {release_text(summary.get('release'), now)}",
        f"*Add-ons* {addons_text(summary.get('addons') or [])}",
    ]
    if monitored:
        polled = ago(summary.get("last_poll_at"), now)
        lines.append(f"Last poll {polled}" if polled else "Not polled yet")
    if summary.get("last_error"):
        lines.append(f":warning: Last poll failed: {escape(clip(summary['last_error'], ERROR_SHOWN))}")
    return _section(_fit("\n".join(lines)), _app_block_id(app))


def app_problem_section(app: str, problem: str, *, monitored: bool = True) -> dict:
    """An app Heroku could not tell us about: its name and one line saying why."""
    text = f":warning: *{escape(app)}*{_not_monitored(monitored)}\n{escape(clip(problem, ERROR_SHOWN))}"
    return _section(text, _app_block_id(app))


def status_message(
    header: str,
    sections: Sequence[dict],
    *,
    not_shown: int = 0,
    note: str | None = None,
) -> dict:
    """The ephemeral `/heroku-status` answer: the monitoring line, one section per app, a footer.

    `header` is `monitoring_line(...)`; `sections` come from `app_section`/`app_problem_section`
    (at most APPS_SHOWN); `not_shown` counts the monitored apps left out; `note` is plain text
    shown under the header (escaped here).
    """
    blocks: list[dict] = [_section(header, "heroku_monitoring")]
    if note:
        blocks.append(_context(escape(note)))
    blocks += list(sections[:APPS_SHOWN])
    footer = "Live from the Heroku API. `/heroku-status <app>` shows one app; `/heroku-status help` lists the rest."
    if not_shown > 0:
        footer = f"…and {not_shown} more not shown. " + footer
    blocks.append(_context(footer))
    text = _strip_marks(header)
    return {"response_type": "ephemeral", "text": f"Heroku: {text}", "blocks": blocks}


def one_line(text: str) -> dict:
    """An ephemeral answer of one line of Pulser's own words (callers escape what they put in)."""
    return {"response_type": "ephemeral", "text": text}


def help_message(unknown: str | None = None) -> dict:
    blocks: list[dict] = []
    if unknown is not None:
        blocks.append(_context(f"I don't understand `{escape(clip(unknown, 80))}`. Here is what I do:"))
    blocks.append(_section(USAGE, "heroku_help"))
    blocks.append(
        _context(
            "Pulser alerts on crashed dynos, new releases (with a Rollback button for admins), failed "
            "releases, config-var changes (names only, never values) and add-on trouble."
        )
    )
    return {"response_type": "ephemeral", "text": "/heroku-status [app | config | help]", "blocks": blocks}


def admin_only(action: str) -> dict:
    """A polite ephemeral no that says who *can*; `action` reads like 'change Heroku monitoring'."""
    return one_line(
        f":lock: Only Pulser admins can {action}: workspace admins/owners or users listed in PULSER_ADMINS. "
        "Anyone can see the state with `/heroku-status`."
    )


# --- the settings modal ------------------------------------------------------------------------------


def config_modal(*, apps: Sequence[str], channel: str, interval_minutes: int, metadata: Mapping[str, Any]) -> dict:
    """The form, filled with the current settings; `metadata` (where the command came from) rides
    along in private_metadata so the confirmation lands in the same channel."""
    blocks = [
        _text_input(
            "apps", "Heroku apps", initial="\n".join(apps), multiline=True, optional=True,
            placeholder="shop-api, shop-worker",
            hint="One per line or comma-separated. Leave empty to stop monitoring.",
        ),
        _text_input(
            "channel", "Alert channel", initial=channel, placeholder="#ops-alerts",
            hint="A channel name like #ops-alerts or a channel ID like C012ABCDEF. Invite Pulser to it.",
        ),
        _text_input(
            "interval_minutes", "Check every (minutes)", initial=str(interval_minutes), placeholder="5",
            hint="1 to 60. Heroku allows 4,500 API requests an hour; Pulser stays within that.",
        ),
        _context("Changes apply at once, without a restart, and are kept across restarts."),
    ]
    return {
        "type": "modal",
        "callback_id": CONFIG_CALLBACK,
        "title": _plain("Heroku monitoring"),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "blocks": blocks,
    }


def submitted_settings(values: Mapping[str, Any]) -> dict[str, str]:
    """A submitted form's `view.state.values` by field name; an empty input is ""."""
    out: dict[str, str] = {}
    for field in FIELDS:
        actions = values.get(field) or {}
        action = actions.get(field) or next(iter(actions.values()), None) or {}
        out[field] = str(action.get("value") or "")
    return out


def form_errors(errors: Mapping[str, str], *, fallback: str = "apps") -> dict[str, str]:
    """Validator errors keyed by the blocks that show them; an unknown field lands on `fallback`."""
    out: dict[str, str] = {}
    for field, message in errors.items():
        block = field if field in FIELDS else fallback
        out[block] = f"{out[block]} {message}" if block in out else message
    return out


def saved_message(*, apps: Sequence[str], channel: str, interval_minutes: int) -> dict:
    """What the admin who saved the form sees."""
    if apps:
        listed = ", ".join(escape(a) for a in apps[:30]) + (f" and {len(apps) - 30} more" if len(apps) > 30 else "")
        text = (
            f":white_check_mark: Heroku monitoring saved: {listed} every {interval_minutes} min → "
            f"{channel_ref(channel)}. The next poll starts now."
        )
    else:
        text = f":white_check_mark: Heroku monitoring saved: no apps, so monitoring is off. Alerts would go to {channel_ref(channel)}."
    return one_line(text)


# --- small builders ----------------------------------------------------------------------------------


def _as_datetime(moment: datetime | str | None) -> datetime | None:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if isinstance(moment, str) and moment:
        try:
            return _as_datetime(datetime.fromisoformat(moment.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _state_order(state: str) -> tuple[int, str]:
    return (0 if state == "up" else 1, state)


def _health_emoji(dynos: Mapping[str, Mapping[str, int]]) -> str:
    states = {state for counts in dynos.values() for state, n in counts.items() if n}
    if states & TROUBLED_STATES:
        return ":red_circle:"
    return ":large_green_circle:" if states else ":white_circle:"


def _not_monitored(monitored: bool) -> str:
    return "" if monitored else " · _not monitored by Pulser_"


def _app_block_id(app: str) -> str:
    return f"heroku_app:{app}"[:255]


def _fit(text: str) -> str:
    return text if len(text) <= SECTION_TEXT_MAX else text[: SECTION_TEXT_MAX - 1] + "…"


def _strip_marks(mrkdwn: str) -> str:
    """The header as notification text: no emoji codes or bold marks."""
    return re.sub(r":[a-z_]+: ", "", mrkdwn).replace("*", "")


