"""Sentry: integration-platform webhooks (issue, event_alert, error, metric_alert) and the legacy plugin.

Two senders reach POST /webhooks/sentry (see ../shared/reference/sentry/README.md):

- **Integration webhooks** ("Sentry Apps") carry `Sentry-Hook-Resource` and `Sentry-Hook-Signature`
  = lowercase hex HMAC-SHA256 of the raw body keyed by the integration's Client Secret
  (`SENTRY_CLIENT_SECRET`). The raw bytes are signed; re-serialising the JSON would not match.
  `Sentry-Hook-Timestamp` is not signed, so checking it would stop nobody: replays are handled by the
  ledger's idempotency key instead.
- **Legacy "WebHooks" plugin** bodies are unsigned and have no Sentry headers. The plugin cannot send
  custom headers either, so they are accepted only with the shared `PULSER_WEBHOOK_TOKEN`; the HTTP
  handler must copy a `?token=` query parameter of the callback URL into `X-Pulser-Token` before
  calling `verify`. Without a configured token legacy bodies are refused (closed, not open).

Mapping:
- Severity from the Sentry level: fatal→critical, error→high, warning→medium, info→low,
  debug→info. Unknown or missing levels → medium: loud enough to be seen, not loud enough to page.
- Fingerprint `issue:<issue id>` for issue, event_alert, error and legacy bodies (all name the
  issue), so every event of one issue lands in one group; `metric_alert_rule:<rule id>` for metric
  alerts, so an incident and its resolution of one rule group together.
- Service: the project slug (event payloads carry only a numeric project id; the slug is read from
  the event's API URL, else the id is used). Env: the event's environment; issue and legacy bodies
  without one give "" (Sentry's issue object has no environment).
- Status: issue `resolved` and `ignored` (archived: nobody will act on it) → resolved; metric_alert
  `resolved` → resolved; everything else that alerts → firing. Issue `assigned`, and resources that
  are not alerts (installation, comment, seer, …) → no alert (empty list), not an error: Sentry
  sends them when subscribed and a 400 would only look like a failure on Sentry's side.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from alerts.normalized import NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    SignatureError,
    canonical_payload_hash,
    decode_json_body,
    header,
    hmac_sha256_hex,
    json_type,
    normalize_env,
    optional_text,
    parse_timestamp,
    require_object,
    require_secret,
    require_text,
    same_secret,
    string_tags,
    verify_token,
)

NAME = "sentry"
SECRET_ENV = "SENTRY_CLIENT_SECRET"
LEGACY_TOKEN_ENV = "PULSER_WEBHOOK_TOKEN"

LEVEL_SEVERITY = {
    "fatal": "critical",
    "critical": "critical",  # Python logging's name for fatal
    "error": "high",
    "warning": "medium",
    "warn": "medium",
    "info": "low",
    "sample": "low",  # very old SDKs' name for info
    "debug": "info",
}
UNKNOWN_LEVEL_SEVERITY = "medium"

METRIC_ACTION_SEVERITY = {"critical": "critical", "warning": "medium", "open": "medium", "resolved": "info"}

# Resources whose bodies become alerts; anything else Sentry sends is acknowledged and ignored.
ALERT_RESOURCES = ("issue", "event_alert", "error", "metric_alert")
_RESOURCE_BY_DATA_KEY = {"issue": "issue", "event": "event_alert", "error": "error", "metric_alert": "metric_alert"}

# /api/0/projects/<org>/<project slug>/events/<event id>/ — the only place an event names its slug.
_PROJECT_SLUG_IN_API_URL = re.compile(r"/api/0/projects/[^/]+/([^/]+)/events/")


def decode(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
    """The JSON body as a dict (PayloadError if it is not a JSON object)."""
    return decode_json_body(raw_body)


def is_integration_request(headers: Mapping[str, str]) -> bool:
    """True for integration-platform deliveries; legacy plugin requests carry no Sentry-Hook-* header."""
    return header(headers, "Sentry-Hook-Resource") is not None or header(headers, "Sentry-Hook-Signature") is not None


def verify(
    headers: Mapping[str, str],
    raw_body: bytes,
    secret: str | None,
    *,
    legacy_token: str | None = None,
) -> None:
    """Prove the request came from Sentry, or raise SignatureError (401).

    Integration deliveries: `Sentry-Hook-Signature` must equal HMAC-SHA256(secret, raw_body) in hex,
    compared in constant time. With no `secret` (SENTRY_CLIENT_SECRET unset) every integration
    delivery is refused with an error naming the variable. Legacy plugin requests (no Sentry-Hook-*
    headers) must present `legacy_token` (PULSER_WEBHOOK_TOKEN) instead; unset → refused.
    """
    if not is_integration_request(headers):
        verify_token(headers, legacy_token, env_var=LEGACY_TOKEN_ENV, source="Sentry legacy WebHooks plugin")
        return
    key = require_secret(secret, SECRET_ENV, "Sentry")
    given = header(headers, "Sentry-Hook-Signature")
    if not given:
        raise SignatureError("missing Sentry-Hook-Signature header")
    if not same_secret(given.lower(), hmac_sha256_hex(key, raw_body)):
        raise SignatureError(f"Sentry-Hook-Signature does not match the body signed with {SECRET_ENV}")


def idempotency_key(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """The ledger key for this delivery (unique per source).

    Sentry gives every *request* a new `Request-ID`, retries included, so where the body names a
    one-time occurrence the key is built from it instead (the reference README's advice):
    event_alert → event id + rule, error → event id, issue created → issue id, legacy → event id.
    Other deliveries (issue resolved/unresolved, metric alert transitions) can legitimately repeat
    for the same resource, so they use `Request-ID`; a body without one is keyed by its content.
    """
    if not _is_integration_body(headers, payload):
        event = payload.get("event")
        event_id = optional_text(event, "event_id") if isinstance(event, dict) else ""
        return f"legacy:{event_id}" if event_id else f"legacy:sha256:{canonical_payload_hash(payload)}"

    resource = _resource(headers, payload)
    action = optional_text(payload, "action")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    if resource == "event_alert" and isinstance(data.get("event"), dict):
        event_id = optional_text(data["event"], "event_id")
        if event_id:
            return f"event_alert:{event_id}:{optional_text(data, 'triggered_rule')}"
    if resource == "error" and isinstance(data.get("error"), dict):
        event_id = optional_text(data["error"], "event_id")
        if event_id:
            return f"error:{event_id}"
    if resource == "issue" and action == "created" and isinstance(data.get("issue"), dict):
        issue_id = optional_text(data["issue"], "id")
        if issue_id:
            return f"issue:{issue_id}:created"
    request_id = header(headers, "Request-ID")
    if request_id:
        return f"request:{request_id}"
    return f"sha256:{canonical_payload_hash(payload)}"


def parse(headers: Mapping[str, str], payload: Mapping[str, Any]) -> list[NormalizedAlert]:
    """Alerts in one Sentry delivery (zero or one), or PayloadError when the body is not Sentry's."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    if not _is_integration_body(headers, payload):
        return [_from_legacy_plugin(payload)]

    resource = _resource(headers, payload)
    if resource not in ALERT_RESOURCES:
        return []
    action = require_text(payload, "action", "action")
    data = require_object(payload, "data", "data")
    if resource == "issue":
        return _from_issue(action, data)
    if resource == "event_alert":
        event = require_object(data, "event", "data.event")
        rule = optional_text(data, "triggered_rule")
        return [_from_event(event, "data.event", resource, action, extra_tags={"sentry.rule": rule} if rule else {})]
    if resource == "error":
        return [_from_event(require_object(data, "error", "data.error"), "data.error", resource, action)]
    return _from_metric_alert(action, data)


# --- integration resources ---------------------------------------------------------------------------


def _is_integration_body(headers: Mapping[str, str], payload: Mapping[str, Any]) -> bool:
    # The header decides; a token-authenticated body in the integration envelope is also accepted.
    return is_integration_request(headers) or ("data" in payload and "action" in payload)


def _resource(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """Sentry-Hook-Resource, or (if a relay dropped the header) the resource named by data's key."""
    resource = header(headers, "Sentry-Hook-Resource")
    if resource:
        return resource.lower()
    data = payload.get("data")
    if isinstance(data, dict):
        for key, name in _RESOURCE_BY_DATA_KEY.items():
            if key in data:
                return name
    raise PayloadError("missing Sentry-Hook-Resource header and data names no known resource")


def _from_issue(action: str, data: dict[str, Any]) -> list[NormalizedAlert]:
    if action in ("created", "unresolved"):
        status = "firing"
    elif action in ("resolved", "ignored"):
        status = "resolved"
    else:  # assigned, and actions Sentry may add later: not a change in the problem itself
        return []
    issue = require_object(data, "issue", "data.issue")
    issue_id = require_text(issue, "id", "data.issue.id")
    project = require_object(issue, "project", "data.issue.project")
    level = optional_text(issue, "level")
    tags = {
        "sentry.resource": "issue",
        "sentry.action": action,
        "sentry.issue_id": issue_id,
        "sentry.short_id": optional_text(issue, "shortId"),
        "sentry.level": level,
        "sentry.platform": optional_text(issue, "platform"),
        "sentry.substatus": optional_text(issue, "substatus"),
        "sentry.count": optional_text(issue, "count"),
    }
    if action == "resolved" and data.get("resolution_type"):
        tags["sentry.resolution_type"] = optional_text(data, "resolution_type")
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=issue_id,
            service=optional_text(project, "slug") or require_text(project, "id", "data.issue.project.slug"),
            env="",
            severity=severity_for_level(level),
            fingerprint=f"issue:{issue_id}",
            title=require_text(issue, "title", "data.issue.title"),
            description=optional_text(issue, "culprit"),
            tags=_without_empty(tags),
            occurred_at=parse_timestamp(issue.get("lastSeen") or issue.get("firstSeen"), "data.issue.lastSeen"),
            link=optional_text(issue, "web_url") or optional_text(issue, "permalink") or None,
            status=status,
        )
    ]


def _from_event(
    event: dict[str, Any], where: str, resource: str, action: str, *, extra_tags: dict[str, str] | None = None
) -> NormalizedAlert:
    """event_alert and error bodies share the event shape (event.as_dict() + url, issue_id)."""
    event_id = require_text(event, "event_id", f"{where}.event_id")
    issue_id = require_text(event, "issue_id", f"{where}.issue_id")
    event_tags = string_tags(event.get("tags"))
    level = optional_text(event, "level") or event_tags.get("level", "")
    tags = {
        **event_tags,
        "sentry.resource": resource,
        "sentry.action": action,
        "sentry.event_id": event_id,
        "sentry.issue_id": issue_id,
        "sentry.level": level,
        "sentry.release": optional_text(event, "release"),
        "sentry.platform": optional_text(event, "platform"),
        **(extra_tags or {}),
    }
    return NormalizedAlert(
        source=NAME,
        source_event_id=event_id,
        service=_event_project_slug(event, where),
        env=normalize_env(optional_text(event, "environment") or event_tags.get("environment")),
        severity=severity_for_level(level),
        fingerprint=f"issue:{issue_id}",
        title=_event_title(event, where),
        description=optional_text(event, "culprit"),
        tags=_without_empty(tags),
        occurred_at=parse_timestamp(event.get("datetime") or event.get("timestamp"), f"{where}.datetime"),
        link=optional_text(event, "web_url") or None,
        status="firing",
    )


def _from_metric_alert(action: str, data: dict[str, Any]) -> list[NormalizedAlert]:
    if action not in METRIC_ACTION_SEVERITY:
        return []
    incident = require_object(data, "metric_alert", "data.metric_alert")
    rule = require_object(incident, "alert_rule", "data.metric_alert.alert_rule")
    rule_id = require_text(rule, "id", "data.metric_alert.alert_rule.id")
    projects = incident.get("projects") or rule.get("projects") or []
    service = str(projects[0]) if isinstance(projects, list) and projects else ""
    resolved = action == "resolved"
    started = incident.get("date_detected") or incident.get("date_started")
    when = (incident.get("date_closed") if resolved else None) or started
    description_parts = [optional_text(data, "description_title"), optional_text(data, "description_text")]
    tags = {
        "sentry.resource": "metric_alert",
        "sentry.action": action,
        "sentry.alert_rule_id": rule_id,
        "sentry.incident_id": optional_text(incident, "id"),
        "sentry.aggregate": optional_text(rule, "aggregate"),
        "sentry.query": optional_text(rule, "query"),
        "sentry.projects": ",".join(str(p) for p in projects) if isinstance(projects, list) else "",
    }
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=require_text(incident, "id", "data.metric_alert.id"),
            service=service,
            env=normalize_env(optional_text(rule, "environment")),
            # A resolution says nothing about how bad it was; the group keeps its own severity.
            severity=METRIC_ACTION_SEVERITY[action],
            fingerprint=f"metric_alert_rule:{rule_id}",
            title=optional_text(rule, "name") or require_text(incident, "title", "data.metric_alert.title"),
            description="\n".join(part for part in description_parts if part),
            tags=_without_empty(tags),
            occurred_at=parse_timestamp(when, "data.metric_alert.date_started"),
            link=optional_text(data, "web_url") or None,
            status="resolved" if resolved else "firing",
        )
    ]


# --- legacy plugin ----------------------------------------------------------------------------------


def _from_legacy_plugin(payload: dict[str, Any]) -> NormalizedAlert:
    """The flat body of the per-project WebHooks plugin (Sentry 8/9 and later)."""
    if "id" not in payload or not isinstance(payload.get("event"), dict):
        raise PayloadError(
            "not a Sentry webhook: expected an integration envelope (action, data) with a "
            "Sentry-Hook-Resource header, or a legacy plugin body (id, project, event)"
        )
    issue_id = require_text(payload, "id", "id")
    event = payload["event"]
    event_tags = string_tags(event.get("tags"))
    level = optional_text(payload, "level") or optional_text(event, "level") or event_tags.get("level", "")
    service = optional_text(payload, "project_slug") or require_text(payload, "project", "project")
    event_id = optional_text(event, "event_id")
    when = event.get("datetime") or event.get("timestamp") or event.get("received")
    tags = {
        **event_tags,
        "sentry.resource": "legacy_plugin",
        "sentry.issue_id": issue_id,
        "sentry.event_id": event_id,
        "sentry.level": level,
        "sentry.logger": optional_text(payload, "logger"),
        "sentry.rules": ",".join(str(r) for r in payload.get("triggering_rules") or [] if isinstance(r, str)),
    }
    title = optional_text(event, "title") or optional_text(payload, "message") or optional_text(payload, "culprit")
    if not title:
        raise PayloadError("legacy plugin body has neither event.title nor message")
    return NormalizedAlert(
        source=NAME,
        source_event_id=event_id or issue_id,
        service=service,
        env=normalize_env(optional_text(event, "environment") or event_tags.get("environment")),
        severity=severity_for_level(level),
        fingerprint=f"issue:{issue_id}",
        title=title,
        description=optional_text(payload, "culprit"),
        tags=_without_empty(tags),
        occurred_at=parse_timestamp(when, "event.timestamp"),
        link=optional_text(payload, "url") or None,
        status="firing",
    )


# --- helpers -----------------------------------------------------------------------------------------


def severity_for_level(level: str | None) -> str:
    """Pulser severity of a Sentry level (see the module docstring); unknown → medium."""
    return LEVEL_SEVERITY.get((level or "").strip().lower(), UNKNOWN_LEVEL_SEVERITY)


def _event_project_slug(event: dict[str, Any], where: str) -> str:
    match = _PROJECT_SLUG_IN_API_URL.search(optional_text(event, "url"))
    if match:
        return match.group(1)
    return require_text(event, "project", f"{where}.project")


def _event_title(event: dict[str, Any], where: str) -> str:
    title = optional_text(event, "title") or optional_text(event, "message")
    if not title:
        metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
        title = ": ".join(p for p in (optional_text(metadata, "type"), optional_text(metadata, "value")) if p)
    if not title:
        raise PayloadError(f"{where} has no title, message or metadata to name the alert")
    return title


def _without_empty(tags: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if value != ""}
