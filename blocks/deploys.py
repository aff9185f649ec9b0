"""Block Kit for deploys: the confirmation modal (and reading it back), the request message with
Approve / Reject while it waits and its outcome after, what the requester is told, the services
list (with Edit / Add service buttons), the modal that adds or edits a service, and the usage text.

Pure functions over plain values. A request is anything with DeployRequest's fields (id,
service_name, env, ref, reason, requested_by, status, decided_by, trigger_error); the handler
words the action (`describe_action`, domain knowledge) and hands it over as text. Every piece of
user text in mrkdwn goes through `escape`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from blocks.applications import escape
from blocks.kit import channel_ref, context as _context, count_noun, mrkdwn as _mrkdwn, plain as _plain, section as _section, text_input as _text_input

# --- ids: Bolt routes on these; tests and the handler read the form by them --------------------------

CONFIRM_CALLBACK = "deploy_confirm"
APPROVE = "deploy_approve"
REJECT = "deploy_reject"
SERVICE_CALLBACK = "deploy_service_form"  # add and edit share the modal; private_metadata tells them apart
ADD_SERVICE = "deploy_service_add"
EDIT_SERVICE = "deploy_service_edit"

# The modal's block ids (each input's action id is the same word), keyed by the validator's fields.
FIELD_BLOCKS: dict[str, str] = {"env": "env", "ref": "ref", "reason": "reason"}

REASON_MAX = 500
MAX_SERVICES_SHOWN = 40  # well inside Slack's 50 blocks per message

# The service modal's block ids (each input's action id is the same word), keyed by the validator's
# fields; an action's fields are "action.<key>" as alerts.deploys names them.
SERVICE_FIELD_BLOCKS: dict[str, str] = {
    "name": "service_name",
    "action_type": "action_type",
    "action.repo": "github_repo",
    "action.workflow": "github_workflow",
    "action.ref": "github_ref",
    "action.inputs": "github_inputs",
    "action.pipeline": "heroku_pipeline",
    "action.from_app": "heroku_from_app",
    "action.to_apps": "heroku_to_apps",
    "action.url": "webhook_url",
    "default_env": "default_env",
    "requires_approval": "requires_approval",
    "channel": "channel",
}
# The action types the select offers, in alerts.deploys' words (blocks may not import it).
ACTION_TYPE_LABELS: dict[str, str] = {
    "github_workflow": "GitHub workflow",
    "heroku_promotion": "Heroku pipeline promotion",
    "webhook": "Signed webhook",
}
APPROVAL_OPTION = "requires_approval"

STATUS_LINES = {
    "pending_approval": ":hourglass_flowing_sand: *Waiting for approval* — anyone but <@{requested_by}> can approve.",
    "approved": ":white_check_mark: Approved{by} — starting the deploy…",
    "triggered": ":rocket: *Deploy started*{approved}.",
    "trigger_failed": ":x: *Could not start the deploy*{approved}: {error}",
    "rejected": ":no_entry: *Rejected* by <@{decided_by}>.",
}

USAGE = (
    "*Deploy with Pulser*\n"
    "`/pulser deploy <service> [ref]` — confirm environment, ref and reason, then Pulser starts the deploy "
    "(or asks for approval first, if the service requires it).\n"
    "`/pulser deploy services` — the services you can deploy and how each one deploys.\n"
    "`/pulser deploy remove <service>` — remove a service (admins).\n"
    "`/pulser deploy add [name]` · `/pulser deploy edit <service>` — add or edit a service in a form (admins).\n"
    "Services can also be managed through the admin API: `POST /api/services`, `PUT /api/services/{id}`."
)


@dataclass(frozen=True)
class ServiceSummary:
    """One service as the list shows it; every text ready to display (not yet escaped)."""

    name: str
    action: str  # "GitHub workflow deploy.yml in acme/api"
    default_env: str
    requires_approval: bool
    channel: str | None
    id: int | None = None  # the Edit button's value; None shows no button


def _code(text: str) -> str:
    return "`" + escape(text).replace("`", "'") + "`"


# --- the confirmation modal ---------------------------------------------------------------------------


def confirm_modal(
    *,
    service: str,
    action: str,
    env: str,
    ref: str,
    ref_hint: str,
    requires_approval: bool,
    metadata: Mapping[str, Any],
) -> dict:
    """The form `/pulser deploy <service> [ref]` opens, prefilled; `metadata` (the service, where
    the command came from) rides along in private_metadata."""
    then = (
        "Someone other than you has to approve it before it starts."
        if requires_approval
        else "It starts as soon as you press Deploy."
    )
    blocks = [
        _section(f":rocket: *Deploy {escape(service)}*\n{escape(action)}"),
        _context(then),
        _text_input("env", "Environment", initial=env, placeholder="production", optional=False, max_length=40,
                    hint="Where to deploy, e.g. production or staging."),
        _text_input("ref", "Ref", initial=ref, placeholder="main", optional=True, max_length=200, hint=ref_hint),
        _text_input("reason", "Reason", initial="", placeholder="Why now? e.g. fix for the login bug",
                    optional=True, multiline=True, max_length=REASON_MAX,
                    hint="Shown on the deploy message and kept in the audit log."),
    ]
    return {
        "type": "modal",
        "callback_id": CONFIRM_CALLBACK,
        "title": _plain("Deploy"),
        "submit": _plain("Request approval" if requires_approval else "Deploy"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "blocks": blocks,
    }


def submitted_fields(values: Mapping[str, Any]) -> dict[str, str]:
    """The modal's state values → {"env", "ref", "reason"} (empty text for empty fields)."""
    fields: dict[str, str] = {}
    for field, block in FIELD_BLOCKS.items():
        element = (values.get(block) or {}).get(block) or {}
        fields[field] = element.get("value") or ""
    return fields


def form_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Validator errors keyed by the blocks that show them; anything else goes under env."""
    shown: dict[str, str] = {}
    for field, message in errors.items():
        block = FIELD_BLOCKS.get(field, FIELD_BLOCKS["env"])
        shown[block] = f"{shown[block]} {message}" if block in shown else message
    return shown


# --- the request message ----------------------------------------------------------------------------


def request_message(request: Any, *, action: str) -> dict:
    """Who asked to deploy what, where and why; Approve / Reject while it waits, the outcome after."""
    ref = f" ({request.ref})" if request.ref else ""
    text = (
        f"Deploy request: {request.service_name}{ref} to {request.env} by <@{request.requested_by}>"
        f" — {_status_text(request)}"
    )
    facts = [
        _mrkdwn(f"*Service*\n{escape(request.service_name)}"),
        _mrkdwn(f"*Environment*\n{escape(request.env)}"),
        _mrkdwn(f"*Ref*\n{_code(request.ref) if request.ref else '—'}"),
        _mrkdwn(f"*Requested by*\n<@{request.requested_by}>"),
    ]
    blocks: list[dict] = [
        _section(
            f":rocket: *Deploy request #{request.id}*: {escape(request.service_name)}{escape(ref)}"
            f" to *{escape(request.env)}*"
        ),
        {"type": "section", "fields": facts},
    ]
    if request.reason:
        blocks.append(_section("*Why*\n>" + escape(request.reason)))
    blocks.append(_context(escape(action)))
    blocks.append(_section(_status_line(request)))
    if request.status == "pending_approval":
        value = str(request.id)
        blocks.append({
            "type": "actions",
            "block_id": f"deploy_request_{request.id}",
            "elements": [
                {"type": "button", "action_id": APPROVE, "text": _plain("Approve"), "value": value, "style": "primary",
                 "confirm": {
                     "title": _plain("Approve this deploy?"),
                     "text": _mrkdwn(
                         f"{escape(request.service_name)}{escape(ref)} starts deploying to {escape(request.env)} at once."
                     ),
                     "confirm": _plain("Approve"),
                     "deny": _plain("Cancel"),
                 }},
                {"type": "button", "action_id": REJECT, "text": _plain("Reject"), "value": value, "style": "danger"},
            ],
        })
    return {"text": text, "blocks": blocks}


def _status_line(request: Any) -> str:
    approved = f" — approved by <@{request.decided_by}>" if request.decided_by else ""
    template = STATUS_LINES.get(request.status, "{status}")
    return template.format(
        by=f" by <@{request.decided_by}>" if request.decided_by else "",
        requested_by=request.requested_by,
        decided_by=request.decided_by or "someone",
        approved=approved,
        error=escape(request.trigger_error or "no reason given"),
        status=escape(request.status),
    )


def _status_text(request: Any) -> str:
    return {
        "pending_approval": "waiting for approval",
        "approved": "approved, starting",
        "triggered": "deploy started",
        "trigger_failed": f"could not start: {request.trigger_error or 'no reason given'}",
        "rejected": "rejected",
    }.get(request.status, request.status)


# --- what the requester is told ---------------------------------------------------------------------


def requester_notice(request: Any, *, channel: str) -> dict:
    """An ephemeral for the requester: waiting where, started, or why it did not start."""
    what = f"{_code(request.service_name)}{' ' + _code(request.ref) if request.ref else ''} to *{escape(request.env)}*"
    where = channel_ref(channel)
    if request.status == "pending_approval":
        text = (
            f":hourglass_flowing_sand: Your deploy of {what} is waiting for approval in {where}."
            " Someone else has to approve it."
        )
    elif request.status == "triggered":
        text = f":rocket: Deploy of {what} started. Follow it in {where}."
    elif request.status == "trigger_failed":
        text = f":x: Deploy of {what} could not be started: {escape(request.trigger_error or 'no reason given')}"
    elif request.status == "rejected":
        text = f":no_entry: Deploy of {what} was rejected."
    else:
        text = f"Deploy of {what}: {escape(request.status)}."
    return {"response_type": "ephemeral", "text": text, "blocks": [_section(text)]}


def refusal(text: str) -> dict:
    """An ephemeral that says why nothing was done (the text is Pulser's own mrkdwn)."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text,
            "blocks": [_section(f":no_entry_sign: {text}")]}


# --- services and usage -----------------------------------------------------------------------------


def services_list(services: Sequence[ServiceSummary], *, notice: str | None = None) -> dict:
    """`/pulser deploy services`: each service, how it deploys, where it posts, approval; an Edit
    button on each and an "Add service" button (the handler refuses the clicks of non-admins)."""
    blocks: list[dict] = []
    if notice:
        blocks.append(_section(notice))
    if not services:
        blocks.append(_section("*Deployable services*\nNone yet. An admin adds one with the button below."))
    else:
        blocks.append(_section(f"*Deployable services* ({len(services)})"))
        for s in services[:MAX_SERVICES_SHOWN]:
            facts = [escape(s.action), f"default env *{escape(s.default_env)}*"]
            facts.append(":lock: approval required" if s.requires_approval else "no approval needed")
            if s.channel:
                facts.append(f"posts in {channel_ref(s.channel)}")
            block = _section(f"*{escape(s.name)}* — " + " · ".join(facts))
            if s.id is not None:  # an accessory, so each service stays one block
                block["accessory"] = _service_button("Edit", EDIT_SERVICE, str(s.id))
            blocks.append(block)
        if len(services) > MAX_SERVICES_SHOWN:
            blocks.append(_context(f"…and {len(services) - MAX_SERVICES_SHOWN} more (GET /api/services lists all)."))
    blocks.append({"type": "actions", "block_id": "deploy_services_actions",
                   "elements": [_service_button("Add service", ADD_SERVICE, "add", style="primary")]})
    blocks.append(_context(
        "Deploy with `/pulser deploy <service> [ref]`. Admins add, edit (`/pulser deploy edit <service>`) "
        "and remove (`/pulser deploy remove <service>`) services; the API works too (`POST /api/services`)."
    ))
    text = count_noun(len(services), "deployable service") if services else "No deployable services yet"
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


def _service_button(text: str, action_id: str, value: str, style: str | None = None) -> dict:
    button: dict[str, Any] = {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


# --- the service modal (add and edit) ----------------------------------------------------------------


def service_modal(*, service: Mapping[str, Any] | None = None, metadata: Mapping[str, Any], name: str = "") -> dict:
    """The form `/pulser deploy add` opens empty and `/pulser deploy edit <service>` opens with the
    service's fields (`service`: name, action_type, action, default_env, requires_approval,
    channel). Every action field is optional here so one form serves the three action types; the
    validator checks the chosen type's. An edit's service id rides along in `metadata`."""
    current = dict(service or {})
    action = dict(current.get("action") or {})
    action_type = current.get("action_type")
    # prefill only the current type's fields; the others start empty
    github, heroku, webhook = (action if action_type == kind else {} for kind in ACTION_TYPE_LABELS)
    options = [_option(label, value) for value, label in ACTION_TYPE_LABELS.items()]
    type_select: dict[str, Any] = {"type": "static_select", "action_id": "action_type",
                                   "placeholder": _plain("How this service deploys"), "options": options}
    if action_type in ACTION_TYPE_LABELS:
        type_select["initial_option"] = _option(ACTION_TYPE_LABELS[action_type], action_type)
    approval_option = _option("Someone other than the requester approves each deploy", APPROVAL_OPTION)
    approval: dict[str, Any] = {"type": "checkboxes", "action_id": "requires_approval", "options": [approval_option]}
    if current.get("requires_approval"):
        approval["initial_options"] = [approval_option]

    def text(field: str, label: str, value: Any, placeholder: str, hint: str, **extra: Any) -> dict:
        block = SERVICE_FIELD_BLOCKS[field]
        initial = "" if value is None else str(value)
        return _text_input(block, label, initial=initial, placeholder=placeholder, hint=hint, optional=True, **extra)

    blocks = [
        _text_input("service_name", "Name", initial=str(current.get("name") or name), placeholder="api",
                    optional=False, max_length=80, hint="What people type: /pulser deploy <name>."),
        {"type": "input", "block_id": "action_type", "label": _plain("Deploys with"), "element": type_select},
        _context("*GitHub workflow* — fill these when it deploys with a GitHub workflow."),
        text("action.repo", "GitHub repository", github.get("repo"), "acme/api", "owner/name"),
        text("action.workflow", "GitHub workflow", github.get("workflow"), "deploy.yml",
             "The workflow's file name or numeric id; it needs a workflow_dispatch trigger."),
        text("action.ref", "GitHub ref", github.get("ref"), "main",
             "The branch or tag it runs on by default; empty means main."),
        text("action.inputs", "GitHub inputs", inputs_text(github.get("inputs")), "environment={env}",
             "One key=value a line; {env}, {ref}, {reason}, {requested_by} are filled in per deploy.", multiline=True),
        _context("*Heroku pipeline promotion* — fill these when it promotes a Heroku build."),
        text("action.pipeline", "Heroku pipeline id", heroku.get("pipeline"), "01234567-89ab-cdef-0123-456789abcdef",
             "heroku pipelines:info <name> --json shows it."),
        text("action.from_app", "Heroku app to promote from", heroku.get("from_app"), "acme-staging",
             "The app whose running build is promoted."),
        text("action.to_apps", "Heroku apps to promote to", ", ".join(heroku.get("to_apps") or []),
             "acme-prod, acme-prod-eu",
             "Comma-separated."),
        _context("*Signed webhook* — fill this when it deploys by calling a URL (signed with X-Pulser-Signature)."),
        text("action.url", "Webhook URL", webhook.get("url"), "https://deploy.example.com/hooks/pulser",
             "http:// or https://; shown only to admins."),
        {"type": "divider"},
        _text_input("default_env", "Default environment", initial=str(current.get("default_env") or "production"),
                    placeholder="production", optional=False, max_length=40,
                    hint="Prefilled when someone deploys; they can change it."),
        {"type": "input", "block_id": "requires_approval", "label": _plain("Approval"), "element": approval,
         "optional": True},
        _text_input("channel", "Channel", initial=str(current.get("channel") or ""), placeholder="#ops-deploy",
                    optional=True, max_length=80,
                    hint="Where requests and outcomes are posted; empty means the channel routed for deploy events."),
    ]
    editing = bool(current.get("name"))
    return {
        "type": "modal",
        "callback_id": SERVICE_CALLBACK,
        "title": _plain("Edit deploy service" if editing else "Add deploy service"),
        "submit": _plain("Save" if editing else "Add"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(dict(metadata), separators=(",", ":")),
        "blocks": blocks,
    }


def _option(label: str, value: str) -> dict:
    return {"text": _plain(label), "value": value}


def inputs_text(inputs: Mapping[str, Any] | None) -> str:
    """GitHub inputs as the form shows them: one `key=value` a line (true/false as JSON writes them)."""
    return "\n".join(f"{key}={_input_value(value)}" for key, value in (inputs or {}).items())


def _input_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def parse_inputs(text: str) -> dict[str, Any]:
    """`key=value` lines → {key: value}; a line without `=` becomes {line: None}, which the
    validator names as a bad input (so the message shows under the inputs field)."""
    inputs: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        inputs[key.strip() if sep else line] = value.strip() if sep else None
    return inputs


def submitted_service_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The service modal's state → {validator field: text}, plus `action_type` (None when not chosen)
    and `requires_approval` (a bool). Empty texts are ""."""
    def element(block: str) -> dict:
        return (values.get(block) or {}).get(block) or {}

    fields: dict[str, Any] = {
        field: element(block).get("value") or ""
        for field, block in SERVICE_FIELD_BLOCKS.items()
        if field not in ("action_type", "requires_approval")
    }
    fields["action_type"] = (element("action_type").get("selected_option") or {}).get("value")
    chosen = element("requires_approval").get("selected_options") or []
    fields["requires_approval"] = any(o.get("value") == APPROVAL_OPTION for o in chosen)
    return fields


def service_form_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Validator errors keyed by the blocks that show them; an error without its own block (the
    action as a whole, an unknown field) goes under the action type."""
    shown: dict[str, str] = {}
    for field, message in errors.items():
        block = SERVICE_FIELD_BLOCKS.get(field, SERVICE_FIELD_BLOCKS["action_type"])
        shown[block] = f"{shown[block]} {message}" if block in shown else message
    return shown


def service_saved(name: str, action: str, *, added: bool) -> dict:
    """The admin's confirmation after the service form: what was saved and how to deploy it."""
    verb = "Added" if added else "Saved"
    text = (
        f":white_check_mark: {verb} deploy service *{escape(name)}* — {escape(action)}. "
        f"Deploy it with {_code('/pulser deploy ' + name)}."
    )
    return {"response_type": "ephemeral", "text": f"{verb} deploy service {name}", "blocks": [_section(text)]}


def usage_message(problem: str | None = None) -> dict:
    blocks = [_section(f":warning: {problem}")] if problem else []
    blocks.append(_section(USAGE))
    return {"response_type": "ephemeral", "text": problem or "Deploy with /pulser deploy <service> [ref]", "blocks": blocks}


def unknown_service(name: str, known: Sequence[str]) -> dict:
    """The named service does not exist: say so and list the ones that do."""
    listed = ", ".join(_code(n) for n in known) if known else "none yet — an admin adds them with `/pulser deploy add`"
    text = f":warning: There is no deploy service called {_code(name)}. Known services: {listed}."
    return {
        "response_type": "ephemeral",
        "text": f"There is no deploy service called '{name}'.",
        "blocks": [_section(text), _context("`/pulser deploy services` shows how each one deploys.")],
    }


def notice_message(text: str) -> dict:
    return {"response_type": "ephemeral", "text": text, "blocks": [_section(text)]}
