"""Block Kit for the App Home dashboard: the last 24 hours of alerts, what is open now, heartbeat
apps, delivery health, and buttons to the forms people use most.

Pure functions over the figures `alerts.home.dashboard_figures` puts together; wording shared with
`/pulser status` comes from `blocks.status`, so both say the same thing the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

from blocks.status import (
    app_counts_text,
    down_apps_text,
    duration,
    incidents_text,
    relative,
    stamp,
)
from blocks.heroku import clip, escape
from blocks.incident_inbox import SAVED_FILTERS
from blocks.kit import context as _context, count_noun, mrkdwn as _mrkdwn, plain as _plain, section as _section
from blocks.oncall import ScheduleStanding, standing_line

REGISTER_APP = "home_register_app"
HOME_INBOX_PREFIX = "home_inbox_"  # + a saved filter's name (blocks.incident_inbox.SAVED_FILTERS)
SEND_TEST = "home_integration_test"  # value: the source
EDIT_RULES = "home_edit_rules"
HEROKU_SETTINGS = "home_heroku_settings"
NOTICE_CALLBACK = "home_notice"
MAX_HOME_BLOCKS = 100  # Slack rejects a Home view with more
SECTION_TEXT_MAX = 3000  # and a section text longer than this
SOURCE_NAMES = {"sentry": "Sentry", "alertmanager": "Alertmanager", "github": "GitHub", "generic": "Generic webhook",
                "heroku": "Heroku", "events": "Platform events", "heartbeat": "Heartbeats"}


def _button(text: str, action_id: str) -> dict:
    return {"type": "button", "text": _plain(text), "action_id": action_id, "value": action_id}


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, escape(source))


def figures_fields(alerts: Mapping[str, Any]) -> list[dict]:
    """The four numbers of the last 24 hours, as section fields."""
    opened = int(alerts.get("incidents_opened") or 0)
    mtta = alerts.get("mtta_seconds")
    return [
        _mrkdwn(f"*Alerts received*\n{int(alerts.get('alerts') or 0):,}"),
        _mrkdwn(f"*Incidents opened*\n{opened:,} · {percent(alerts.get('grouped_share'))} of alerts grouped"),
        _mrkdwn(f"*Acknowledged*\n{percent(alerts.get('ack_rate'))} ({int(alerts.get('acked') or 0):,} of {opened:,})"),
        _mrkdwn(f"*Mean time to acknowledge*\n{'—' if mtta is None else duration(mtta)}"),
    ]


def noisy_text(sources: list[Mapping[str, Any]]) -> str:
    if not sources:
        return "*Noisiest sources* · no alerts in the last 24 hours."
    lines = ["*Noisiest sources* · alerts per incident"]
    for s in sources:
        per = s["alerts"] / s["incidents"] if s.get("incidents") else float(s["alerts"])
        lines.append(
            f"• *{source_name(s['source'])}* · {count_noun(int(s['alerts']), 'alert')} → "
            f"{count_noun(int(s['incidents']), 'incident')} ({per:.1f} per incident)"
        )
    return "\n".join(lines)


def delivery_text(delivery: Mapping[str, Any], now: datetime) -> str:
    """When each webhook source last delivered, and how Slack deliveries go."""
    webhooks = delivery.get("webhooks") or {}
    hooks = " · ".join(f"{source_name(s)} {relative(at, now)}" for s, at in webhooks.items()) or "no sources"
    slack = f"last message delivered {relative(delivery.get('last_slack_delivery'), now)}"
    failures = int(delivery.get("slack_failures") or 0)
    if failures:
        slack += f" · :warning: {count_noun(failures, 'failed call')} in 24 h, last {relative(delivery.get('last_slack_failure'), now)}"
    else:
        slack += " · no failed calls in 24 h"
    return f"*Delivery health*\n*Webhooks in* · last delivery: {hooks}\n*Slack out* · {slack}"


def home_view(figures: Mapping[str, Any], *, now: datetime) -> dict:
    """The Home tab. `figures` as `alerts.home.dashboard_figures` returns them."""
    alerts = figures.get("alerts") or {}
    apps = figures.get("apps") or {}
    app_lines = [f"*Heartbeat apps* · {count_noun(int(apps.get('total') or 0), 'app')}: {app_counts_text(apps.get('counts') or {})}"]
    if down := down_apps_text(apps, now, where="`/pulser apps` lists them all"):
        app_lines.append(down)
    blocks: list[dict] = [
        {"type": "header", "text": _plain("Pulser · the last 24 hours")},
        _context(f"Updated {stamp(now)}. Refreshes when you open this tab and when incidents or heartbeats change."),
        {"type": "section", "block_id": "home_figures", "fields": figures_fields(alerts)},
        _section(noisy_text(list(alerts.get("noisy_sources") or [])), "home_noisy"),
        {"type": "divider"},
        _section("*Open incidents* · " + incidents_text(figures.get("incidents") or {}, now, where="see the alert channels"), "home_incidents"),
        _section("\n".join(app_lines), "home_apps"),
        _section(delivery_text(figures.get("delivery") or {}, now), "home_delivery"),
        _section(on_call_text(figures.get("on_call") or []), "home_on_call"),
        *inbox_blocks(),
        *integration_blocks(figures.get("integrations"), now),
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                _button("Register an app", REGISTER_APP),
                _button("Edit rules", EDIT_RULES),
                _button("Heroku settings", HEROKU_SETTINGS),
            ],
        },
        _context("`/pulser status` and `/pulser health` answer the same questions in any channel."),
    ]
    return {"type": "home", "callback_id": "pulser_home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def on_call_text(standings: Sequence[ScheduleStanding]) -> str:
    if not standings:
        return "*On call* · no schedules yet: `/pulser oncall` says how to add one."
    return clip("*On call*\n" + "\n".join(f"• {standing_line(s)}" for s in standings), SECTION_TEXT_MAX)


def inbox_blocks() -> list[dict]:
    """The saved filters of the incident inbox; each opens the list in a modal."""
    return [
        _section("*Incident inbox* · saved filters", "home_inbox"),
        {
            "type": "actions",
            "block_id": "home_inbox_actions",
            "elements": [
                {"type": "button", "text": _plain(label), "action_id": HOME_INBOX_PREFIX + key, "value": key}
                for key, label, _ in SAVED_FILTERS
            ],
        },
        _context("`/pulser incidents status=open env=prod severity>=high since=24h` lists any filter in a channel."),
    ]


def integration_blocks(integrations: list[Mapping[str, Any]] | None, now: datetime) -> list[dict]:
    """Each webhook source: set up or which variable is missing, last delivery, deliveries in
    24 hours, the last error; a Send test button for each source that can be tested."""
    if not integrations:
        return []
    lines = ["*Integrations*"]
    for item in integrations:
        name = escape(str(item["name"]))
        if not item["configured"]:
            lines.append(f":white_circle: *{name}* · not configured: set `{'`, `'.join(item['missing'])}`")
            continue
        line = (
            f":large_green_circle: *{name}* · last delivery {relative(item['last_delivery'], now)}"
            f" · {count_noun(int(item['deliveries_24h']), 'delivery', 'deliveries')} in 24 h"
        )
        if error := item.get("last_error"):
            line += f" · :warning: last error {relative(error['at'], now)}: {escape(clip(str(error['error']), 150))}"
        lines.append(line)
    buttons = [
        {"type": "button", "text": _plain(f"Send test · {item['name']}"), "action_id": f"{SEND_TEST}:{item['source']}",
         "value": str(item["source"])}
        for item in integrations if item["testable"]
    ]
    blocks = [_section("\n".join(lines), "home_integrations")]
    if buttons:
        blocks.append({"type": "actions", "block_id": "home_integration_tests", "elements": buttons})
    return blocks


def notice_modal(title: str, text: str) -> dict:
    """A one-message modal: how a Home button answers, since Home has no channel to reply in."""
    return {
        "type": "modal",
        "callback_id": NOTICE_CALLBACK,
        "title": _plain(clip(title, 24)),
        "close": _plain("Close"),
        "blocks": [_section(text, "home_notice")],
    }
