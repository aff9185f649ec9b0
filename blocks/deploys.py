"""Block Kit for deploys: the confirmation modal (and reading it back), the request message with
Approve / Reject while it waits and its outcome after, what the requester is told, the services
list and the usage text.

Pure functions over plain values. A request is anything with DeployRequest's fields (id,
service_name, env, ref, reason, requested_by, status, decided_by, trigger_error); the handler
words the action (`describe_action`, domain knowledge) and hands it over as text. Every piece of
user text in mrkdwn goes through `escape`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from blocks.applications import channel_ref, escape

# --- ids: Bolt routes on these; tests and the handler read the form by them --------------------------

CONFIRM_CALLBACK = "deploy_confirm"
APPROVE = "deploy_approve"
REJECT = "deploy_reject"

# The modal's block ids (each input's action id is the same word), keyed by the validator's fields.
FIELD_BLOCKS: dict[str, str] = {"env": "env", "ref": "ref", "reason": "reason"}

REASON_MAX = 500
MAX_SERVICES_SHOWN = 40  # well inside Slack's 50 blocks per message

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
    "Services are added and edited through the admin API: `POST /api/services`, `PUT /api/services/{id}`."
)


@dataclass(frozen=True)
class ServiceSummary:
    """One service as the list shows it; every text ready to display (not yet escaped)."""

    name: str
    action: str  # "GitHub workflow deploy.yml in acme/api"
    default_env: str
    requires_approval: bool
    channel: str | None


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _code(text: str) -> str:
    return "`" + escape(text).replace("`", "'") + "`"


# --- the confirmation modal ---------------------------------------------------------------------------


def _text_input(block_id: str, label: str, *, initial: str, placeholder: str, hint: str, optional: bool,
                multiline: bool = False, max_length: int | None = None) -> dict:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "placeholder": _plain(placeholder)}
    if initial:
        element["initial_value"] = initial
    if multiline:
        element["multiline"] = True
    if max_length:
        element["max_length"] = max_length
    return {"type": "input", "block_id": block_id, "label": _plain(label), "element": element,
            "optional": optional, "hint": _plain(hint)}


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
    """`/pulser deploy services`: each service, how it deploys, where it posts, approval."""
    blocks: list[dict] = []
    if notice:
        blocks.append(_section(notice))
    if not services:
        blocks.append(_section("*Deployable services*\nNone yet. An admin adds them through the API: `POST /api/services`."))
    else:
        blocks.append(_section(f"*Deployable services* ({len(services)})"))
        for s in services[:MAX_SERVICES_SHOWN]:
            facts = [escape(s.action), f"default env *{escape(s.default_env)}*"]
            facts.append(":lock: approval required" if s.requires_approval else "no approval needed")
            if s.channel:
                facts.append(f"posts in {channel_ref(s.channel)}")
            blocks.append(_section(f"*{escape(s.name)}* — " + " · ".join(facts)))
        if len(services) > MAX_SERVICES_SHOWN:
            blocks.append(_context(f"…and {len(services) - MAX_SERVICES_SHOWN} more (GET /api/services lists all)."))
    blocks.append(_context(
        "Deploy with `/pulser deploy <service> [ref]`. Services are added and edited through the API "
        "(`POST /api/services`); admins can remove one with `/pulser deploy remove <service>`."
    ))
    text = f"{len(services)} deployable services" if services else "No deployable services yet"
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


def usage_message(problem: str | None = None) -> dict:
    blocks = [_section(f":warning: {problem}")] if problem else []
    blocks.append(_section(USAGE))
    return {"response_type": "ephemeral", "text": problem or "Deploy with /pulser deploy <service> [ref]", "blocks": blocks}


def unknown_service(name: str, known: Sequence[str]) -> dict:
    """The named service does not exist: say so and list the ones that do."""
    listed = ", ".join(_code(n) for n in known) if known else "none yet — an admin adds them with `POST /api/services`"
    text = f":warning: There is no deploy service called {_code(name)}. Known services: {listed}."
    return {
        "response_type": "ephemeral",
        "text": f"There is no deploy service called '{name}'.",
        "blocks": [_section(text), _context("`/pulser deploy services` shows how each one deploys.")],
    }


def notice_message(text: str) -> dict:
    return {"response_type": "ephemeral", "text": text, "blocks": [_section(text)]}
