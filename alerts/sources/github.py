"""GitHub webhooks: failed CI runs (`workflow_run`) and failed deployments (`deployment_status`).

Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` keyed by the webhook
secret (`GITHUB_WEBHOOK_SECRET`); the legacy SHA-1 `X-Hub-Signature` is ignored. For form-encoded
hooks the raw `payload=…` bytes are what is signed, so `verify` always gets the raw body and
`decode` unwraps the form afterwards.

What alerts:
- `workflow_run` completed with conclusion failure / timed_out / startup_failure → firing, high on
  the repository's default branch, medium elsewhere; success → resolved. Fingerprint
  `workflow:<workflow id>:<branch>` so the next green run of that workflow on that branch resolves
  the red one. requested / in_progress, and cancelled / skipped / neutral / stale / action_required
  or conclusions GitHub adds later → no alert: they say nothing about broken code.
- `deployment_status` failure / error → firing high; success → resolved; pending / queued /
  in_progress / waiting / inactive → no alert. Fingerprint `deployment:<environment>`.
- `ping` and every other event → no alert (empty list), not a 400: a hook subscribed to "send me
  everything" should not show red deliveries in GitHub's UI for events Pulser does not use.
  A body that does not match its `X-GitHub-Event` is still a PayloadError.

Service is the repository's full name ("octo-org/octo-repo"); env is the deployment environment
for deployments and "" for CI runs (a workflow does not run *in* an environment).

Required: the `X-GitHub-Event` header, the `workflow_run` / `deployment_status` object and what
decides firing or resolved (the run's conclusion, the deployment state). The rest has a default: no
top-level `repository` → the run's own `repository`, else "github"; no date → the server's receipt
time; no run or status id → the run number or the deployment id; no `deployment` → no ref/sha.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs

from alerts.normalized import NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    SignatureError,
    decode_json_body,
    first_timestamp,
    header,
    hmac_sha256_hex,
    json_type,
    normalize_env,
    optional_text,
    require_object,
    require_secret,
    require_text,
    same_secret,
)

NAME = "github"
SECRET_ENV = "GITHUB_WEBHOOK_SECRET"

FAILED_CONCLUSIONS = ("failure", "timed_out", "startup_failure")
FAILED_DEPLOYMENT_STATES = ("failure", "error")
# The service of a delivery that names no repository anywhere.
UNKNOWN_REPOSITORY = "github"


def decode(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
    """The JSON payload, unwrapped from `payload=` when the hook is form-encoded."""
    content_type = (header(headers, "Content-Type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            form = parse_qs(raw_body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("form-encoded body is malformed") from None
        if not form.get("payload"):
            raise PayloadError("form-encoded body has no payload field")
        return decode_json_body(form["payload"][0].encode("utf-8"))
    return decode_json_body(raw_body)


def verify(headers: Mapping[str, str], raw_body: bytes, secret: str | None) -> None:
    """Check `X-Hub-Signature-256` against HMAC-SHA256(secret, raw_body) in constant time.

    With no `secret` (GITHUB_WEBHOOK_SECRET unset) every delivery is refused with an error naming
    the variable: an unconfigured source is closed, not open.
    """
    key = require_secret(secret, SECRET_ENV, "GitHub")
    given = header(headers, "X-Hub-Signature-256")
    if not given:
        raise SignatureError("missing X-Hub-Signature-256 header (is a secret set on the GitHub webhook?)")
    algorithm, _, digest = given.partition("=")
    if algorithm.lower() != "sha256" or not digest:
        raise SignatureError("X-Hub-Signature-256 must look like sha256=<hex>")
    if not same_secret(digest.lower(), hmac_sha256_hex(key, raw_body)):
        raise SignatureError(f"X-Hub-Signature-256 does not match the body signed with {SECRET_ENV}")


def idempotency_key(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """`X-GitHub-Delivery`: one GUID per delivery, kept when a delivery is redelivered."""
    delivery = header(headers, "X-GitHub-Delivery")
    if not delivery:
        raise PayloadError("missing X-GitHub-Delivery header")
    return delivery


def parse(
    headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[NormalizedAlert]:
    """Zero or one alert for the delivery named by `X-GitHub-Event` (see the module docstring).
    `received_at` (default: now) stands in for a date GitHub left out."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    event = header(headers, "X-GitHub-Event")
    if not event:
        raise PayloadError("missing X-GitHub-Event header")
    received_at = received_at or datetime.now(timezone.utc)
    if event == "workflow_run":
        return _from_workflow_run(payload, received_at)
    if event == "deployment_status":
        return _from_deployment_status(payload, received_at)
    return []


def _repository(payload: dict[str, Any], *fallbacks: Any) -> dict[str, Any]:
    """The delivery's `repository`, else the first fallback object that is one ({} when none is)."""
    for candidate in (payload.get("repository"), *fallbacks):
        if isinstance(candidate, dict):
            return candidate
    return {}


def _from_workflow_run(payload: dict[str, Any], received_at: datetime) -> list[NormalizedAlert]:
    run = require_object(payload, "workflow_run", "workflow_run")
    repository = _repository(payload, run.get("repository"), run.get("head_repository"))
    # `action` is what GitHub says happened; a relay that dropped it still leaves the run's status.
    if (optional_text(payload, "action") or optional_text(run, "status")) != "completed":
        return []
    conclusion = optional_text(run, "conclusion")
    if conclusion in FAILED_CONCLUSIONS:
        status = "firing"
    elif conclusion == "success":
        status = "resolved"
    else:
        return []

    workflow = payload.get("workflow") if isinstance(payload.get("workflow"), dict) else {}
    # GitHub's examples carry workflow_run.name == "" while workflow.name is set.
    workflow_name = (
        optional_text(run, "name") or optional_text(workflow, "name") or optional_text(run, "path") or "workflow"
    )
    branch = optional_text(run, "head_branch")
    default_branch = optional_text(repository, "default_branch") or optional_text(repository, "master_branch")
    on_default_branch = bool(branch) and branch == default_branch
    run_id = optional_text(run, "id") or optional_text(run, "run_number")
    workflow_id = optional_text(run, "workflow_id") or optional_text(workflow, "id") or workflow_name
    head_sha = optional_text(run, "head_sha")
    actor = run.get("triggering_actor") or run.get("actor")

    where = f" on {branch}" if branch else ""
    title = f"{workflow_name} failed{where}" if status == "firing" else f"{workflow_name} passed{where}"
    description_lines = [
        optional_text(run, "display_title"),
        f"Run #{optional_text(run, 'run_number')} (attempt {optional_text(run, 'run_attempt') or '1'}): {conclusion}",
        f"Commit {head_sha[:7]}" if head_sha else "",
    ]
    tags = {
        "github.event": "workflow_run",
        "github.repository": optional_text(repository, "full_name") or UNKNOWN_REPOSITORY,
        "github.workflow": workflow_name,
        "github.branch": branch,
        "github.default_branch": "true" if on_default_branch else "false",
        "github.conclusion": conclusion,
        "github.head_sha": head_sha,
        "github.trigger": optional_text(run, "event"),
        "github.actor": optional_text(actor, "login") if isinstance(actor, dict) else "",
        "github.run_number": optional_text(run, "run_number"),
    }
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=f"{run_id}:{optional_text(run, 'run_attempt') or '1'}",
            service=tags["github.repository"],
            env="",
            severity="high" if on_default_branch else "medium",
            fingerprint=f"workflow:{workflow_id}:{branch}",
            title=title,
            description="\n".join(line for line in description_lines if line),
            tags={key: value for key, value in tags.items() if value},
            occurred_at=first_timestamp(
                received_at,
                ("workflow_run.updated_at", run.get("updated_at")),
                ("workflow_run.run_started_at", run.get("run_started_at")),
                ("workflow_run.created_at", run.get("created_at")),
            ),
            link=optional_text(run, "html_url") or None,
            status=status,
        )
    ]


def _from_deployment_status(payload: dict[str, Any], received_at: datetime) -> list[NormalizedAlert]:
    deployment_status = require_object(payload, "deployment_status", "deployment_status")
    deployment = payload.get("deployment") if isinstance(payload.get("deployment"), dict) else {}
    repository = _repository(payload)
    state = require_text(deployment_status, "state", "deployment_status.state")
    if state in FAILED_DEPLOYMENT_STATES:
        status = "firing"
    elif state == "success":
        status = "resolved"
    else:
        return []

    environment = optional_text(deployment_status, "environment") or optional_text(deployment, "environment")
    env_label = environment or "an environment"
    sha = optional_text(deployment, "sha")
    ref = optional_text(deployment, "ref")
    title = f"Deployment to {env_label} failed" if status == "firing" else f"Deployment to {env_label} succeeded"
    description_lines = [
        optional_text(deployment_status, "description"),
        f"{ref} @ {sha[:7]}" if ref and sha else ref or sha[:7],
        f"State: {state}",
    ]
    repo_url = optional_text(repository, "html_url")
    link = (
        optional_text(deployment_status, "log_url")
        or optional_text(deployment_status, "target_url")
        or optional_text(deployment_status, "environment_url")
        or (f"{repo_url}/deployments" if repo_url else "")
    )
    tags = {
        "github.event": "deployment_status",
        "github.repository": optional_text(repository, "full_name") or UNKNOWN_REPOSITORY,
        "github.environment": environment,
        "github.state": state,
        "github.ref": ref,
        "github.sha": sha,
        "github.deployment_id": optional_text(deployment, "id"),
        "github.task": optional_text(deployment, "task"),
    }
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=optional_text(deployment_status, "id") or optional_text(deployment, "id") or state,
            service=tags["github.repository"],
            env=normalize_env(environment),
            severity="high",
            fingerprint=f"deployment:{environment}",
            title=title,
            description="\n".join(line for line in description_lines if line),
            tags={key: value for key, value in tags.items() if value},
            occurred_at=first_timestamp(
                received_at,
                ("deployment_status.created_at", deployment_status.get("created_at")),
                ("deployment_status.updated_at", deployment_status.get("updated_at")),
            ),
            link=link or None,
            status=status,
        )
    ]
