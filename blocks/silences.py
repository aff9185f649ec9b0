"""Block Kit for silences: the `/pulser silence list` answer (with an Expire button per silence),
the "silenced" confirmation, errors and refusals.

Pure functions over plain values: the handler words matchers and durations (domain knowledge in
`alerts/`) and hands them over as `SilenceSummary`. User text (matchers, comments, who) goes
through `escape`, so a comment saying `<!channel>` is shown, never obeyed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from blocks.kit import context as _context, count_noun, escape, plain as _plain, section as _section

EXPIRE = "silences_expire"
MAX_MESSAGE_BLOCKS = 50  # Slack rejects a message with more
LIST_SHOWN = MAX_MESSAGE_BLOCKS - 3  # one block each, plus notice, header and footer
EXAMPLE = "/pulser silence env=staging service=api 2h maintenance window"
USAGE = "/pulser silence <label>=<value>… <duration> [comment]"
TEXT_MAX = 1200  # per user text in one section; two of them and a line of dates stay under 3000
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


@dataclass(frozen=True)
class SilenceSummary:
    """One silence as Slack shows it; texts are ready to display (not yet escaped)."""

    id: int
    matchers: str  # 'env="staging" service="api"'
    state: str  # active | pending | expired
    starts_at: datetime
    ends_at: datetime
    until: str  # how long until it ends (active) or starts (pending): "1 h 59 min"
    created_by: str  # a Slack user ID, "api" or what the API caller named
    comment: str = ""
    expired_by: str | None = None


def _ephemeral(text: str, blocks: list[dict] | None = None) -> dict:
    message: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        message["blocks"] = blocks
    return message


def when(at: datetime) -> str:
    """Slack renders the time in each reader's own zone; the fallback is UTC."""
    utc = at.astimezone(timezone.utc)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} at {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


def who(actor: str) -> str:
    """A Slack user ID as a mention (ephemeral mentions notify nobody); anything else as text."""
    return f"<@{actor}>" if _SLACK_USER.fullmatch(actor) else escape(actor)


def clipped(text: str, limit: int = TEXT_MAX) -> str:
    """`text` escaped and cut to `limit` characters (never inside an entity like &amp;), so a
    section with matchers and a comment stays under Slack's 3000."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _code(text: str) -> str:
    return "`" + clipped(text).replace("`", "'") + "`"


def expire_confirm(silence: SilenceSummary) -> dict:
    """Slack's own "are you sure" dialog (plain text, so no escaping)."""
    return {
        "title": _plain("End this silence?"),
        "text": _plain(f"Alerts matching {silence.matchers[:200]} will reach Slack again."),
        "confirm": _plain("End it"),
        "deny": _plain("Keep it"),
        "style": "danger",
    }


def _silence_block(silence: SilenceSummary) -> dict:
    if silence.state == "pending":
        timing = f"⏳ Starts {when(silence.starts_at)} (in {escape(silence.until)}), ends {when(silence.ends_at)}"
    else:
        timing = f"Ends {when(silence.ends_at)} (in {escape(silence.until)})"
    text = f"🔕 *#{silence.id}* {_code(silence.matchers)}\n{timing} · by {who(silence.created_by)}"
    if silence.comment:
        text += f"\n💬 {clipped(silence.comment)}"
    button = {
        "type": "button",
        "text": _plain("Expire"),
        "action_id": EXPIRE,
        "value": str(silence.id),
        "style": "danger",
        "confirm": expire_confirm(silence),
    }
    return _section(text, f"silence_{silence.id}", accessory=button)


def silences_list(
    silences: Sequence[SilenceSummary], *, inhibition_rules: int = 0, notice: str | None = None, more: bool = False
) -> dict:
    """The ephemeral `/pulser silence list` answer. `notice` (mrkdwn, see `change_notice`) goes on
    top; `more` says storage had more than fit; `inhibition_rules` is how many rules exist."""
    blocks: list[dict] = [_context(notice)] if notice else []
    shown = list(silences)[:LIST_SHOWN]
    active = sum(1 for s in shown if s.state == "active")
    pending = len(shown) - active
    if not shown:
        blocks.append(_section(
            f"*Silences* · none active. Admins can hold back matching alerts for a while with `{EXAMPLE}`.",
            "silences_header",
        ))
        text = "No active silences."
    else:
        header = f"*Silences* · {active} active" + (f" · {pending} pending" if pending else "")
        blocks.append(_section(header, "silences_header"))
        blocks += [_silence_block(s) for s in shown]
        text = count_noun(active, "active silence") + (f", {pending} pending" if pending else "")
    footer = []
    if more or len(silences) > len(shown):
        footer.append("…and more not shown: `GET /api/silences` lists them all.")
    if shown:
        footer.append("Expire needs admin rights; `/pulser silence expire <id>` works too.")
    if inhibition_rules:
        footer.append(f"{count_noun(inhibition_rules, 'inhibition rule')} active (GET /api/inhibitions)")
    if footer:
        blocks.append(_context(" ".join(footer)))
    return _ephemeral(text, blocks)


def change_notice(change: str, silence_id: int, matchers: str = "") -> str:
    """One line on top of a refreshed list saying what happened (mrkdwn, matchers escaped)."""
    return {
        "expired": f"🔔 Expired silence *#{silence_id}* {_code(matchers)}: matching alerts reach Slack again.",
        "ended": f"Silence *#{silence_id}* had already ended; here are the active ones.",
        "missing": f"There is no silence *#{silence_id}*; here are the active ones.",
    }[change]


def silence_created(silence: SilenceSummary) -> dict:
    """What the person who silenced sees: what, until when, and how to end it early."""
    blocks = [
        _section(
            f"🔕 Silenced alerts matching {_code(silence.matchers)} until {when(silence.ends_at)} "
            f"(for {escape(silence.until)}).",
            "silence_created",
        ),
    ]
    if silence.comment:
        blocks.append(_section(f"💬 {clipped(silence.comment)}", "silence_comment"))
    blocks.append(_context(
        f"Silence *#{silence.id}*. End it early with `/pulser silence expire {silence.id}`; "
        "`/pulser silence list` shows all."
    ))
    utc = silence.ends_at.astimezone(timezone.utc)
    text = f"Silenced {escape(silence.matchers)} until {utc:%Y-%m-%d %H:%M} UTC (silence #{silence.id})."
    return _ephemeral(text, blocks)


def silence_error(problem: str) -> dict:
    """Bad input: what to fix (the domain's words), the usage and an example. Nothing was stored."""
    blocks = [
        _section(f":warning: {clipped(problem, 2500)}", "silence_error"),
        _context(f"Usage: `{escape(USAGE)}` — e.g. `{EXAMPLE}`. Durations: 30m, 2h, 1d, 1h30m (1 minute to 90 days)."),
    ]
    return _ephemeral(f"Nothing was silenced: {escape(problem)}", blocks)


def silence_usage() -> dict:
    lines = [
        f"`{escape(USAGE)}` — hold back matching alerts, e.g. `{EXAMPLE}` (admins).",
        "Matchers: `label=value`, `label!=value`, `label=~regex`, `label!~regex`; quote values with "
        'spaces (`alertname="Disk full"`). Labels: the alert\'s tags plus source, service, env, severity, fingerprint.',
        "`/pulser silence list` — active silences. `/pulser silence expire <id>` — end one early (admins).",
    ]
    return _ephemeral("How to silence alerts", [_section("\n".join(lines), "silence_usage")])


def refused(reason: str) -> dict:
    """A polite no (`reason` says who may) that points at what anyone can do."""
    return _ephemeral(f":lock: {reason} Anyone can see silences with `/pulser silence list`.")
