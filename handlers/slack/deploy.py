"""`/pulser deploy` from Slack: the confirmation modal, its submission, Approve / Reject on the
request message, the services list, and adding, editing and removing a service.

Thin on purpose: parse, call `alerts.deploys`, answer with `blocks.deploys`. Slack's timing
shapes the order: the command acks before views.open (the trigger_id lives 3 s); a submission
stores the request before it acks (bad fields must show inline in the open modal) and sends the
action after (a trigger may take up to its 10 s timeout); a click acks first and answers later.

Who may do what: anyone may request a deploy; a service that requires approval waits for an admin
other than the requester to approve; only admins reject (a requester may still withdraw their own)
and add, edit and remove services (the admin API can too).
A service form's submission checks admin rights again: they may have gone since it opened.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.deploys import (
    DEFAULT_GITHUB_REF,
    DeployRefused,
    DeployRequest,
    DeployService,
    ServiceNameTaken,
    UnknownService,
    ValidationError,
    describe_action,
)
from blocks.deploys import (
    ADD_SERVICE,
    APPROVE,
    CONFIRM_CALLBACK,
    EDIT_SERVICE,
    REJECT,
    SERVICE_CALLBACK,
    SERVICE_FIELD_BLOCKS,
    ServiceSummary,
    confirm_modal,
    form_errors,
    inputs_text,
    notice_message,
    parse_inputs,
    refusal,
    request_message,
    requester_notice,
    service_form_errors,
    service_modal,
    service_saved,
    services_list,
    submitted_fields,
    submitted_service_fields,
    unknown_service,
    usage_message,
)
from alerts.managed import is_managed, managed_notice
from handlers.slack.admin import is_admin
from handlers.slack.admin import refusal as admin_refusal
from handlers.slack.payloads import as_int, channel_of, clicked_id, clicked_message, view_metadata
from handlers.slack.services import SlackServices
from storage.audit import record_action

log = structlog.get_logger(__name__)

LIST_WORDS = ("services", "list")
REF_SHOWN_MAX = 200
REMOVED_MEANWHILE = "This service was removed meanwhile; close this form."
# Each action type's fields as the service form holds them (the validator's "action.<key>").
FORM_ACTION_FIELDS = {
    "github_workflow": ("repo", "workflow", "ref", "inputs"),
    "heroku_promotion": ("pipeline", "from_app", "to_apps"),
    "webhook": ("url",),
}


# --- /pulser deploy … (dispatched by handlers.slack.commands) ---------------------------------------


async def deploy_command(
    *, ack: AsyncAck, command: dict, args: str = "", client, respond, services: SlackServices, **_: Any
) -> None:
    words = args.split()
    deploys = services.deploys
    if deploys is None:
        await ack(**notice_message("Deploys are not available in this Pulser process."))
        return
    if not words or words[0].lower() == "help":
        await ack(**usage_message())
        return
    word = words[0].lower()
    if word in LIST_WORDS:
        await ack(**services_list([_summary(s) for s in await deploys.services()]))
        return
    if word == "add":
        await _open_service_form(ack, command, words[1:], client, respond, services, editing=False)
        return
    if word == "edit":
        await _open_service_form(ack, command, words[1:], client, respond, services, editing=True)
        return
    if word == "remove":
        await _remove(ack, command, words[1:], client, services)
        return
    if len(words) > 2:
        await ack(**usage_message("Too many words: give a service and, optionally, a ref."))
        return
    try:
        service = await deploys.service(words[0])
    except UnknownService as exc:
        await ack(**unknown_service(exc.name, exc.known))
        return
    await ack()
    ref = words[1][:REF_SHOWN_MAX] if len(words) > 1 else _default_ref(service)
    metadata = {
        "service": service.name,
        "service_id": service.id,
        "channel_id": command.get("channel_id"),
        "user_id": command["user_id"],
    }
    view = confirm_modal(
        service=service.name,
        action=describe_action(service),
        env=service.default_env,
        ref=ref,
        ref_hint=_ref_hint(service),
        requires_approval=service.requires_approval,
        metadata=metadata,
    )
    try:
        await client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the command
        error = exc.response.get("error")
        log.warning("slack.deploy_modal_failed", user=command["user_id"], error=error)
        await respond(
            response_type="ephemeral",
            text=f":warning: Slack did not open the deploy form ({error}). "
            f"Please run `/pulser deploy {service.name}` again.",
        )


async def _remove(ack: AsyncAck, command: dict, words: list[str], client, services: SlackServices) -> None:
    user = command["user_id"]
    if len(words) != 1:
        await ack(**usage_message("Name the service to remove: `/pulser deploy remove <service>`."))
        return
    if not await is_admin(client, user, services.admins):
        await ack(**notice_message(admin_refusal("remove deploy services")))
        return
    try:
        service = await services.deploys.service(words[0])
    except UnknownService as exc:
        await ack(**unknown_service(exc.name, exc.known))
        return
    if is_managed(service):
        await ack(**notice_message(managed_notice("The deploy service", service.name)))
        return
    removed = await services.deploys.delete_service(service.id, user=user)
    notice = (
        f":wastebasket: Removed deploy service *{service.name}* and its requests."
        if removed is not None
        else "That service was already removed."
    )
    log.info("deploy.service_removed", service=service.name, by=user)
    await ack(**services_list([_summary(s) for s in await services.deploys.services()], notice=notice))


async def _open_service_form(
    ack: AsyncAck, command: dict, words: list[str], client, respond, services: SlackServices, *, editing: bool
) -> None:
    """`add [name]` opens the service form empty (the name prefilled), `edit <service>` with the
    service's fields; admins only. The admin check is cached, so the ack stays inside 3 s."""
    user = command["user_id"]
    if editing and len(words) != 1:
        await ack(**usage_message("Name the service to edit: `/pulser deploy edit <service>`."))
        return
    if not editing and len(words) > 1:
        await ack(**usage_message("Give at most a name: `/pulser deploy add [name]`."))
        return
    if not await is_admin(client, user, services.admins):
        await ack(**notice_message(admin_refusal("edit deploy services" if editing else "add deploy services")))
        return
    service = None
    if editing:
        try:
            service = await services.deploys.service(words[0])
        except UnknownService as exc:
            await ack(**unknown_service(exc.name, exc.known))
            return
        if is_managed(service):
            await ack(**notice_message(managed_notice("The deploy service", service.name)))
            return
    await ack()
    metadata = {"service_id": service.id if service else None, "channel_id": command.get("channel_id")}
    view = service_modal(service=_form_values(service), metadata=metadata, name="" if editing else "".join(words))
    try:
        await client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the command
        error = exc.response.get("error")
        log.warning("slack.deploy_service_modal_failed", user=user, error=error)
        again = f"/pulser deploy edit {service.name}" if service else "/pulser deploy add"
        await respond(
            response_type="ephemeral",
            text=f":warning: Slack did not open the service form ({error}). Please run `{again}` again.",
        )


# --- the modals, and the buttons on the request message and the services list ----------------------


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.view(CONFIRM_CALLBACK)
    async def on_confirm(ack: AsyncAck, body: dict, view: dict, client) -> None:
        deploys = services.deploys
        user = body["user"]["id"]
        metadata = view_metadata(view)
        fields = submitted_fields(view["state"]["values"])
        try:
            request = await deploys.create_request(
                str(metadata.get("service") or ""), fields["env"], fields["ref"], fields["reason"], user
            )
        except UnknownService:
            await ack(response_action="errors", errors={"env": REMOVED_MEANWHILE})
            return
        except ValidationError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        await ack()
        service = await deploys.get_service(request.service_id)
        if service is None:  # removed in the moment since: its request went with it
            return
        origin = metadata.get("channel_id")
        if request.status == "pending_approval":
            channel = await _post_request(client, deploys, service, request, fallback=origin)
            await _tell(client, origin, user, requester_notice(request, channel=channel or origin or user))
            return
        outcome = await deploys.trigger(request.id, user=user)
        await _tell(client, origin, user, requester_notice(outcome, channel=await deploys.deploy_channel(service)))

    @app.view(SERVICE_CALLBACK)
    async def on_service_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        deploys = services.deploys
        user = body["user"]["id"]
        name_block = SERVICE_FIELD_BLOCKS["name"]
        if not await is_admin(client, user, services.admins):  # rights may have gone since the form opened
            await ack(response_action="errors", errors={name_block: admin_refusal("add or edit deploy services")})
            return
        metadata = view_metadata(view)
        service_id = as_int(metadata.get("service_id"))
        current = await deploys.get_service(service_id) if service_id is not None else None
        if service_id is not None and current is None:
            await ack(response_action="errors", errors={name_block: REMOVED_MEANWHILE})
            return
        if current is not None and is_managed(current):
            await ack(response_action="errors", errors={name_block: managed_notice("This service", current.name)})
            return
        data = await services.channels.resolve_field(_service_data(submitted_service_fields(view["state"]["values"]), current))
        try:
            if current is None:
                saved = await deploys.create_service(data, user=user)
            else:
                saved = await deploys.update_service(current.id, data, user=user)
        except ValidationError as exc:
            await ack(response_action="errors", errors=service_form_errors(exc.errors))
            return
        except ServiceNameTaken:
            name = data["name"].strip()
            taken = f"A service called “{name}” already exists (names ignore case). Choose another name."
            await ack(response_action="errors", errors={name_block: taken})
            return
        if saved is None:  # removed between reading and writing
            await ack(response_action="errors", errors={name_block: REMOVED_MEANWHILE})
            return
        await ack()
        notice = service_saved(saved.name, describe_action(saved), added=current is None)
        await _tell(client, metadata.get("channel_id"), user, notice)

    @app.action(ADD_SERVICE)
    async def on_add_clicked(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await respond(**refusal(admin_refusal("add deploy services")))
            return
        metadata = {"service_id": None, "channel_id": channel_of(body)}
        await _open_from_click(client, respond, body, service_modal(metadata=metadata))

    @app.action(EDIT_SERVICE)
    async def on_edit_clicked(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await respond(**refusal(admin_refusal("edit deploy services")))
            return
        service_id = clicked_id(body)
        service = await services.deploys.get_service(service_id) if service_id is not None else None
        if service is None:
            listed = [_summary(s) for s in await services.deploys.services()]
            await respond(replace_original=True, **services_list(listed, notice="That service was removed meanwhile."))
            return
        if is_managed(service):
            await respond(**refusal(managed_notice("The deploy service", service.name)))
            return
        metadata = {"service_id": service.id, "channel_id": channel_of(body)}
        await _open_from_click(client, respond, body, service_modal(service=_form_values(service), metadata=metadata))

    @app.action(APPROVE)
    async def on_approve(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()  # the answer follows: starting a deploy may take longer than 3 s
        await _decide(body, client, respond, approve=True)

    @app.action(REJECT)
    async def on_reject(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        await _decide(body, client, respond, approve=False)

    async def _decide(body: dict, client, respond, *, approve: bool) -> None:
        user = body["user"]["id"]
        request_id = clicked_id(body)
        if request_id is None:
            await respond(**refusal("That button did not name a deploy request."))
            return
        deploys = services.deploys
        if not await _may_decide(client, user, request_id, approve=approve):
            verb = "approve" if approve else "reject"
            await record_action(
                services.pool, actor=user, action=f"deploy.{verb}_refused", target_type="deploy_request",
                target_id=request_id, details={"reason": "not an admin"},
            )
            await respond(**refusal(admin_refusal(f"{verb} deploys")))
            return
        try:
            decided = await (deploys.approve(request_id, user) if approve else deploys.reject(request_id, user))
        except DeployRefused as exc:
            await respond(**refusal(str(exc)))
            return
        service = await deploys.get_service(decided.service_id)
        action = describe_action(service) if service is not None else decided.service_name
        where = await deploys.message_of(request_id) or clicked_message(body)
        if where is None:
            return
        try:
            await client.chat_update(channel=where[0], ts=where[1], **request_message(decided, action=action))
        except SlackApiError as exc:
            log.warning("slack.deploy_message_update_failed", request_id=request_id, error=exc.response.get("error"))

    async def _may_decide(client, user: str, request_id: int, *, approve: bool) -> bool:
        """Admins decide (never on their own request: alerts.deploys refuses that); a member may only
        withdraw a request of their own."""
        if await is_admin(client, user, services.admins):
            return True
        request = None if approve else await services.deploys.get_request(request_id)
        return request is not None and request.requested_by == user


# --- helpers -----------------------------------------------------------------------------------------


async def _post_request(
    client, deploys, service: DeployService, request: DeployRequest, *, fallback: str | None
) -> str | None:
    """Post the request with Approve / Reject in the deploy channel (or, if Pulser cannot post
    there, where the command came from) and remember where; the channel used, or None."""
    message = request_message(request, action=describe_action(service))
    targets = [await deploys.deploy_channel(service)]
    if fallback and fallback not in targets:
        targets.append(fallback)
    for channel in targets:
        try:
            posted = await client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            log.warning("slack.deploy_request_post_failed", channel=channel, error=exc.response.get("error"))
            continue
        await deploys.attach_message(request, channel=posted["channel"], ts=posted["ts"])
        return channel
    return None


async def _tell(client, channel: str | None, user: str, message: dict) -> None:
    """An ephemeral where the command came from; a DM from the app where the bot cannot post."""
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **message)
            return
        except SlackApiError as exc:
            log.info("slack.ephemeral_failed", channel=channel, error=exc.response.get("error"), fallback="dm")
    try:
        await client.chat_postMessage(channel=user, **message)
    except SlackApiError as exc:
        log.warning("slack.deploy_notice_failed", user=user, error=exc.response.get("error"))


async def _open_from_click(client, respond, body: dict, view: dict) -> None:
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("slack.deploy_service_modal_failed", user=body["user"]["id"], error=error)
        await respond(**refusal(f"Slack did not open the service form ({error}). Please click again."))


def _form_values(service: DeployService | None) -> dict[str, Any] | None:
    """A service's fields as the service form prefills them (the webhook URL too: admins only)."""
    if service is None:
        return None
    return {
        "name": service.name,
        "action_type": service.action_type,
        "action": service.action,
        "default_env": service.default_env,
        "requires_approval": service.requires_approval,
        "channel": service.channel,
    }


def _service_data(fields: dict[str, Any], current: DeployService | None) -> dict[str, Any]:
    """The form as the validator takes a whole service: only the chosen type's action fields; an
    empty channel means none. GitHub inputs whose text is unchanged keep their stored type."""
    action_type = fields["action_type"]
    action: dict[str, Any] = {}
    for key in FORM_ACTION_FIELDS.get(action_type, ()):
        value = fields[f"action.{key}"]
        if key == "inputs":
            kept = (current.action.get("inputs") or {}) if current and current.action_type == action_type else {}
            value = {k: kept[k] if k in kept and inputs_text({k: kept[k]}) == inputs_text({k: v}) else v
                     for k, v in parse_inputs(value).items()}
        if value not in ("", {}):
            action[key] = value
    return {
        "name": fields["name"],
        "action_type": action_type,
        "action": action,
        "default_env": fields["default_env"],
        "requires_approval": fields["requires_approval"],
        "channel": fields["channel"].strip() or None,
    }


def _summary(service: DeployService) -> ServiceSummary:
    return ServiceSummary(
        id=service.id,
        name=service.name,
        action=describe_action(service),
        default_env=service.default_env,
        requires_approval=service.requires_approval,
        channel=service.channel,
    )


def _default_ref(service: DeployService) -> str:
    if service.action_type == "github_workflow":
        return service.action.get("ref") or DEFAULT_GITHUB_REF
    return ""


def _ref_hint(service: DeployService) -> str:
    if service.action_type == "github_workflow":
        return f"Branch, tag or commit the workflow runs on; empty means {_default_ref(service)}."
    if service.action_type == "heroku_promotion":
        return f"Heroku promotes the build running on {service.action.get('from_app')}; the ref is only recorded."
    return "Sent to the deploy webhook as `ref`; may be empty."