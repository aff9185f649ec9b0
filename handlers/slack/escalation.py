"""Escalation policies and outbound channels from Slack.

`/pulser escalation` (or `/pulser policies`) lists the policies, each step in words and the routing
rules that use it, with New policy, Use example, Edit and Delete; the form takes the steps as lines
of text (`alerts.escalation.step_syntax`). `/pulser channels` lists the outbound channels with their
settings redacted, with Send test, Edit, Delete, and an Add select whose kind decides the form's
fields (built from the kind's settings model; secrets are never pre-filled, and one left empty on
an edit keeps its value). Saving an e-mail channel first checks that the SMTP server answers.

Anyone may list; only admins change or test. Every change goes through `alerts.escalation.admin`,
the service the API calls too, so both check, refuse and audit alike. Clicks answer by replacing
the list they sat on; a form has no list to replace, so it posts a fresh one as an ephemeral where
the list was.
"""

from __future__ import annotations

import asyncio
import types
import typing
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal, get_args, get_origin

import structlog
from pydantic_core import PydanticUndefined
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.escalation import admin
from alerts.escalation.policies import PolicyValidationError, describe_step, monitoring_example
from alerts.escalation.step_syntax import SYNTAX_HINT, StepSyntaxError, errors_by_line, parse_steps, steps_text
from alerts.managed import is_managed, managed_notice
from alerts.outbound import channels as kinds
from alerts.outbound.channels import email as email_channel
from blocks.escalation import (
    CHANNEL_ADD,
    CHANNEL_CALLBACK,
    CHANNEL_DELETE,
    CHANNEL_EDIT,
    CHANNEL_TEST,
    POLICY_ADD,
    POLICY_CALLBACK,
    POLICY_DELETE,
    POLICY_EDIT,
    POLICY_EXAMPLE,
    ChannelLine,
    PolicyLine,
    SettingField,
    admin_only,
    change_notice,
    channel_form,
    channel_form_errors,
    channel_modal,
    channels_list,
    ephemeral,
    policies_list,
    policy_form,
    policy_form_errors,
    policy_modal,
    setting_block_id,
)
from blocks.kit import escape
from handlers.slack.admin import is_admin, refusal
from handlers.slack.payloads import as_int, channel_of, clicked_id, view_metadata
from handlers.slack.services import SlackServices
from storage import escalation, outbound

log = structlog.get_logger(__name__)

POLICY_WORDS = "change escalation policies"
CHANNEL_WORDS = "change or test outbound channels"
DELETED_MEANWHILE = "This was deleted meanwhile; close this form."
# A form's submission must be answered within Slack's 3 s: the SMTP check gets at most this.
# Slack closes a modal's submission after 3 s; the admin check may take part of that.
SMTP_CHECK_SECONDS = 1.5


# --- what the lists show -------------------------------------------------------------------------


async def policies_message(services: SlackServices, notice: str | None = None) -> dict:
    pool = services.pool
    names = {c["id"]: c["name"] for c in await outbound.list_channels(pool)}
    lines = [
        PolicyLine(
            id=p["id"], name=p["name"], repeat=p["repeat"], steps=[describe_step(s, names) for s in p["steps"]],
            used_by=await escalation.rules_using_policy(pool, p["id"]), managed=is_managed(p),
        )
        for p in await escalation.list_policies(pool)
    ]
    return policies_list(lines, notice=notice)


async def channels_message(services: SlackServices, notice: str | None = None) -> dict:
    lines = []
    for channel in await outbound.list_channels(services.pool):
        shown = admin.channel_json(channel)
        lines.append(ChannelLine(id=shown["id"], name=shown["name"], kind=shown["kind"],
                                 label=kinds.KINDS[shown["kind"]].label, settings=shown["settings"],
                                 managed=is_managed(channel)))
    return channels_list(lines, [(k, kind.label) for k, kind in kinds.KINDS.items()], notice=notice)


async def escalation_command(*, ack: AsyncAck, services: SlackServices, **_: Any) -> None:
    """Anyone may list; the answer rides on the ack."""
    await ack(**await policies_message(services))


async def channels_command(*, ack: AsyncAck, services: SlackServices, **_: Any) -> None:
    await ack(**await channels_message(services))


# --- a channel kind's settings as form fields ----------------------------------------------------

LABELS = {
    "host": "SMTP server", "port": "Port", "security": "Security", "username": "Username", "password": "Password",
    "from": "From address", "to": "To", "timeout": "Timeout (seconds)", "ca_cert": "CA certificate (PEM)",
    "webhook_url": "Webhook URL", "everyone_min_severity": "Mention @everyone from", "url": "URL",
    "signing_secret": "Signing secret", "repository": "Repository (owner/name)", "token": "Token",
    "api_url": "API URL", "labels": "Labels", "account_sid": "Account SID", "auth_token": "Auth token",
    "from_number": "From number", "messaging_service_sid": "Messaging service SID", "api_base": "API base URL",
    "routing_key": "Integration (routing) key", "events_url": "Events API URL",
}
HINTS = {
    ("email", "host"): "Like smtp.example.com. Pulser checks that it answers before saving.",
    ("email", "port"): "Empty: 587 for starttls, 465 for tls, 25 for none.",
    ("email", "to"): "Comma-separated addresses. Empty: only people's own e-mail pages use this channel.",
    ("email", "from"): "The sender, like Pulser <pulser@example.com>.",
    ("twilio", "to"): "Comma-separated E.164 numbers. Empty: only people's own SMS pages use this channel.",
    ("twilio", "from_number"): "E.164, like +14155550123; or a messaging service SID instead.",
    ("github", "labels"): "Comma-separated.",
}
MULTILINE = {"ca_cert"}


def _core_type(annotation: Any) -> tuple[Any, bool]:
    """(the type without Optional and Annotated, whether None is allowed)."""
    nullable = False
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation, nullable


def setting_fields(kind: str) -> list[SettingField]:
    """The kind's settings model as form fields, in the model's order."""
    channel = kinds.KINDS[kind]
    fields = []
    for name, info in channel.config_model.model_fields.items():
        key = info.alias or name
        core, _ = _core_type(info.annotation)
        options: tuple[str, ...] = ()
        if get_origin(core) is Literal:
            form_kind, options = "select", tuple(str(o) for o in get_args(core))
        elif get_origin(core) is list:
            form_kind = "list"
        elif core in (int, float):
            form_kind = "number"
        else:
            form_kind = "multiline" if key in MULTILINE else "text"
        default = None if info.is_required() or info.default is PydanticUndefined else info.default
        fields.append(SettingField(
            name=key, label=LABELS.get(key, key.replace("_", " ").capitalize()), kind=form_kind,
            required=info.is_required(), secret=key in channel.secret_fields, options=options,
            default=None if default is None or isinstance(default, (list, dict)) else str(default),
            hint=HINTS.get((kind, key)),
        ))
    return fields


async def smtp_problem(settings: dict, stored: dict | None) -> str | None:
    """What is wrong with reaching the e-mail channel's server, or None; settings that do not
    validate raise ChannelConfigError first (those errors are shown instead)."""
    checker = email_channel.check
    parsed = kinds.parse_config("email", kinds.with_kept_secrets("email", settings, stored or {}))
    try:
        return await asyncio.wait_for(checker(parsed, timeout=SMTP_CHECK_SECONDS), SMTP_CHECK_SECONDS + 0.2)
    except asyncio.TimeoutError:
        return f"the SMTP server {parsed.host} did not answer within {SMTP_CHECK_SECONDS:g} s"


# --- listeners -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Objects:
    """What differs between acting on a policy and on a channel from their lists."""

    noun: str  # in notices: "policy", "channel"
    label: str  # in the config file's lock notice
    words: str  # what only admins may do, for the refusal
    listing: str  # the command that lists them
    get: Callable[..., Awaitable[dict | None]]
    delete: Callable[..., Awaitable[None]]
    message: Callable[..., Awaitable[dict]]


POLICIES = _Objects("policy", "The escalation policy", POLICY_WORDS, "/pulser escalation",
                    escalation.get_policy, admin.delete_policy, policies_message)
CHANNELS = _Objects("channel", "The outbound channel", CHANNEL_WORDS, "/pulser channels",
                    outbound.get_channel, admin.delete_channel, channels_message)


def register(app: AsyncApp, services: SlackServices) -> None:
    pool = services.pool

    async def allowed(client, user: str, respond, words: str, listing: str) -> bool:
        if await is_admin(client, user, services.admins):
            return True
        await respond(replace_original=False, **admin_only(words, listing))
        return False

    # --- policies: list buttons ---------------------------------------------------------------

    @app.action(POLICY_ADD)
    async def on_policy_add(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        if await allowed(client, body["user"]["id"], respond, POLICY_WORDS, "/pulser escalation"):
            await _open(client, body, respond, policy_modal(metadata=_where(body), syntax_hint=SYNTAX_HINT))

    @app.action(POLICY_EXAMPLE)
    async def on_policy_example(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        if not await allowed(client, body["user"]["id"], respond, POLICY_WORDS, "/pulser escalation"):
            return
        example = monitoring_example()
        text = "// Rename the channels and the schedule to yours (send <name>, oncall <name>).\n" + steps_text(example["steps"])
        view = policy_modal(metadata=_where(body), syntax_hint=SYNTAX_HINT, name=example["name"],
                            repeat=example["repeat"], steps=text)
        await _open(client, body, respond, view)

    @app.action(POLICY_EDIT)
    async def on_policy_edit(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        policy = await _clicked(POLICIES, body, client, respond, changing=True)
        if policy is None:
            return
        names = {c["id"]: c["name"] for c in await outbound.list_channels(pool)}
        view = policy_modal(metadata={**_where(body), "policy_id": policy["id"]}, syntax_hint=SYNTAX_HINT,
                            name=policy["name"], repeat=policy["repeat"], steps=steps_text(policy["steps"], names),
                            editing=True)
        await _open(client, body, respond, view)

    @app.action(POLICY_DELETE)
    async def on_policy_delete(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        policy = await _clicked(POLICIES, body, client, respond, changing=True)
        if policy is not None:
            await _delete(POLICIES, policy, body, respond)

    async def _clicked(objects: "_Objects", body: dict, client, respond, *, changing: bool) -> dict | None:
        """The clicked policy or channel as stored now, when the clicker may act on it; else they
        are told why not (not an admin, deleted meanwhile, managed by the config file)."""
        user, object_id = body["user"]["id"], clicked_id(body)
        if not await allowed(client, user, respond, objects.words, objects.listing):
            return None
        found = await objects.get(pool, object_id) if object_id is not None else None
        if found is None:
            await respond(replace_original=True, **await objects.message(services, change_notice("missing", objects.noun)))
            return None
        if changing and is_managed(found):
            await respond(replace_original=False, **ephemeral(managed_notice(objects.label, found["name"])))
            return None
        return found

    async def _delete(objects: "_Objects", found: dict, body: dict, respond) -> None:
        try:
            await objects.delete(pool, found["id"], actor=body["user"]["id"])
        except admin.NotFound:
            await respond(replace_original=True, **await objects.message(services, change_notice("missing", objects.noun)))
            return
        except admin.Conflict as exc:
            await respond(replace_original=False, **ephemeral(f":warning: Not deleted: {exc.detail}."))
            return
        notice = change_notice("deleted", objects.noun, found["name"])
        await respond(replace_original=True, **await objects.message(services, notice))

    # --- policies: the form -------------------------------------------------------------------

    @app.view(POLICY_CALLBACK)
    async def on_policy_saved(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):  # rights may have gone since the form opened
            await ack(response_action="errors", errors={"name": refusal(POLICY_WORDS)})
            return
        metadata = view_metadata(view)
        policy_id = as_int(metadata.get("policy_id"))
        form = policy_form(view["state"]["values"])
        try:
            steps, lines = parse_steps(form["steps"])
        except StepSyntaxError as exc:
            lines_text = [f"line {line}: {problem}" for line, problem in sorted(exc.errors.items())]
            await ack(response_action="errors", errors=policy_form_errors({}, lines_text))
            return
        data = {"name": form["name"], "repeat": form["repeat"], "steps": steps}
        try:
            policy = await admin.save_policy(pool, data, actor=user, policy_id=policy_id, slack_client=client)
        except PolicyValidationError as exc:
            others, on_lines = errors_by_line(exc.errors, lines)
            await ack(response_action="errors", errors=policy_form_errors(others, on_lines))
            return
        except admin.NotFound:
            await ack(response_action="errors", errors={"name": DELETED_MEANWHILE})
            return
        except admin.Conflict as exc:
            await ack(response_action="errors", errors={"name": exc.detail[:1].upper() + exc.detail[1:]})
            return
        await ack()
        log.info("escalation_policy.saved", policy_id=policy["id"], steps=len(policy["steps"]), user=user)
        notice = change_notice("added" if policy_id is None else "updated", "policy", policy["name"])
        await _post_list(client, metadata, user, await policies_message(services, notice))

    # --- channels: list controls --------------------------------------------------------------

    @app.action(CHANNEL_ADD)
    async def on_channel_add(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        if not await allowed(client, body["user"]["id"], respond, CHANNEL_WORDS, "/pulser channels"):
            return
        kind = ((body.get("actions") or [{}])[0].get("selected_option") or {}).get("value")
        if kind not in kinds.KINDS:
            await respond(replace_original=False, **ephemeral("Pick one of the listed kinds."))
            return
        view = channel_modal(metadata={**_where(body), "kind": kind}, kind_label=kinds.KINDS[kind].label,
                             fields=setting_fields(kind))
        await _open(client, body, respond, view)

    @app.action(CHANNEL_EDIT)
    async def on_channel_edit(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        channel = await _clicked(CHANNELS, body, client, respond, changing=True)
        if channel is None:
            return
        kind = channel["kind"]
        view = channel_modal(metadata={**_where(body), "kind": kind, "outbound_id": channel["id"]},
                             kind_label=kinds.KINDS[kind].label, fields=setting_fields(kind), name=channel["name"],
                             settings=channel["settings"], editing=True)
        await _open(client, body, respond, view)

    @app.action(CHANNEL_DELETE)
    async def on_channel_delete(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        channel = await _clicked(CHANNELS, body, client, respond, changing=True)
        if channel is not None:
            await _delete(CHANNELS, channel, body, respond)

    @app.action(CHANNEL_TEST)
    async def on_channel_test(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        channel = await _clicked(CHANNELS, body, client, respond, changing=False)
        if channel is None:
            return
        try:
            delivery_id = await admin.send_test(pool, channel["id"], actor=body["user"]["id"])
        except admin.NotFound:
            await respond(replace_original=True, **await channels_message(services, change_notice("missing", "channel")))
            return
        log.info("outbound_channel.test_queued", channel_id=channel["id"], delivery_id=delivery_id)
        await respond(replace_original=False, **ephemeral(
            f":outbox_tray: Test queued for *{escape(channel['name'])}* (delivery {delivery_id}). If it does not "
            f"arrive, `/pulser health` and `GET /api/outbound-channels/{channel['id']}/deliveries` say why."))

    # --- channels: the form -------------------------------------------------------------------

    @app.view(CHANNEL_CALLBACK)
    async def on_channel_saved(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await ack(response_action="errors", errors={"name": refusal(CHANNEL_WORDS)})
            return
        metadata = view_metadata(view)
        kind, channel_id = metadata.get("kind"), as_int(metadata.get("outbound_id"))
        if kind not in kinds.KINDS:
            await ack(response_action="errors", errors={"name": "This form lost its kind; open it again from /pulser channels."})
            return
        fields = setting_fields(kind)
        name, settings, number_errors = channel_form(view["state"]["values"], fields)
        if number_errors:
            await ack(response_action="errors", errors=number_errors)
            return
        stored = None
        if channel_id is not None:
            current = await outbound.get_channel(pool, channel_id)
            if current is None:
                await ack(response_action="errors", errors={"name": DELETED_MEANWHILE})
                return
            stored = current["settings"]
        try:
            if kind == "email":
                problem = await smtp_problem(settings, stored)
                if problem:
                    await ack(response_action="errors", errors={setting_block_id("host"): (
                        f"{problem[:1].upper()}{problem[1:]}. Fix the settings and save again; once saved, "
                        "Send test in /pulser channels sends a real message.")[:1900]})
                    return
            channel = await admin.save_channel(pool, {"name": name, "kind": kind, "settings": settings}, actor=user,
                                               channel_id=channel_id)
        except kinds.ChannelConfigError as exc:
            await ack(response_action="errors", errors=channel_form_errors(exc.errors, fields))
            return
        except admin.NotFound:
            await ack(response_action="errors", errors={"name": DELETED_MEANWHILE})
            return
        except admin.Conflict as exc:
            await ack(response_action="errors", errors={"name": exc.detail[:1].upper() + exc.detail[1:]})
            return
        await ack()
        log.info("outbound_channel.saved", channel_id=channel["id"], kind=kind, user=user)
        notice = change_notice("added" if channel_id is None else "updated", "channel", channel["name"])
        await _post_list(client, metadata, user, await channels_message(services, notice))


def _where(body: dict) -> dict:
    """What a form remembers of where it was opened: the list's channel and who opened it."""
    return {"channel_id": channel_of(body), "user_id": body["user"]["id"]}


async def _open(client, body: dict, respond, view: dict) -> None:
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the click
        error = exc.response.get("error")
        log.warning("slack.escalation_modal_failed", user=body["user"]["id"], error=error)
        await respond(response_type="ephemeral", replace_original=False,
                      text=f":warning: Slack did not open the form ({error}). Please click the button again.")


async def _post_list(client, metadata: dict, user: str, message: dict) -> None:
    """The list as it is now, as a fresh ephemeral where the form was opened from."""
    channel = metadata.get("channel_id")
    if not channel:
        return
    body = {k: v for k, v in message.items() if k != "response_type"}
    try:
        await client.chat_postEphemeral(channel=channel, user=user, **body)
    except SlackApiError as exc:  # e.g. a DM with someone else: the change is saved all the same
        log.info("slack.escalation_list_not_posted", channel=channel, error=exc.response.get("error"))
