"""The `/pulser help` message."""

from __future__ import annotations

# (usage, what it does); later capabilities add their lines here as they land.
COMMANDS: list[tuple[str, str]] = [
    ("/pulser help", "Show this help."),
    ("/pulser apps", "List monitored apps with status and last heartbeat; pause, edit, delete, see heartbeats."),
    ("/pulser register [name]", "Register an app for heartbeat monitoring and get its curl lines (admins)."),
    ("/pulser rules", "Alert routing rules in order: add, edit, delete, move (admins change them)."),
    ("/pulser silence env=staging service=api 2h [comment]", "Silence matching alerts for a while (admins)."),
    ("/pulser silence list | expire <id>", "Active silences; end one early."),
    ("/pulser incidents [status=open] [env=prod] [severity>=high] [service=…] [source=…] [tag=k=v] [assignee=@me] [since=24h]",
     "Incidents by filter, newest first (or sort=oldest-unacked), with Open, Ack and Resolve."),
    ("/pulser status", "Heartbeat apps, open incidents, Heroku apps and what is silenced, at a glance."),
    ("/pulser health", "Pulser's own parts: database, Slack connection, jobs, webhooks, Slack delivery, Heroku API."),
    ("/pulser deploy <service> [ref]", "Deploy a service (with approval where it requires it)."),
    ("/pulser deploy services | add | edit <name> | remove <name>", "Deployable services; add, edit or remove one (admins)."),
    ("/pulser events [route <type> #channel]", "Where each platform event type is posted; change one (admins)."),
    ("/pulser oncall [schedule]", "Who is on call now, until when, and who is next; one schedule with its next shifts."),
    ("/pulser oncall override <schedule> <person> <start> <end>",
     "Put someone (a member ID U… or @me) on call for a while, e.g. `now +4h` or `2026-12-08 09:00 2026-12-08 17:00` (admins; or the Add override button)."),
    ("/pulser me [test]", "How you are reached when paged: Slack DM, SMS, e-mail, each after N minutes; `test` sends a test page."),
    ("/pulser escalation", "Escalation policies and their steps (`wait 15`, `slack #ops`, `oncall Primary`, `send discord-ops` …); add, edit, delete (admins)."),
    ("/pulser channels", "Outbound channels (e-mail, Discord, Teams, webhook, GitHub, SMS, PagerDuty): add, edit, delete, send a test (admins)."),
]

CAPABILITIES = [
    ":heartbeat: *Heartbeats* — apps POST to `/heartbeat/{uuid}`; Pulser alerts when one misses its window.",
    ":rotating_light: *Alerts* — Sentry, Alertmanager, GitHub and generic webhooks, grouped into incidents "
    "with Ack / Snooze / Resolve / Investigate.",
    ":cloud: *Heroku* — crashed dynos, releases, config changes, `/heroku-status`.",
    ":control_knobs: *ChatOps* — status, health and deploys from Slack.",
    ":pager: *On call* — rotations, overrides and imported calendars: who is on call now, and a DM when your shift starts.",
]


def help_message(unknown: str | None = None) -> dict:
    """Ephemeral help; with `unknown`, it starts by saying which word was not understood."""
    lines = "\n".join(f"`{usage}` — {what}" for usage, what in COMMANDS)
    intro = "*Pulser* watches what you run and tells you, in Slack, what needs a human."
    blocks: list[dict] = []
    text = intro
    if unknown is not None:
        shown = unknown if len(unknown) <= 40 else unknown[:37] + "..."
        warning = f":warning: I don't know `{_escape(shown)}`. Here is what I can do:"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": warning}})
        text = f"I don't know '{shown}'. " + intro
    blocks += [
        {"type": "section", "text": {"type": "mrkdwn", "text": intro}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(CAPABILITIES)}},
        {"type": "divider"},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Commands*\n" + lines}},
    ]
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


def _escape(text: str) -> str:
    """Slack mrkdwn needs only &, < and > escaped; backticks would break our code span."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")
