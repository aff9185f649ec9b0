"""Deploys: the services `/pulser deploy` knows, deploy requests with their approval, and the
actions that start a deploy (a GitHub workflow_dispatch, a Heroku pipeline promotion, a signed
generic webhook).

Rules:
- a service that requires approval waits as `pending_approval` until someone other than the
  requester approves it; only then is its action sent. Otherwise the action is sent at once;
- each move of a request is one conditional UPDATE (storage.deploys), so two clicks or two
  processes never send an action twice;
- a failing action leaves the request `trigger_failed` with one line saying why — never a stack
  trace, never a token or a webhook URL;
- every decision (request, approve, reject, trigger outcome, refusals) goes to the audit log.

One validator serves the API and Slack; errors name the field (`{"action.repo": "..."}`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict
from typing import Any, Callable, Mapping, NoReturn
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import structlog

from alerts.applications import CHANNEL, ValidationError
from alerts.platform_events import EventSpec, PlatformEvents
from alerts.sources.heroku_api import HerokuError, HerokuNotConfigured
from alerts.tls import client_context
from storage import audit
from storage import deploys as store
from storage.deploys import DeployRequest, DeployService, ServiceNameTaken, ServiceSpec

__all__ = [
    "ACTION_TYPES", "DeployRefused", "DeployRequest", "DeployService", "Deploys", "ServiceNameTaken", "ServiceSpec",
    "UnknownService", "ValidationError", "correlation", "create_service", "delete_service", "describe_action", "sign",
    "update_service", "validate_request", "validate_service",
]

log = structlog.get_logger(__name__)

ACTION_TYPES = ("github_workflow", "heroku_promotion", "webhook")
FIELDS = ("name", "action_type", "action", "default_env", "requires_approval", "channel")
ACTION_FIELDS = {
    "github_workflow": ("repo", "workflow", "ref", "inputs"),
    "heroku_promotion": ("pipeline", "from_app", "to_apps"),
    "webhook": ("url",),
}
# Words `/pulser deploy` reads as subcommands; a service cannot be called one of them.
RESERVED_NAMES = ("add", "edit", "help", "list", "remove", "services")
DEFAULT_ENV = "production"
DEFAULT_GITHUB_REF = "main"
TRIGGER_TIMEOUT = 10.0
MAX_INPUTS = 25  # GitHub's limit for workflow_dispatch inputs
MAX_TARGETS = 20
REASON_MAX = 500
ERROR_MAX = 300
GITHUB_ACCEPT = "application/vnd.github+json"
GITHUB_API_VERSION = "2022-11-28"
SIGNATURE_HEADER = "X-Pulser-Signature"

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
GIT_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/@+-]{0,199}$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
WORKFLOW = re.compile(r"^([0-9]{1,18}|[A-Za-z0-9._-]{1,200}\.ya?ml)$")
HEROKU_APP = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
# What a GitHub input value may refer to: `{"environment": "{env}"}` sends the request's env.
INPUT_PLACEHOLDERS = ("env", "ref", "reason", "requested_by", "approved_by", "request_id", "service")

DeployCounter = Callable[[str, str], None]


class UnknownService(LookupError):
    """No service by this name; `known` lists the ones there are, for a message that helps."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        listed = ", ".join(known) if known else "none yet (add one with POST /api/services)"
        super().__init__(f"There is no deploy service called “{name}”. Known services: {listed}.")


class DeployRefused(Exception):
    """A decision Pulser will not take, in words for the person who asked (Slack mrkdwn)."""


class _TriggerFailed(Exception):
    """The action was not accepted; `str()` is one line for people (no secrets)."""


# --- validation -----------------------------------------------------------------------------------


def validate_service(data: Mapping[str, Any], *, current: ServiceSpec | None = None) -> ServiceSpec:
    """Validate a full service (current=None) or a partial update of `current`.

    `action` is replaced as a whole when given; changing `action_type` needs a new `action`.
    Collects every field's error before raising.
    """
    errors: dict[str, str] = {}
    for key in sorted(set(data) - set(FIELDS)):
        errors[key] = "unknown field"

    def pick(field: str, default: Any) -> Any:
        if field in data:
            return data[field]
        return getattr(current, field) if current is not None else default

    name = pick("name", None)
    if not isinstance(name, str) or not SERVICE_NAME.match(name.strip()):
        errors["name"] = "required: 1–80 letters, digits, '.', '_' or '-', starting with a letter or digit"
    else:
        name = name.strip()
        if name.lower() in RESERVED_NAMES:
            errors["name"] = f"“{name}” is a /pulser deploy subcommand; choose another name"

    action_type = pick("action_type", None)
    if action_type not in ACTION_TYPES:
        errors["action_type"] = "required: one of " + ", ".join(ACTION_TYPES)
    if "action" in data:
        raw_action = data["action"]
    elif current is not None and action_type == current.action_type:
        raw_action = current.action
    else:
        raw_action = None
    action: dict[str, Any] = {}
    if raw_action is None:
        if action_type in ACTION_TYPES:
            errors["action"] = f"required: an object with {', '.join(ACTION_FIELDS[action_type])}"
    elif not isinstance(raw_action, Mapping):
        errors["action"] = "must be an object"
    elif action_type in ACTION_TYPES:
        action = _validate_action(action_type, raw_action, errors)

    default_env = pick("default_env", DEFAULT_ENV)
    if not isinstance(default_env, str) or not ENV_NAME.match(default_env.strip()):
        errors["default_env"] = "must be 1–40 letters, digits, '.', '_' or '-', like production or staging"
    else:
        default_env = default_env.strip()

    requires_approval = pick("requires_approval", False)
    if not isinstance(requires_approval, bool):
        errors["requires_approval"] = "must be true or false"

    channel = pick("channel", None)
    if channel in ("", None):
        channel = None
    elif not isinstance(channel, str) or not CHANNEL.match(channel):
        errors["channel"] = "must be a channel like #ops-deploy or a channel ID like C012ABCDEF (or empty)"

    if errors:
        raise ValidationError(errors)
    return ServiceSpec(
        name=name,
        action_type=action_type,
        action=action,
        default_env=default_env,
        requires_approval=requires_approval,
        channel=channel,
    )


def _validate_action(action_type: str, raw: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    for key in sorted(set(raw) - set(ACTION_FIELDS[action_type])):
        errors[f"action.{key}"] = f"unknown field for {action_type}"
    if action_type == "github_workflow":
        return _github_action(raw, errors)
    if action_type == "heroku_promotion":
        return _heroku_action(raw, errors)
    url = raw.get("url")
    if not isinstance(url, str) or not _http_url(url.strip()):
        errors["action.url"] = "required: an http:// or https:// URL"
        return {}
    return {"url": url.strip()}


def _github_action(raw: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    action: dict[str, Any] = {}
    repo = raw.get("repo")
    if not isinstance(repo, str) or not GITHUB_REPO.match(repo.strip()):
        errors["action.repo"] = "required: the repository as owner/name"
    else:
        action["repo"] = repo.strip()
    workflow = raw.get("workflow")
    if isinstance(workflow, int) and not isinstance(workflow, bool):
        workflow = str(workflow)
    if not isinstance(workflow, str) or not WORKFLOW.match(workflow.strip()):
        errors["action.workflow"] = "required: the workflow's file name (deploy.yml) or its numeric id"
    else:
        action["workflow"] = workflow.strip()
    ref = raw.get("ref") or DEFAULT_GITHUB_REF
    if not isinstance(ref, str) or not valid_ref(ref.strip()):
        errors["action.ref"] = "must be a branch or tag name, like main"
    else:
        action["ref"] = ref.strip()
    inputs = raw.get("inputs")
    if inputs not in (None, {}):
        if not isinstance(inputs, Mapping) or len(inputs) > MAX_INPUTS:
            errors["action.inputs"] = f"must be an object of at most {MAX_INPUTS} inputs"
        elif bad := sorted(
            k for k, v in inputs.items()
            if not INPUT_NAME.match(str(k)) or isinstance(v, (dict, list)) or v is None
        ):
            errors["action.inputs"] = (
                f"inputs need names like 'environment' and text, number or true/false values: {', '.join(bad)}"
            )
        else:
            action["inputs"] = dict(inputs)
    return action


def _heroku_action(raw: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    action: dict[str, Any] = {}
    pipeline = raw.get("pipeline")
    if not isinstance(pipeline, str) or not UUID.match(pipeline.strip()):
        errors["action.pipeline"] = "required: the pipeline's id (a UUID: heroku pipelines:info <name> --json)"
    else:
        action["pipeline"] = pipeline.strip().lower()
    from_app = raw.get("from_app")
    if not isinstance(from_app, str) or not _heroku_app(from_app.strip()):
        errors["action.from_app"] = "required: the app to promote from (a Heroku app name or id)"
    else:
        action["from_app"] = from_app.strip()
    to_apps = raw.get("to_apps")
    if isinstance(to_apps, str):
        to_apps = [a for a in re.split(r"[,\s]+", to_apps) if a]
    if (
        not isinstance(to_apps, list) or not 1 <= len(to_apps) <= MAX_TARGETS
        or not all(isinstance(a, str) and _heroku_app(a.strip()) for a in to_apps)
    ):
        errors["action.to_apps"] = f"required: a list of 1–{MAX_TARGETS} Heroku app names or ids to promote to"
    elif action.get("from_app") in [a.strip() for a in to_apps]:
        errors["action.to_apps"] = "must not include the app promoted from"
    else:
        action["to_apps"] = list(dict.fromkeys(a.strip() for a in to_apps))
    return action


def validate_request(env: Any, ref: Any, reason: Any) -> tuple[str, str, str]:
    """(env, ref, reason) of a deploy request, trimmed; ValidationError names the bad fields."""
    errors: dict[str, str] = {}
    env = env.strip() if isinstance(env, str) else ""
    if not ENV_NAME.match(env):
        errors["env"] = "required: 1–40 letters, digits, '.', '_' or '-', like production or staging"
    ref = ref.strip() if isinstance(ref, str) else ""
    if ref and not valid_ref(ref):
        errors["ref"] = "must be a branch, tag or commit, like main, v1.2.3 or a1b2c3d"
    reason = " ".join(reason.split()) if isinstance(reason, str) else ""
    if len(reason) > REASON_MAX:
        errors["reason"] = f"too long: {len(reason)} characters, at most {REASON_MAX}"
    if errors:
        raise ValidationError(errors)
    return env, ref, reason


def valid_ref(ref: str) -> bool:
    return bool(GIT_REF.match(ref)) and ".." not in ref and not ref.endswith((".", "/", ".lock"))


def describe_action(service: DeployService | ServiceSpec) -> str:
    """What the service's deploy does, for people: never a webhook URL (it may hold a token)."""
    action = service.action
    if service.action_type == "github_workflow":
        return f"GitHub workflow {action.get('workflow')} in {action.get('repo')}"
    if service.action_type == "heroku_promotion":
        return f"Heroku promotion {action.get('from_app')} → {', '.join(action.get('to_apps') or [])}"
    host = urlsplit(str(action.get("url") or "")).hostname or "?"
    return f"signed webhook to {host}"


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1" and the like: not a URL at all
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def _heroku_app(app: str) -> bool:
    return bool(HEROKU_APP.match(app) or UUID.match(app))


# --- the service ----------------------------------------------------------------------------------


class Deploys:
    """Services, requests, approval and triggers; one per process, `close()` on shutdown."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        events: PlatformEvents,
        *,
        github_token: str | None,
        github_api_url: str,
        heroku_client: object,
        webhook_secret: str | None,
        on_deploy: DeployCounter | None = None,
        timeout: float = TRIGGER_TIMEOUT,
        default_channel: str | None = None,
    ):
        self.pool = pool
        self.events = events
        self.github_api_url = github_api_url.rstrip("/")
        self.heroku_client = heroku_client
        self.default_channel = default_channel or getattr(events, "default_channel", None) or "#ops-alerts"
        self.timeout = timeout
        self._github_token = github_token or None
        self._webhook_secret = webhook_secret or None
        self._on_deploy = on_deploy or (lambda service, status: None)
        self._http = httpx.AsyncClient(verify=client_context(), timeout=httpx.Timeout(timeout), headers={"User-Agent": "pulser"})

    def __repr__(self) -> str:  # tokens must not show up in a traceback's locals
        return f"Deploys(github_api_url={self.github_api_url!r})"

    async def close(self) -> None:
        await self._http.aclose()

    # --- services ---------------------------------------------------------------------------------

    async def services(self) -> list[DeployService]:
        return await store.list_services(self.pool)

    async def service(self, name: str) -> DeployService:
        """The service called `name` (any case); UnknownService lists the known ones."""
        found = await store.get_service_by_name(self.pool, name.strip())
        if found is None:
            raise UnknownService(name.strip(), await store.service_names(self.pool))
        return found

    async def get_service(self, service_id: int) -> DeployService | None:
        return await store.get_service(self.pool, service_id)

    async def create_service(self, data: Mapping[str, Any], *, user: str) -> DeployService:
        return await create_service(self.pool, data, user=user)

    async def update_service(self, service_id: int, data: Mapping[str, Any], *, user: str) -> DeployService | None:
        return await update_service(self.pool, service_id, data, user=user)

    async def delete_service(self, service_id: int, *, user: str) -> DeployService | None:
        return await delete_service(self.pool, service_id, user=user)

    async def deploy_channel(self, service: DeployService) -> str:
        """The service's own channel, else the route of event type "deploy", else SLACK_CHANNEL."""
        return service.channel or await store.routed_channel(self.pool, "deploy") or self.default_channel

    # --- requests ---------------------------------------------------------------------------------

    async def create_request(self, service_name: str, env: Any, ref: Any, reason: Any, user: str) -> DeployRequest:
        """Validate and store a request without sending anything: `pending_approval` when the
        service requires approval, otherwise `approved` and ready for `trigger`. Quick, so a modal
        can show errors inline before Slack's 3 s are up."""
        service = await self.service(service_name)
        env, ref, reason = validate_request(env, ref, reason)
        if not ref and service.action_type == "github_workflow":
            ref = service.action.get("ref") or DEFAULT_GITHUB_REF
        status = "pending_approval" if service.requires_approval else "approved"
        request = await store.create_request(
            self.pool, service_id=service.id, env=env, ref=ref, reason=reason, requested_by=user, status=status
        )
        await self._audit(
            user, "deploy.request", "deploy_request", request.id,
            {"service": service.name, "env": env, "ref": ref, "reason": reason, "status": status},
        )
        self._on_deploy(service.name, status)
        log.info("deploy.requested", service=service.name, env=env, request_id=request.id, status=status, by=user)
        return request

    async def request_deploy(self, service_name: str, env: Any, ref: Any, reason: Any, user: str) -> DeployRequest:
        """Store a request and, unless the service requires approval, send its action now."""
        request = await self.create_request(service_name, env, ref, reason, user)
        if request.status == "approved":
            return await self.trigger(request.id, user=user)
        return request

    async def get_request(self, request_id: int) -> DeployRequest | None:
        return await store.get_request(self.pool, request_id)

    async def requests(self, *, limit: int = 100, offset: int = 0) -> list[DeployRequest]:
        """Newest first."""
        return await store.list_requests(self.pool, limit=limit, offset=offset)

    async def approve(self, request_id: int, user: str) -> DeployRequest:
        """Approve a pending request and send its action. DeployRefused when `user` asked for it
        themselves, or it is not pending any more."""
        decided = await store.decide_request(self.pool, request_id, status="approved", user=user, allow_requester=False)
        if decided is None:
            await self._refuse(request_id, user, "approve")
        await self._audit(user, "deploy.approve", "deploy_request", request_id, _request_details(decided))
        await store.set_request_message_status(self.pool, request_id, "approved")
        self._on_deploy(decided.service_name, "approved")
        log.info("deploy.approved", service=decided.service_name, request_id=request_id, by=user)
        return await self.trigger(request_id, user=user)

    async def reject(self, request_id: int, user: str) -> DeployRequest:
        """Reject a pending request; the requester may withdraw their own this way."""
        decided = await store.decide_request(self.pool, request_id, status="rejected", user=user, allow_requester=True)
        if decided is None:
            await self._refuse(request_id, user, "reject")
        await self._audit(user, "deploy.reject", "deploy_request", request_id, _request_details(decided))
        await store.set_request_message_status(self.pool, request_id, "rejected")
        self._on_deploy(decided.service_name, "rejected")
        log.info("deploy.rejected", service=decided.service_name, request_id=request_id, by=user)
        return decided

    async def _refuse(self, request_id: int, user: str, verb: str) -> NoReturn:
        """Say why `verb` did not happen, audit the attempt, raise DeployRefused."""
        request = await store.get_request(self.pool, request_id)
        if request is None:
            text = "That deploy request no longer exists (its service was removed)."
        elif request.status == "pending_approval" and request.requested_by == user:
            text = "You requested this deploy, so someone else has to approve it. You can still reject it to withdraw it."
        else:
            text = f"This deploy request is no longer waiting for approval: {_status_words(request)}."
        await self._audit(user, f"deploy.{verb}_refused", "deploy_request", request_id, {"reason": text})
        log.info("deploy.refused", request_id=request_id, verb=verb, by=user)
        raise DeployRefused(text)

    async def trigger(self, request_id: int, *, user: str) -> DeployRequest:
        """Send an approved request's action, once: a request already sent (or not approved) is
        returned as it is. The outcome is `triggered` or `trigger_failed` with the reason."""
        claimed = await store.claim_for_trigger(self.pool, request_id)
        if claimed is None:
            current = await store.get_request(self.pool, request_id)
            if current is None:
                raise DeployRefused("That deploy request no longer exists (its service was removed).")
            return current
        service = await store.get_service(self.pool, claimed.service_id)
        if service is None:  # removed this instant: the request went with it, nothing is sent
            return claimed
        try:
            details = await self._send(service, claimed)
        except _TriggerFailed as exc:
            error = _one_line(str(exc))
            failed = await store.mark_trigger_failed(self.pool, request_id, error)
            await self._audit(
                user, "deploy.trigger", "deploy_request", request_id,
                {**_request_details(claimed), "outcome": "trigger_failed", "error": error},
            )
            await store.set_request_message_status(self.pool, request_id, "trigger_failed")
            self._on_deploy(service.name, "trigger_failed")
            log.warning("deploy.trigger_failed", service=service.name, request_id=request_id, error=error)
            return failed or claimed
        await self._audit(
            user, "deploy.trigger", "deploy_request", request_id,
            {**_request_details(claimed), "outcome": "triggered", **details},
        )
        await store.set_request_message_status(self.pool, request_id, "triggered")
        await self._record_started(service, claimed, details)
        self._on_deploy(service.name, "triggered")
        log.info("deploy.triggered", service=service.name, request_id=request_id, action=service.action_type)
        return claimed

    # --- the request's Slack message --------------------------------------------------------------

    async def attach_message(self, request: DeployRequest, *, channel: str, ts: str) -> None:
        """Remember where the request's message is, so decisions can update it in place."""
        await store.record_request_message(
            self.pool, request.id,
            title=f"Deploy requested: {request.service_name} to {request.env}",
            status=request.status, service=request.service_name, env=request.env, actor=request.requested_by,
            channel=channel, ts=ts, details={"request_id": request.id, "ref": request.ref, "reason": request.reason},
        )

    async def message_of(self, request_id: int) -> tuple[str, str] | None:
        """(channel, ts) of the request's message, if it has one."""
        return await store.request_message(self.pool, request_id)

    # --- the actions ------------------------------------------------------------------------------

    async def _send(self, service: DeployService, request: DeployRequest) -> dict[str, Any]:
        """Send the action; details worth keeping (a promotion id, a link) or _TriggerFailed."""
        try:
            if service.action_type == "github_workflow":
                return await self._dispatch_workflow(service, request)
            if service.action_type == "heroku_promotion":
                return await self._promote(service, request)
            return await self._call_webhook(service, request)
        except _TriggerFailed:
            raise
        except httpx.TimeoutException:
            raise _TriggerFailed(f"{_target(service)} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _TriggerFailed(f"could not reach {_target(service)}: {type(exc).__name__}") from None
        except Exception as exc:  # a bug must not leave the request claimed and silent
            log.error("deploy.trigger_error", service=service.name, request_id=request.id, error=type(exc).__name__)
            raise _TriggerFailed(f"unexpected error: {type(exc).__name__}") from None

    async def _dispatch_workflow(self, service: DeployService, request: DeployRequest) -> dict[str, Any]:
        if self._github_token is None:
            raise _TriggerFailed("GITHUB_TOKEN is not set, so Pulser cannot start GitHub workflows")
        action = service.action
        repo, workflow = action["repo"], action["workflow"]
        ref = request.ref or action.get("ref") or DEFAULT_GITHUB_REF
        values = _placeholders(service, request)
        inputs = {k: _fill(v, values) for k, v in (action.get("inputs") or {}).items()}
        url = f"{self.github_api_url}/repos/{repo}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        response = await self._http.post(
            url,
            json={"ref": ref, "inputs": inputs},
            headers={
                "Authorization": f"Bearer {self._github_token}",
                "Accept": GITHUB_ACCEPT,
                "X-GitHub-Api-Version": GITHUB_API_VERSION,
            },
        )
        if not response.is_success:
            raise _TriggerFailed(_github_error(response))
        link = _github_web_url(self.github_api_url)
        return {"link": f"{link}/{repo}/actions/workflows/{quote(workflow, safe='')}" if link else None}

    async def _promote(self, service: DeployService, request: DeployRequest) -> dict[str, Any]:
        client = self.heroku_client
        if client is None or not getattr(client, "configured", True):
            raise _TriggerFailed("HEROKU_API_KEY is not set, so Pulser cannot promote Heroku pipelines")
        action = service.action
        body = {
            "pipeline": {"id": action["pipeline"]},
            "source": {"app": _heroku_app_ref(action["from_app"])},
            "targets": [{"app": _heroku_app_ref(app)} for app in action["to_apps"]],
        }
        try:
            promotion = await client.post("/pipeline-promotions", body)  # type: ignore[attr-defined]
        except HerokuNotConfigured:
            raise _TriggerFailed("HEROKU_API_KEY is not set, so Pulser cannot promote Heroku pipelines") from None
        except HerokuError as exc:
            raise _TriggerFailed(str(exc)) from None
        promotion = promotion if isinstance(promotion, dict) else {}
        return {
            "promotion_id": promotion.get("id"),
            "promotion_status": promotion.get("status"),
            "link": f"https://dashboard.heroku.com/pipelines/{action['pipeline']}",
        }

    async def _call_webhook(self, service: DeployService, request: DeployRequest) -> dict[str, Any]:
        if self._webhook_secret is None:
            raise _TriggerFailed(
                "PULSER_DEPLOY_WEBHOOK_SECRET is not set, so Pulser will not send an unsigned deploy webhook"
            )
        body = json.dumps(
            {
                "service": service.name,
                "env": request.env,
                "ref": request.ref,
                "reason": request.reason,
                "requested_by": request.requested_by,
                "approved_by": request.decided_by,
                "request_id": request.id,
            },
            separators=(",", ":"),
        ).encode()
        response = await self._http.post(
            service.action["url"],
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._webhook_secret, body)},
        )
        if not response.is_success:
            raise _TriggerFailed(f"the deploy webhook answered HTTP {response.status_code}")
        return {"link": None}

    async def _record_started(self, service: DeployService, request: DeployRequest, details: dict[str, Any]) -> None:
        """Post "deploy started" to the deploy channel as a platform event; events sent later with
        the correlation `deploy-request-<id>` (POST /events) update that message in place."""
        where = f" ({request.ref})" if request.ref else ""
        shown = {
            "ref": request.ref,
            "reason": request.reason,
            "requested_by": request.requested_by,
            "approved_by": request.decided_by or "",
            "action": describe_action(service),
            "request_id": str(request.id),
            **{k: str(v) for k, v in details.items() if k != "link" and v is not None},
        }
        await self.events.record(
            EventSpec(
                event_type="deploy",
                status="started",
                title=f"Deploy started: {service.name}{where} to {request.env}",
                service=service.name,
                env=request.env,
                link=details.get("link"),
                correlation=correlation(request.id),
                details={k: v for k, v in shown.items() if v},
            ),
            channel=service.channel,
            actor=request.requested_by,
        )

    async def _audit(self, actor: str, action: str, target_type: str, target_id: int, details: dict[str, Any]) -> None:
        await _audit(self.pool, actor, action, target_type, target_id, details)


# --- services: the same rules for the API (which has only a pool) and Slack -------------------------


async def create_service(pool: asyncpg.Pool, data: Mapping[str, Any], *, user: str) -> DeployService:
    """Validate, store, audit. Raises ValidationError or ServiceNameTaken."""
    spec = validate_service(data)
    created = await store.create_service(pool, spec, created_by=user)
    await _audit(pool, user, "deploy_service.create", "deploy_service", created.id, _spec_details(spec))
    log.info("deploy.service_created", service=spec.name, by=user)
    return created


async def update_service(pool: asyncpg.Pool, service_id: int, data: Mapping[str, Any], *, user: str) -> DeployService | None:
    """Apply a (partial) update; None when there is no such service. Raises ValidationError or
    ServiceNameTaken. Saving without a change stores and audits nothing."""
    current = await store.get_service(pool, service_id)
    if current is None:
        return None
    spec = validate_service(data, current=current.spec)
    changes = {
        f: {"from": _safe(f, getattr(current.spec, f)), "to": _safe(f, getattr(spec, f))}
        for f in FIELDS
        if getattr(current.spec, f) != getattr(spec, f)
    }
    if not changes:
        return current
    updated = await store.update_service(pool, service_id, spec)
    if updated is not None:
        await _audit(
            pool, user, "deploy_service.update", "deploy_service", service_id, {"name": spec.name, "changes": changes}
        )
        log.info("deploy.service_updated", service=spec.name, by=user)
    return updated


async def delete_service(pool: asyncpg.Pool, service_id: int, *, user: str) -> DeployService | None:
    """The deleted service, or None when there was none; its requests go with it."""
    current = await store.get_service(pool, service_id)
    if current is None or not await store.delete_service(pool, service_id):
        return None
    await _audit(pool, user, "deploy_service.delete", "deploy_service", service_id, _spec_details(current.spec))
    log.info("deploy.service_deleted", service=current.name, by=user)
    return current


async def _audit(
    pool: asyncpg.Pool, actor: str, action: str, target_type: str, target_id: int, details: dict[str, Any]
) -> None:
    await audit.record_action(
        pool, actor=actor, action=action, target_type=target_type, target_id=target_id, details=details
    )


# --- helpers --------------------------------------------------------------------------------------


def correlation(request_id: int) -> str:
    """The key that ties later deploy events (completed/failed) to a request's "started" message."""
    return f"deploy-request-{request_id}"


def sign(secret: str, body: bytes) -> str:
    """The X-Pulser-Signature value: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _placeholders(service: DeployService, request: DeployRequest) -> dict[str, str]:
    return {
        "env": request.env,
        "ref": request.ref,
        "reason": request.reason,
        "requested_by": request.requested_by,
        "approved_by": request.decided_by or "",
        "request_id": str(request.id),
        "service": service.name,
    }


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    """`{env}`-style placeholders in a text input; only the names in INPUT_PLACEHOLDERS."""
    if not isinstance(value, str):
        return value
    for key in INPUT_PLACEHOLDERS:
        value = value.replace("{" + key + "}", values[key])
    return value


def _heroku_app_ref(app: str) -> dict[str, str]:
    return {"id": app} if UUID.match(app) else {"name": app}


def _github_web_url(api_url: str) -> str | None:
    """https://api.github.com → https://github.com; GitHub Enterprise's <host>/api/v3 → <host>."""
    parts = urlsplit(api_url)
    if parts.hostname == "api.github.com":
        return "https://github.com"
    if parts.path.rstrip("/").endswith("/api/v3"):
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')[: -len('/api/v3')]}"
    return None


_GITHUB_HINTS = {
    401: "GITHUB_TOKEN was refused",
    403: "GITHUB_TOKEN lacks the Actions write permission for this repository, or is rate limited",
    404: "check the repository, the workflow file and that GITHUB_TOKEN can see them",
    422: "check that the ref exists, the workflow has a workflow_dispatch trigger and the inputs match it",
}


def _github_error(response: httpx.Response) -> str:
    try:
        message = str((response.json() or {}).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    text = f"GitHub answered {response.status_code}" + (f": {message}" if message else "")
    hint = _GITHUB_HINTS.get(response.status_code)
    return f"{text} ({hint})" if hint else text


def _target(service: DeployService) -> str:
    return {"github_workflow": "GitHub", "heroku_promotion": "Heroku"}.get(service.action_type, "the deploy webhook")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def _status_words(request: DeployRequest) -> str:
    by = f" by <@{request.decided_by}>" if request.decided_by else ""
    return {
        "approved": f"approved{by}",
        "rejected": f"rejected{by}",
        "triggered": f"approved{by} and started",
        "trigger_failed": f"approved{by}, but starting it failed",
    }.get(request.status, request.status)


def _safe(field: str, value: Any) -> Any:
    """Audit details without a webhook URL (it may carry a token)."""
    if field == "action" and isinstance(value, dict) and "url" in value:
        return {**value, "url": _redacted_url(value["url"])}
    return value


def _spec_details(spec: ServiceSpec) -> dict[str, Any]:
    return {f: _safe(f, v) for f, v in asdict(spec).items()}


def _redacted_url(url: str) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _request_details(request: DeployRequest) -> dict[str, Any]:
    return {
        "service": request.service_name,
        "env": request.env,
        "ref": request.ref,
        "requested_by": request.requested_by,
        "status": request.status,
    }
