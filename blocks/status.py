"""Block Kit for `/pulser status` (what Pulser watches and how it stands) and `/pulser health`
(how Pulser itself is doing).

Pure functions over plain values: rows as `storage.dashboard` returns them and the runtime's
/health report. Names, titles and errors come from outside (senders, Heroku, people), so they go
through `escape` and are clipped; lists are capped and say how many they left out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from blocks.heroku import clip, escape, monitoring_line
from blocks.incidents import SEVERITY_EMOJI, UNKNOWN_SEVERITY_EMOJI
from blocks.kit import channel_ref, context as _context, count_noun, section as _section

LIST_SHOWN = 10  # named items per list; the rest are counted
TITLE_SHOWN = 80
ERROR_SHOWN = 120
APP_STATUS_EMOJI = {"up": "🟢", "late": "🟡", "down": "🔴", "new": "⚪", "paused": "⏸️"}
APP_STATUS_ORDER = ("down", "late", "up", "new", "paused")  # what needs a human first
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
HEALTH_EMOJI = {
    "up": ":large_green_circle:",
    "down": ":red_circle:",
    "disabled": ":white_circle:",
    "degraded": ":large_yellow_circle:",
}
UNKNOWN_HEALTH_EMOJI = ":grey_question:"
# /health's parts in reading order, with the names people know them by.
HEALTH_PARTS = {
    "database": "Database",
    "socket_mode": "Socket Mode",
    "scheduler": "Scheduler",
    "heartbeat_watcher": "Heartbeat watcher",
    "ledger": "Envelope ledger",
    "slack_delivery": "Slack delivery",
    "heroku": "Heroku API",
}
NOT_HEALTH = {"webhooks", "applications", "incidents"}  # webhooks get a line per source; the rest is /pulser status


# --- small words ----------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 4 h': the largest two units a person reads at a glance."""
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def relative(moment: datetime | str | None, now: datetime, *, never: str = "never") -> str:
    """'12 min ago' or 'in 30 s'; `never` when there is no moment."""
    when = _as_datetime(moment)
    if when is None:
        return never
    seconds = (now - when).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{duration(seconds)} ago" if seconds > 0 else f"in {duration(-seconds)}"


def more_line(shown: int, total: int, where: str) -> str | None:
    """'…and 12 more — <where>' when a list was cut."""
    return f"…and {total - shown:,} more — {where}" if total > shown else None


def app_counts_text(counts: Mapping[str, int]) -> str:
    """'🔴 2 down · 🟢 40 up': statuses that have apps, most urgent first."""
    parts = [f"{APP_STATUS_EMOJI[s]} {counts[s]:,} {s}" for s in APP_STATUS_ORDER if counts.get(s)]
    return " · ".join(parts) if parts else "none"


def severity_counts_text(by_severity: Mapping[str, int]) -> str:
    """':red_circle: 1 critical · :large_orange_circle: 2 high', most urgent first."""
    return " · ".join(
        f"{SEVERITY_EMOJI.get(s, UNKNOWN_SEVERITY_EMOJI)} {by_severity[s]:,} {s}" for s in SEVERITY_ORDER if by_severity.get(s)
    )


def down_apps_text(apps: Mapping[str, Any], now: datetime, *, where: str = "`/pulser apps` lists them all") -> str | None:
    """'Down: *api* (12 min), *cron* (3 h)' with the rest counted; None when nothing is down."""
    down = list(apps.get("down") or [])[:LIST_SHOWN]
    total = int((apps.get("counts") or {}).get("down", len(down)))
    if not down:
        return None
    names = ", ".join(
        f"*{escape(clip(app['name'], 60))}*" + (f" ({duration((now - app['down_since']).total_seconds())})" if app.get("down_since") else "")
        for app in down
    )
    line = f"🔴 Down: {names}"
    more = more_line(len(down), total, where)
    return line + (f"\n{more}" if more else "")


def incident_line(incident: Mapping[str, Any], now: datetime) -> str:
    """One open incident: severity, title, where, how long, and who has it (or that nobody does)."""
    emoji = SEVERITY_EMOJI.get(incident.get("severity", ""), UNKNOWN_SEVERITY_EMOJI)
    place = " · ".join(escape(clip(p, 40)) for p in (incident.get("service"), incident.get("env")) if p)
    parts = [f"{emoji} *{escape(clip(incident.get('title') or '(untitled)', TITLE_SHOWN))}*"]
    if place:
        parts.append(place)
    if incident.get("first_seen"):
        parts.append(f"open {duration((now - incident['first_seen']).total_seconds())}")
    if incident.get("count", 1) > 1:
        parts.append(f"×{incident['count']:,}")
    if incident.get("acked_at"):
        parts.append(f"acked by {_who(incident.get('acked_by'))}")
    else:
        parts.append("*not acknowledged*")
    snoozed = _as_datetime(incident.get("snoozed_until"))
    if snoozed and snoozed > now:
        parts.append(f"snoozed {relative(snoozed, now)}")
    if incident.get("slack_channel"):
        parts.append(f"in {channel_ref(incident['slack_channel'])}")
    return " · ".join(parts)


def incidents_text(incidents: Mapping[str, Any], now: datetime, *, where: str) -> str:
    """Counts by severity, then the listed incidents (unacknowledged and oldest first)."""
    total = int(incidents.get("total") or 0)
    if not total:
        return "No open incidents."
    head = f"{count_noun(total, 'firing incident')}, {incidents.get('unacked', 0):,} not acknowledged: "
    head += severity_counts_text(incidents.get("by_severity") or {})
    listed = list(incidents.get("oldest") or [])[:LIST_SHOWN]
    lines = [head] + [f"• {incident_line(i, now)}" for i in listed]
    if more := more_line(len(listed), total, where):
        lines.append(more)
    return "\n".join(lines)


def _who(actor: str | None) -> str:
    if not actor:
        return "someone"
    return f"<@{actor}>" if actor[:1] in ("U", "W") and actor.isalnum() else escape(actor)


def _as_datetime(moment: datetime | str | None) -> datetime | None:
    if moment is None or isinstance(moment, datetime):
        return moment
    try:
        parsed = datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def stamp(now: datetime) -> str:
    """Slack renders the time in each reader's zone; the fallback is UTC."""
    utc = now.astimezone(timezone.utc)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


# --- /pulser status -------------------------------------------------------------------------------


def heroku_app_line(app: Mapping[str, Any], now: datetime) -> str:
    """One monitored app from its stored state: crashed and down dynos by name, when last polled."""
    name = f"*{escape(str(app.get('app')))}*"
    dynos = app.get("dynos")
    if dynos is None:
        return f":white_circle: {name} · not polled yet"
    crashed = sorted(n for n, d in dynos.items() if (d or {}).get("state") == "crashed")
    down = sorted(n for n, d in dynos.items() if (d or {}).get("state") == "down")
    problems = []
    if crashed:
        problems.append(f"{len(crashed)} crashed ({escape(clip(', '.join(crashed), 80))})")
    if down:
        problems.append(f"{len(down)} down ({escape(clip(', '.join(down), 80))})")
    emoji = ":red_circle:" if problems else ":large_green_circle:"
    state = " · ".join(problems) if problems else f"{count_noun(len(dynos), 'dyno')}, none crashed or down"
    parts = [f"{emoji} {name}", state, f"polled {relative(app.get('polled_at'), now)}"]
    if app.get("error"):
        parts.append(f":warning: {escape(clip(app['error'], ERROR_SHOWN))}")
    return " · ".join(parts)


def heroku_text(heroku: Mapping[str, Any] | None, now: datetime) -> str:
    if heroku is None:
        return "Heroku monitoring does not run in this Pulser process."
    line = monitoring_line(
        active=bool(heroku.get("active")), why=heroku.get("why"), apps=len(heroku.get("names") or ()),
        interval_minutes=int(heroku.get("interval_minutes") or 0), channel=str(heroku.get("channel") or ""),
    )
    shown = list(heroku.get("apps") or [])[:LIST_SHOWN]
    lines = [line] + [f"• {heroku_app_line(app, now)}" for app in shown]
    if more := more_line(len(shown), len(heroku.get("names") or ()), "`/heroku-status` shows each app"):
        lines.append(more)
    return "\n".join(lines)


def matchers_text(matchers: Iterable[Mapping[str, Any]]) -> str:
    """[{"name": "env", "op": "=", "value": "staging"}] → 'env="staging"'."""
    return " ".join(f'{m.get("name")}{m.get("op", "=")}"{m.get("value")}"' for m in matchers) or "everything"


def silence_line(silence: Mapping[str, Any], now: datetime) -> str:
    starts, ends = _as_datetime(silence.get("starts_at")), _as_datetime(silence.get("ends_at"))
    parts = [f"`{escape(clip(matchers_text(silence.get('matchers') or []), 120))}`"]
    if starts and starts > now:
        parts.append(f"starts {relative(starts, now)}")
    if ends:
        parts.append(f"ends {relative(ends, now)}")
    parts.append(f"by {_who(silence.get('created_by'))}")
    if silence.get("comment"):
        parts.append(f"“{escape(clip(silence['comment'], 80))}”")
    return " · ".join(parts)


def quiet_text(quiet: Mapping[str, int], silences: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """Silences (active, and those still to start), incidents held back or snoozed, snoozed apps."""
    active, pending, held, snoozed, apps = (
        int(quiet.get(k) or 0)
        for k in ("active_silences", "pending_silences", "held_back", "snoozed_incidents", "snoozed_apps")
    )
    if not (active or pending or held or snoozed or apps):
        return "Nothing is silenced."
    head = f"{count_noun(active, 'active silence')}"
    if pending:
        head += f", {pending:,} starting later"
    if held:
        head += f"; {count_noun(held, 'firing incident')} held back from Slack (silenced or inhibited)"
    if snoozed:
        head += f"; {count_noun(snoozed, 'incident')} snoozed"
    if apps:
        head += f"; {count_noun(apps, 'heartbeat app')} snoozed"
    shown = list(silences)[:LIST_SHOWN]
    lines = [head] + [f"• {silence_line(s, now)}" for s in shown]
    if more := more_line(len(shown), active + pending, "`/pulser silence list`"):
        lines.append(more)
    return "\n".join(lines)


def status_message(
    *,
    apps: Mapping[str, Any],
    incidents: Mapping[str, Any],
    heroku: Mapping[str, Any] | None,
    quiet: Mapping[str, int],
    silences: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict:
    """The ephemeral `/pulser status` answer: heartbeats, incidents, Heroku, silences."""
    app_lines = [f"*Heartbeat apps* · {count_noun(int(apps.get('total') or 0), 'app')}: {app_counts_text(apps.get('counts') or {})}"]
    if down := down_apps_text(apps, now):
        app_lines.append(down)
    blocks = [
        _section(f"*Pulser status* · {stamp(now)}", "status_header"),
        {"type": "divider"},
        _section("\n".join(app_lines), "status_apps"),
        _section("*Open incidents* · " + incidents_text(incidents, now, where="see the alert channels"), "status_incidents"),
        _section("*Heroku* · " + heroku_text(heroku, now), "status_heroku"),
        _section("*Silenced* · " + quiet_text(quiet, silences, now), "status_silences"),
        _context("`/pulser health` shows how Pulser itself is doing."),
    ]
    down_count = int((apps.get("counts") or {}).get("down") or 0)
    text = (
        f"Pulser status: {count_noun(down_count, 'app')} down, "
        f"{count_noun(int(incidents.get('total') or 0), 'open incident')}, "
        f"{count_noun(int(quiet.get('active_silences') or 0), 'active silence')}"
    )
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


# --- /pulser health -------------------------------------------------------------------------------


def health_emoji(status: str | None) -> str:
    return HEALTH_EMOJI.get(status or "", UNKNOWN_HEALTH_EMOJI)


def _part_detail(name: str, part: Mapping[str, Any], now: datetime) -> str:
    """What a person wants to know about one part, beyond its colour."""
    status = part.get("status")
    if name == "database":
        return f"answers in {part['latency_ms']} ms" if "latency_ms" in part else f"unreachable ({escape(str(part.get('error', '?')))})"
    if name == "socket_mode":
        if status == "disabled":
            return escape(part.get("detail", "not run here"))
        if status == "up":
            return "connected"
        return f"disconnected for {duration(part['down_seconds'])}" if part.get("down_seconds") is not None else "disconnected"
    if name == "scheduler":
        return _scheduler_detail(part, now)
    if name == "heartbeat_watcher":
        return f"last ran {relative(part.get('last_run'), now)} · {count_noun(int(part.get('missed_total') or 0), 'missed heartbeat')} seen"
    if name == "ledger":
        if "error" in part:
            return f"unreadable ({escape(str(part['error']))})"
        return " · ".join(f"{part.get(k, 0):,} {k}" for k in ("received", "processed", "failed"))
    if name == "slack_delivery":
        return _slack_detail(part, now)
    if name == "heroku":
        return _heroku_detail(part, now)
    extras = [f"{k} {v}" for k, v in part.items() if k != "status" and isinstance(v, (str, int, float))]
    return escape(clip(" · ".join(extras), 200)) if extras else (status or "unknown")


def _scheduler_detail(part: Mapping[str, Any], now: datetime) -> str:
    """Jobs by id, each with its last and next run where the report gives them: as job dicts
    ({"id", "last_run", "next_run"}) or as `last_runs` / `next_runs` maps keyed by job id."""
    if part.get("status") != "up":
        return "not running"
    last_runs, next_runs = part.get("last_runs") or {}, part.get("next_runs") or {}
    words = []
    jobs = list(part.get("jobs") or [])
    for job in jobs:
        info = job if isinstance(job, Mapping) else {"id": job}
        job_id = str(info.get("id"))
        last, upcoming = info.get("last_run") or last_runs.get(job_id), info.get("next_run") or next_runs.get(job_id)
        runs = ([f"last {relative(last, now)}"] if last else []) + ([f"next {relative(upcoming, now)}"] if upcoming else [])
        words.append(f"`{escape(job_id)}`" + (f" ({', '.join(runs)})" if runs else ""))
    return f"running · {count_noun(len(jobs), 'job')}" + (f": {', '.join(words)}" if words else "")


def _slack_detail(part: Mapping[str, Any], now: datetime) -> str:
    words = [f"last delivery {relative(part.get('last_delivery'), now)}"]
    if part.get("error"):
        words.append(f"Slack refuses the token ({escape(str(part['error']))})")
    if part.get("channel_errors"):
        words.append("refused in " + ", ".join(f"{channel_ref(c)} ({escape(str(e))})" for c, e in part["channel_errors"].items()))
    if part.get("throttled_channels"):
        words.append("rate-limited in " + ", ".join(channel_ref(c) for c in part["throttled_channels"]))
    if part.get("incident_messages_pending"):
        words.append(f"{count_noun(part['incident_messages_pending'], 'message')} waiting")
    if part.get("incident_messages_failed"):
        words.append(f"{count_noun(part['incident_messages_failed'], 'message')} given up")
    return " · ".join(words)


def _heroku_detail(part: Mapping[str, Any], now: datetime) -> str:
    if part.get("status") == "disabled":
        return f"not monitoring: {escape(str(part.get('detail') or 'disabled'))}"
    words = [f"last successful poll {relative(part.get('last_successful_poll'), now)}"]
    if part.get("rate_limit_remaining") is not None:
        words.append(f"rate-limit budget {count_noun(part['rate_limit_remaining'], 'request')} left")
    if part.get("errors"):
        words.append("failing for " + ", ".join(escape(a) for a in part["errors"]))
    elif part.get("last_error"):
        words.append(f"last error: {escape(clip(str(part['last_error']), ERROR_SHOWN))}")
    return " · ".join(words)


def webhook_lines(webhooks: Mapping[str, Any], now: datetime) -> list[str]:
    """One line per source: green when it delivers, yellow when silent too long, white when no
    secret is configured (Pulser refuses its deliveries)."""
    lines = []
    for source, entry in sorted((webhooks.get("sources") or {}).items()):
        if not entry.get("configured"):
            status, detail = "disabled", "no secret configured"
        elif entry.get("silent"):
            status, detail = "degraded", f"silent for {duration(entry.get('silent_for_seconds') or 0)}"
        else:
            status, detail = "up", f"last delivery {relative(entry.get('last_received'), now)}"
        if not entry.get("configured") and entry.get("last_received"):
            detail += f" (last delivery {relative(entry['last_received'], now)})"
        lines.append(f"{health_emoji(status)} *Webhook · {escape(source)}* · {detail}")
    return lines


def health_message(report: Mapping[str, Any], *, now: datetime) -> dict:
    """The ephemeral `/pulser health` answer: one line per part, coloured by its status."""
    components = report.get("components") or {}
    names = [n for n in HEALTH_PARTS if n in components]
    names += sorted(n for n in components if n not in HEALTH_PARTS and n not in NOT_HEALTH)
    lines = [
        f"{health_emoji(components[n].get('status'))} *{HEALTH_PARTS.get(n, escape(n.replace('_', ' ').capitalize()))}* · "
        f"{_part_detail(n, components[n], now)}"
        for n in names
    ]
    lines += webhook_lines(components.get("webhooks") or {}, now)
    statuses = [components[n].get("status") for n in names] + [(components.get("webhooks") or {}).get("status")]
    worst = "down" if "down" in statuses else "degraded" if "degraded" in statuses else "up"
    summary = {"up": "all parts working", "degraded": "working, some parts degraded", "down": "some parts are down"}[worst]
    header = (
        f"{health_emoji(worst)} *Pulser health* · {summary} · version {escape(str(report.get('version', '?')))}, "
        f"{escape(str(report.get('mode', '?')))} mode, up {duration(float(report.get('uptime_seconds') or 0))}"
    )
    blocks = [_section(header, "health_header"), {"type": "divider"}]
    blocks += [_section("\n".join(chunk), f"health_parts_{i}") for i, chunk in enumerate(_chunks(lines, 3000))]
    blocks.append(_context(
        ":large_green_circle: working · :large_yellow_circle: degraded · :red_circle: down · :white_circle: disabled"
    ))
    return {"response_type": "ephemeral", "text": f"Pulser health: {summary}", "blocks": blocks}


def _chunks(lines: list[str], limit: int) -> list[list[str]]:
    """Lines grouped so that each group's text fits one section."""
    groups: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if groups[-1] and size + len(line) + 1 > limit:
            groups.append([])
            size = 0
        groups[-1].append(line[:limit])
        size += len(line) + 1
    return [g for g in groups if g]
