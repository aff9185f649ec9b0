"""Heartbeat applications from Slack: `/pulser register` (a modal), `/pulser apps` (a list with
Pause/Resume, Edit, Delete and Heartbeats buttons) and the modal submissions.

Thin on purpose: parse the payload, check admin rights, call `alerts.applications` to validate and
`storage` to change things, audit, answer with `blocks.applications`. Slack's timing shapes the
order: a slash command's ack and its trigger_id both expire 3 s after the command, so the admin
check (cached) comes first, then the ack, then views.open at once; a modal submission stores
before it acks, because a duplicate name must still be shown inline in the open modal.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerts.applications import (
    FIELDS,
    ApplicationSpec,
    ValidationError,
    clock_after_edit,
    effective_status,
    expected_text,
    format_duration,
    validate_application,
)
from blocks.applications import (
    DELETE,
    EDIT,
    EDIT_CALLBACK,
    FIELD_BLOCKS,
    HEARTBEATS,
    HISTORY_SHOWN,
    PAUSE,
    REGISTER_CALLBACK,
    RESUME,
    AppSummary,
    admin_only,
    apps_list,
    change_notice,
    edit_modal,
    form_errors,
    heartbeats_list,
    register_modal,
    registered_message,
    submitted_fields,
)
from handlers.slack.admin import is_admin, refusal
from handlers.slack.payloads import as_int, channel_of, clicked_id, view_metadata
from handlers.slack.services import SlackServices
from storage import applications as store
from storage.applications import Application, NameTaken
from storage.audit import record_action
from storage.heartbeats import list_heartbeats

log = structlog.get_logger(__name__)

# The list shows ~24 apps (Slack's 50-block limit); storage orders them down, late, then by name,
# and the totals come from a count, so reading a few more than fit is enough.
LIST_READ_LIMIT = 50
DELETED_MEANWHILE = "This app was deleted meanwhile; close this form."


def summarize(app: Application, now: datetime) -> AppSummary:
    """An application as the list and messages show it, with status as of `now`."""
    if app.last_heartbeat is None:
        seen = "never"
    else:
        seen = f"{format_duration(max(0.0, (now - app.last_heartbeat).total_seconds()))} ago"
    return AppSummary(
        id=app.id,
        uuid=str(app.uuid),
        name=app.name,
        status=effective_status(is_active=app.is_active, state=app.state, due_at=app.due_at, now=now),
        expected=expected_text(app.expected_interval, app.schedule, app.timezone),
        grace=format_duration(app.grace_period),
        last_heartbeat=seen,
        channel=app.channel,
        owner=app.owner,
        is_active=app.is_active,
    )


async def apps_message(services: SlackServices, notice: str | None = None) -> dict:
    apps = await store.list_by_attention(services.pool, limit=LIST_READ_LIMIT)
    counts = await store.count_by_state(services.pool)
    now = datetime.now(timezone.utc)
    return apps_list([summarize(app, now) for app in apps], total=sum(counts.values()), counts=counts, notice=notice)


# --- /pulser register and /pulser apps (dispatched by handlers.slack.commands) --------------------


async def register_command(
    *, ack: AsyncAck, command: dict, args: str = "", client, respond, services: SlackServices, **_: Any
) -> None:
    user = command["user_id"]
    if not await is_admin(client, user, services.admins):
        await ack(**admin_only("register apps"))
        return
    await ack()
    metadata = {"channel_id": command.get("channel_id"), "user_id": user}
    view = register_modal(default_channel=services.default_channel, metadata=metadata, name=args)
    try:
        await client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the command
        error = exc.response.get("error")
        log.warning("slack.register_modal_failed", user=user, error=error)
        await respond(
            response_type="ephemeral",
            text=f":warning: Slack did not open the registration form ({error}). Please run `/pulser register` again.",
        )


async def apps_command(*, ack: AsyncAck, services: SlackServices, **_: Any) -> None:
    """Anyone may list; the answer rides on the ack, so there is no extra round trip."""
    await ack(**await apps_message(services))


# --- modal submissions and list buttons -----------------------------------------------------------


def register(app: AsyncApp, services: SlackServices) -> None:
    pool = services.pool

    @app.view(REGISTER_CALLBACK)
    async def on_register_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):  # rights may have gone since the form opened
            await _name_error(ack, refusal("register apps"))
            return
        fields = submitted_fields(view["state"]["values"])
        try:
            data = await services.channels.resolve_field(_form_data(fields, channel=services.default_channel))
            spec = validate_application(data, default_channel=services.default_channel)
        except ValidationError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        try:
            created = await store.create_application(pool, spec, created_by=user)
        except NameTaken:
            await _name_error(ack, _name_taken(spec.name))
            return
        await record_action(
            pool, actor=user, action="application.register", target_type="application", target_id=created.id,
            details={"name": created.name, "uuid": str(created.uuid), **_spec_details(spec)},
        )
        await ack()
        log.info("application.registered", app=created.name, app_id=created.id, user=user)
        message = registered_message(summarize(created, datetime.now(timezone.utc)), services.public_base_url)
        await _tell(client, view_metadata(view).get("channel_id"), user, message)

    @app.view(EDIT_CALLBACK)
    async def on_edit_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await _name_error(ack, refusal("edit apps"))
            return
        metadata = view_metadata(view)
        current = await store.get_application(pool, as_int(metadata.get("app_id")) or 0)
        if current is None:
            await _name_error(ack, DELETED_MEANWHILE)
            return
        fields = submitted_fields(view["state"]["values"])
        try:
            data = await services.channels.resolve_field(_form_data(fields, channel=current.channel))
            spec = validate_application({**data, "is_active": current.is_active}, default_channel=services.default_channel)
        except ValidationError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        changes = _changes(current.spec, spec)
        if not changes:  # saved as it was: nothing to store or audit
            await ack()
            return
        try:
            updated = await store.update_application(pool, current.id, spec, clock_after_edit=clock_after_edit)
        except NameTaken:
            await _name_error(ack, _name_taken(spec.name))
            return
        if updated is None:
            await _name_error(ack, DELETED_MEANWHILE)
            return
        await record_action(
            pool, actor=user, action="application.update", target_type="application", target_id=updated.id,
            details={"name": updated.name, "changes": changes},
        )
        await ack()
        if metadata.get("response_url"):  # opened from a list: show the list as it is now
            refreshed = await apps_message(services, change_notice("updated", updated.name))
            await _replace_list(metadata["response_url"], refreshed)

    @app.action(PAUSE)
    async def on_pause(ack: AsyncAck, body: dict, client, respond) -> None:
        await _toggle(ack, body, client, respond, active=False)

    @app.action(RESUME)
    async def on_resume(ack: AsyncAck, body: dict, client, respond) -> None:
        await _toggle(ack, body, client, respond, active=True)

    async def _toggle(ack: AsyncAck, body: dict, client, respond, *, active: bool) -> None:
        await ack()
        verb = "resume" if active else "pause"
        user, app_id = await _admin_click(body, client, respond, verb, "pause or resume apps")
        if app_id is None:
            return
        changed = await store.set_active(pool, app_id, active)
        if changed is not None:
            await _audit(user, f"application.{verb}", app_id, {"name": changed.name})
            notice = change_notice("resumed" if active else "paused", changed.name)
        else:
            notice = change_notice("missing", "")
        await respond(replace_original=True, **await apps_message(services, notice))

    @app.action(DELETE)
    async def on_delete(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user, app_id = await _admin_click(body, client, respond, "delete", "delete apps")
        if app_id is None:
            return
        target = await store.get_application(pool, app_id)
        if target is not None and await store.delete_application(pool, app_id):
            await _audit(user, "application.delete", app_id, {"name": target.name, "uuid": str(target.uuid)})
            notice = change_notice("deleted", target.name)
        else:
            notice = change_notice("missing", "")
        await respond(replace_original=True, **await apps_message(services, notice))

    @app.action(EDIT)
    async def on_edit(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user, app_id = await _admin_click(body, client, respond, "edit", "edit apps")
        if app_id is None:
            return
        target = await store.get_application(pool, app_id)
        if target is None:
            await respond(replace_original=True, **await apps_message(services, change_notice("missing", "")))
            return
        await _audit(user, "application.edit_opened", app_id, {"name": target.name})
        metadata = {
            "app_id": target.id,
            "channel_id": channel_of(body),
            "user_id": user,
            "response_url": body.get("response_url"),
        }
        await client.views_open(trigger_id=body["trigger_id"], view=edit_modal(app=target, metadata=metadata))

    @app.action(HEARTBEATS)
    async def on_heartbeats(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user, app_id = body["user"]["id"], clicked_id(body)
        target = await store.get_application(pool, app_id) if app_id is not None else None
        if target is None:
            await respond(replace_original=True, **await apps_message(services, change_notice("missing", "")))
            return
        rows = await list_heartbeats(pool, target.id, limit=HISTORY_SHOWN)
        await _audit(user, "application.heartbeats_viewed", target.id, {"name": target.name})
        view = heartbeats_list(summarize(target, datetime.now(timezone.utc)), rows)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def _admin_click(body: dict, client, respond, verb: str, action_words: str) -> tuple[str, int | None]:
        """(user, app id) when the clicker may do this; otherwise answers them and returns no id."""
        user, app_id = body["user"]["id"], clicked_id(body)
        if app_id is None:
            await respond(text="That button did not name an app.", response_type="ephemeral", replace_original=False)
            return user, None
        if not await is_admin(client, user, services.admins):
            await _audit(user, f"application.{verb}_refused", app_id, {})
            await respond(replace_original=False, **admin_only(action_words))
            return user, None
        return user, app_id

    async def _audit(user: str, action: str, app_id: int, details: dict) -> None:
        await record_action(
            pool, actor=user, action=action, target_type="application", target_id=app_id, details=details
        )


# --- helpers --------------------------------------------------------------------------------------


def _form_data(fields: dict[str, str | None], *, channel: str) -> dict[str, Any]:
    """Form fields as the validator takes them: durations stay text ('5m'), an empty channel
    means `channel` (the default on register, the current one on edit), an empty zone UTC."""
    return {
        "name": fields["name"],
        "expected_interval": fields["expected_interval"],
        "grace_period": fields["grace_period"],
        "schedule": fields["schedule"],
        "timezone": fields["timezone"] or "UTC",
        "channel": fields["channel"] or channel,
        "owner": fields["owner"],
    }


def _spec_details(spec: ApplicationSpec) -> dict[str, Any]:
    return {field: getattr(spec, field) for field in FIELDS if field != "name"}


def _changes(old: ApplicationSpec, new: ApplicationSpec) -> dict[str, dict[str, Any]]:
    """Changed fields in the audit log's shape for updates (the admin API writes the same)."""
    return {
        f: {"from": getattr(old, f), "to": getattr(new, f)} for f in FIELDS if getattr(old, f) != getattr(new, f)
    }


async def _name_error(ack: AsyncAck, message: str) -> None:
    """Keep the modal open with `message` under the name, the one field every form has."""
    await ack(response_action="errors", errors={FIELD_BLOCKS["name"]: message})


def _name_taken(name: str) -> str:
    return f"An app called “{name}” already exists (names are compared ignoring case). Choose another name."


async def _tell(client, channel: str | None, user: str, message: dict) -> None:
    """An ephemeral in the channel the command came from; where the bot cannot post (a DM with
    someone else, a channel it is not in), a DM from the app instead, so the UUID is never lost."""
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **message)
            return
        except SlackApiError as exc:
            log.info("slack.ephemeral_failed", channel=channel, error=exc.response.get("error"), fallback="dm")
    await client.chat_postMessage(channel=user, **message)


async def _replace_list(response_url: str, message: dict) -> None:
    """Replace the ephemeral list the Edit button sat on; only its response_url can reach it."""
    response = await AsyncWebhookClient(response_url).send_dict({**message, "replace_original": True})
    if response.status_code != 200:
        log.warning("slack.list_refresh_failed", status=response.status_code, body=response.body)
