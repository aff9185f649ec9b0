"""On-call from Slack: `/pulser oncall [<schedule>]`, `/pulser oncall override <schedule> <person>
<start> <end>` (person: a member ID U…, @me, or a mention when Slack escapes them), and the
"Add override" button with its modal (a user picker).

Anyone may look; only admins add overrides. Answers ride on the ack (computed from Postgres and
the imported calendars' last good copies, never a fetch), so Slack gets them within its 3 s.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.managed import is_managed, managed_notice
from alerts.oncall import OVERRIDE, Schedule, ScheduleNotFound, load_schedule, shifts
from alerts.oncall.changes import Conflict, add_override
from alerts.oncall.people import unknown_users
from alerts.oncall.validation import LOCAL_TIME, ValidationError, validate_override
from alerts.oncall.view import override_json, standing
from blocks.oncall import (
    ADD_OVERRIDE, OVERRIDE_CALLBACK, ScheduleStanding, ShiftLine, oncall_detail, oncall_error, oncall_list,
    override_modal, people, submitted_override, when,
)
from handlers.slack.admin import is_admin, refusal
from handlers.slack.payloads import as_int, channel_of, clicked_id, view_metadata
from handlers.slack.services import SlackServices
from storage import schedules as store
from storage.audit import record_action

log = structlog.get_logger(__name__)

ACTION_WORDS = "add on-call overrides"
# A person in command text: an escaped mention <@U…|name>, a member ID, or @me. With the app's
# /pulser escaping off (deploy/slack-manifest.yml), Slack sends other mentions as a bare @name.
MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
MEMBER_ID = re.compile(r"^([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{2,})$")
DETAIL_SHIFTS = timedelta(days=14)


async def oncall_command(*, ack: AsyncAck, command: dict, args: str = "", client, services: SlackServices, **_: Any) -> None:
    text = args.strip()
    word, _, rest = text.partition(" ")
    if word.lower() == "override" and rest.strip():
        await _override_command(ack, command, rest.strip(), client, services)
    elif not text:
        await ack(**await list_message(services))
    else:
        await ack(**await detail_message(services, text))


async def list_message(services: SlackServices) -> dict:
    now = datetime.now(timezone.utc)
    standings = []
    for row in await store.list_schedules(services.pool):
        schedule = await load_schedule(services.pool, row["id"])
        standings.append(await _standing(services, schedule, now))
    return oncall_list(standings)


async def detail_message(services: SlackServices, name: str, notice: str | None = None) -> dict:
    try:
        schedule = await load_schedule(services.pool, name)
    except ScheduleNotFound:
        return oncall_error(f"There is no on-call schedule named `{_clip(name)}`. `/pulser oncall` lists them.")
    now = datetime.now(timezone.utc)
    return oncall_detail(await _standing(services, schedule, now, detail=True), notice)


async def _standing(services: SlackServices, schedule: Schedule, now: datetime, *, detail: bool = False) -> ScheduleStanding:
    s = await standing(services.pool, schedule, now)
    lines: list[ShiftLine] = []
    if detail:
        for shift in await shifts(services.pool, schedule, now, now + DETAIL_SHIFTS):
            source = "override" if shift.layer == OVERRIDE else schedule.layers[shift.layer - 1].name
            lines.append(ShiftLine(shift.user, shift.start, shift.end, source))
    return ScheduleStanding(
        id=schedule.id, name=schedule.name, time_zone=schedule.time_zone, now=s.now, until=s.until, next=s.next,
        calendar_errors=s.calendar_errors, layers=[_describe_layer(layer) for layer in schedule.layers], shifts=lines,
    )


def _describe_layer(layer) -> str:
    if layer.imported is not None:
        return f"{layer.name} (imported calendar)"
    r = layer.rotation
    unit = r.shift_unit[:-1] if r.shift_count == 1 else r.shift_unit
    return f"{layer.name} ({len(r.members)} people, {r.shift_count} {unit} from {r.start:%Y-%m-%d} {r.handoff:%H:%M})"


async def _override_command(ack: AsyncAck, command: dict, text: str, client, services: SlackServices) -> None:
    user = command["user_id"]
    tokens = text.split()
    at = next((i for i, token in enumerate(tokens) if token.startswith(("<@", "@")) or MEMBER_ID.match(token)), None)
    if at is None or at == 0:
        await ack(**oncall_error("Say which schedule and who is on call instead: `/pulser oncall override <schedule> U012ABCDEF now +4h`."))
        return
    person = _person(tokens[at], user)
    if person is None:
        await ack(**oncall_error(
            f"Slack sent `{_clip(tokens[at])}` as a name, not a person: use the *Add override* button of "
            "`/pulser oncall`, or their member ID (U…, in their Slack profile)."
        ))
        return
    name, times = " ".join(tokens[:at]), tokens[at + 1:]
    try:
        schedule = await load_schedule(services.pool, name)
    except ScheduleNotFound:
        await ack(**oncall_error(f"There is no on-call schedule named `{_clip(name)}`. `/pulser oncall` lists them."))
        return
    if not await is_admin(client, user, services.admins):
        await ack(**oncall_error(refusal(ACTION_WORDS)))
        return
    start, rest = _take_time(times)
    end, extra = _take_time(rest)
    if extra or not start or not end:
        await ack(**oncall_error("Give a start and an end after the person, e.g. `now +4h` or `2026-12-08 09:00 2026-12-08 17:00`."))
        return
    notice = await _add(services, client, schedule, {"user": person, "start": start, "end": end}, user)
    if isinstance(notice, dict):  # field → problem
        await ack(**oncall_error(" ".join(f"{field}: {problem}." for field, problem in notice.items())))
        return
    await ack(**await detail_message(services, str(schedule.id), notice))


async def _add(services: SlackServices, client, schedule: Schedule, body: dict, user: str) -> str | dict[str, str]:
    """The confirmation (mrkdwn), or field → what is wrong."""
    if is_managed(schedule):
        return {"schedule": managed_notice("The schedule", schedule.name)}
    now = datetime.now(timezone.utc)
    try:
        spec = validate_override(body, schedule.time_zone, now=now)
    except ValidationError as exc:
        return exc.errors
    problems = await unknown_users(services.pool, client, [spec.user])
    if problems:
        return {"user": problems[spec.user]}
    try:
        row = await add_override(services.pool, schedule, spec, by=user)
    except Conflict as exc:
        return exc.errors
    except LookupError:
        return {"schedule": "it was deleted meanwhile"}
    await record_action(
        services.pool, actor=user, action="schedule.override", target_type="schedule", target_id=schedule.id,
        details=override_json(row),
    )
    log.info("oncall.override_added", schedule_id=schedule.id, user=user)
    return f":white_check_mark: {people([spec.user])} is on call for *{schedule.name}* from {when(spec.start)} until {when(spec.end)}."


def _person(token: str, caller: str) -> str | None:
    if token.lower() == "@me":
        return caller
    match = MENTION.match(token) or MEMBER_ID.match(token)
    return match.group(1) if match else None


def _take_time(tokens: list[str]) -> tuple[str | None, list[str]]:
    """The first time in `tokens` (`2026-12-08 09:00` is two of them) and the rest."""
    if not tokens:
        return None, []
    if len(tokens) >= 2 and LOCAL_TIME.match(f"{tokens[0]} {tokens[1]}"):
        return f"{tokens[0]} {tokens[1]}", tokens[2:]
    return tokens[0], tokens[1:]


def _clip(text: str) -> str:
    text = text.replace("&", "&amp;").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= 60 else text[:57] + "..."


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(ADD_OVERRIDE)
    async def on_add_override(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        schedule_id = clicked_id(body)
        if not await is_admin(client, user, services.admins):
            await respond(replace_original=False, **oncall_error(refusal(ACTION_WORDS)))
            return
        try:
            schedule = await load_schedule(services.pool, schedule_id) if schedule_id is not None else None
        except ScheduleNotFound:
            schedule = None
        if schedule is None:
            await respond(replace_original=False, **oncall_error("That schedule no longer exists."))
            return
        view = override_modal(
            schedule_id=schedule.id, schedule_name=schedule.name, time_zone=schedule.time_zone, channel_id=channel_of(body)
        )
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("slack.oncall_modal_failed", user=user, error=error)
            await respond(replace_original=False, **oncall_error(f"Slack did not open the form ({error}). Please click again."))

    @app.view(OVERRIDE_CALLBACK)
    async def on_override_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await ack(response_action="errors", errors={"user": refusal(ACTION_WORDS)})
            return
        metadata = view_metadata(view)
        schedule_id = as_int(metadata.get("schedule_id"))
        try:
            schedule = await load_schedule(services.pool, schedule_id) if schedule_id is not None else None
        except ScheduleNotFound:
            schedule = None
        if schedule is None:
            await ack(response_action="errors", errors={"user": "This schedule was deleted meanwhile; close this form."})
            return
        outcome = await _add(services, client, schedule, submitted_override(view["state"]["values"]), user)
        if isinstance(outcome, dict):
            await ack(response_action="errors", errors={
                (field if field in ("user", "start", "end") else "user"): problem for field, problem in outcome.items()
            })
            return
        await ack()
        channel = metadata.get("channel_id")
        if channel:
            message = {k: v for k, v in (await detail_message(services, str(schedule.id), outcome)).items() if k != "response_type"}
            try:
                await client.chat_postEphemeral(channel=channel, user=user, **message)
            except SlackApiError as exc:
                log.info("slack.oncall_answer_not_posted", channel=channel, error=exc.response.get("error"))
