"""Silences from Slack: `/pulser silence [list]`, `/pulser silence <matchers> <duration> [comment]`,
`/pulser silence expire <id>`, and the list's Expire button.

Thin on purpose: parse with `alerts.matchers`, check admin rights, change `storage.silences`,
audit, answer with `blocks.silences`. Command answers ride on the ack (ephemeral, no extra round
trip); a button click acks first and answers through its response_url.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from alerts.applications import format_duration
from alerts.matchers import DurationError, MatcherError, matchers_text, parse_silence_args, silence_matchers, silence_state
from blocks.silences import (
    EXPIRE,
    LIST_SHOWN,
    SilenceSummary,
    change_notice,
    refused,
    silence_created,
    silence_error,
    silence_usage,
    silences_list,
)
from alerts.managed import is_managed, managed_notice
from handlers.slack.admin import is_admin, refusal
from handlers.slack.services import SlackServices
from storage import silences as store
from storage.audit import record_action

log = structlog.get_logger(__name__)

SILENCE_ID = re.compile(r"#?([0-9]{1,18})")
# Slack sends &, < and > HTML-escaped, and some clients type curly quotes.
_SLACK_TEXT = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"}
_SLACK_ESCAPES = re.compile("|".join(map(re.escape, _SLACK_TEXT)))


def summarize(row: Mapping[str, Any], now: datetime) -> SilenceSummary:
    """A stored silence as Slack shows it, as of `now`."""
    state = silence_state(row, now)
    until = row["starts_at"] if state == "pending" else row["ends_at"]
    matchers = silence_matchers(row)
    return SilenceSummary(
        id=row["id"],
        matchers=matchers_text(matchers) if matchers else "(unreadable matchers)",
        state=state,
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        until=format_duration(max(0.0, (until - now).total_seconds())),
        created_by=row["created_by"],
        comment=row["comment"],
        expired_by=row["expired_by"],
    )


async def list_message(services: SlackServices, notice: str | None = None) -> dict:
    now = datetime.now(timezone.utc)
    rows = await store.list_silences(services.pool, now=now, limit=LIST_SHOWN + 1)
    rules = await store.count_inhibition_rules(services.pool)
    return silences_list(
        [summarize(r, now) for r in rows[:LIST_SHOWN]], inhibition_rules=rules, notice=notice,
        more=len(rows) > LIST_SHOWN,
    )


async def expire(services: SlackServices, user: str, silence_id: int) -> str:
    """End a silence for `user` (already known to be an admin), audit it; the notice to show."""
    now = datetime.now(timezone.utc)
    existing = await store.get_silence(services.pool, silence_id)
    if existing is not None and is_managed(existing):
        return managed_notice("Silence", f"#{silence_id}")
    ended = await store.expire_silence(services.pool, silence_id, by=user, now=now)
    if ended is None:
        existing = await store.get_silence(services.pool, silence_id)
        return change_notice("ended" if existing else "missing", silence_id)
    text = summarize(ended, now).matchers
    await record_action(
        services.pool, actor=user, action="silence.expire", target_type="silence", target_id=silence_id,
        details={"matchers": text, "ends_at": now.isoformat()},
    )
    log.info("silence.expired", silence_id=silence_id, user=user)
    return change_notice("expired", silence_id, text)


# --- /pulser silence … (dispatched by handlers.slack.commands) -----------------------------------


async def silence_command(
    *, ack: AsyncAck, command: dict, args: str = "", client, services: SlackServices, **_: Any
) -> None:
    word, _, rest = args.strip().partition(" ")
    sub = word.lower()
    if sub in ("", "list"):
        await ack(**await list_message(services))
    elif sub == "help":
        await ack(**silence_usage())
    elif sub == "expire":
        await _expire_command(ack, command, rest.strip(), client, services)
    else:
        await _create_command(ack, command, args, client, services)


async def _create_command(ack: AsyncAck, command: dict, args: str, client, services: SlackServices) -> None:
    user = command["user_id"]
    if not await is_admin(client, user, services.admins):
        await ack(**refused(refusal("create silences")))
        return
    try:
        request = parse_silence_args(from_slack(args))
    except (MatcherError, DurationError) as exc:
        await ack(**silence_error(str(exc)))
        return
    now = datetime.now(timezone.utc)
    row = await store.create_silence(
        services.pool,
        matchers=[m.to_json() for m in request.matchers],
        starts_at=now,
        ends_at=now + request.duration,
        comment=request.comment,
        created_by=user,
    )
    await record_action(
        services.pool, actor=user, action="silence.create", target_type="silence", target_id=row["id"],
        details={
            "matchers": row["matchers"], "starts_at": row["starts_at"].isoformat(),
            "ends_at": row["ends_at"].isoformat(), "comment": row["comment"],
        },
    )
    log.info("silence.created", silence_id=row["id"], user=user, duration_s=int(request.duration.total_seconds()))
    await ack(**silence_created(summarize(row, now)))


async def _expire_command(ack: AsyncAck, command: dict, target: str, client, services: SlackServices) -> None:
    user = command["user_id"]
    if not await is_admin(client, user, services.admins):
        await ack(**refused(refusal("expire silences")))
        return
    match = SILENCE_ID.fullmatch(target)
    if match is None:
        problem = f"`{target}` is not a silence number" if target else "say which silence to end"
        await ack(**silence_error(f"{problem}: e.g. `/pulser silence expire 12`; `/pulser silence list` shows the numbers"))
        return
    notice = await expire(services, user, int(match.group(1)))
    await ack(**await list_message(services, notice))


# --- the list's Expire button ------------------------------------------------------------------


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(EXPIRE)
    async def on_expire(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        match = SILENCE_ID.fullmatch(str((body.get("actions") or [{}])[0].get("value") or ""))
        if match is None:
            await respond(text="That button did not name a silence.", response_type="ephemeral", replace_original=False)
            return
        silence_id = int(match.group(1))
        if not await is_admin(client, user, services.admins):
            await record_action(
                services.pool, actor=user, action="silence.expire_refused", target_type="silence",
                target_id=silence_id, details={},
            )
            await respond(replace_original=False, **refused(refusal("expire silences")))
            return
        notice = await expire(services, user, silence_id)
        await respond(replace_original=True, **await list_message(services, notice))


def from_slack(text: str) -> str:
    """Command text as the person typed it: Slack's HTML escapes undone, curly quotes straightened."""
    return _SLACK_ESCAPES.sub(lambda m: _SLACK_TEXT[m.group(0)], text or "")
