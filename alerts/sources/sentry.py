"""Sentry: integration-platform webhooks (issue, event_alert, error, metric_alert) and the legacy plugin.

Two senders reach POST /webhooks/sentry:

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
  A metric alert's severity (critical, warning) is its *current state* (`severity_is_current`):
  its incident follows it down as well as up. An issue's events only ever raise their incident's.
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

Liberal in what Sentry sends: only what Pulser needs to alert is required — a body of the resource,
and something that names the problem (an id or a title). Everything else has a default, because a
400 loses a page over a field nobody reads, and Sentry's own examples leave fields out:
- no `action` → event_alert "triggered", error "created", issue from `issue.status`, metric alert
  from the incident's numeric `status` (Sentry's IncidentStatus; unknown → "open");
- no project → the slug in the event's API URL, the numeric project id, else "sentry";
- no date → the server's receipt time (a date that is present but unreadable is still a 400);
- no issue id on an event → the id in its `issue_url`/`web_url`, else events group by their title;
  no event id → the issue id names the occurrence;
- no title → message, the error's type and value, the culprit, else "Sentry <kind> in <service> (<id>)";
- no alert rule on a metric alert → the group is the Sentry incident (`metric_alert:<id>`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from alerts.normalized import NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    SignatureError,
    canonical_payload_hash,
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
    stable_hash,
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

# A metric_alert delivery without an action: Sentry's IncidentStatus (OPEN, CLOSED, WARNING, CRITICAL).
INCIDENT_STATUS_ACTION = {1: "open", 2: "resolved", 10: "warning", 20: "critical"}
# An issue delivery without an action: the issue's own status says what happened to it.
ISSUE_STATUS_ACTION = {"unresolved": "unresolved", "resolved": "resolved", "ignored": "ignored"}
# event_alert and error deliveries each have one action; it is not needed to alert.
EVENT_ACTION = {"event_alert": "triggered", "error": "created"}
# The service of a delivery that names no project anywhere.
UNKNOWN_PROJECT = "sentry"

# Resources whose bodies become alerts; anything else Sentry sends is acknowledged and ignored.
ALERT_RESOURCES = ("issue", "event_alert", "error", "metric_alert")
_RESOURCE_BY_DATA_KEY = {"issue": "issue", "event": "event_alert", "error": "error", "metric_alert": "metric_alert"}

# /api/0/projects/<org>/<project slug>/events/<event id>/ — the only place an event names its slug.
_PROJECT_SLUG_IN_API_URL = re.compile(r"/api/0/projects/[^/]+/([^/]+)/events/")
# …/issues/<issue id>/ in an issue_url (API) or web_url: where an event without issue_id names it.
_ISSUE_ID_IN_URL = re.compile(r"/issues/(\d+)(?:[/?#]|$)")


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
    one-time occurrence the key is built from it instead (a retry must dedupe on the resource):
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


def parse(
    headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[NormalizedAlert]:
    """Alerts in one Sentry delivery (zero or one), or PayloadError when the body is not Sentry's or
    names no problem at all. `received_at` (default: now) stands in for a date Sentry left out."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    received_at = received_at or datetime.now(timezone.utc)
    if not _is_integration_body(headers, payload):
        return [_from_legacy_plugin(payload, received_at)]

    resource = _resource(headers, payload)
    if resource not in ALERT_RESOURCES:
        return []
    action = optional_text(payload, "action")
    data = require_object(payload, "data", "data")
    if resource == "issue":
        return _from_issue(action, data, received_at)
    if resource == "metric_alert":
        return _from_metric_alert(action, data, received_at)
    key = "event" if resource == "event_alert" else "error"
    where = f"data.{key}"
    event = require_object(data, key, where)
    rule = optional_text(data, "triggered_rule")
    extra_tags = {"sentry.rule": rule} if rule else {}
    return [_from_event(event, where, resource, action or EVENT_ACTION[resource], received_at, extra_tags=extra_tags)]


# --- integration resources ---------------------------------------------------------------------------


def _is_integration_body(headers: Mapping[str, str], payload: Mapping[str, Any]) -> bool:
    # The header decides; a token-authenticated body in the integration envelope (a `data` object,
    # which legacy bodies never have) is also accepted, with or without its action.
    return is_integration_request(headers) or isinstance(payload.get("data"), dict)


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


def _from_issue(action: str, data: dict[str, Any], received_at: datetime) -> list[NormalizedAlert]:
    issue = require_object(data, "issue", "data.issue")
    action = action or ISSUE_STATUS_ACTION.get(optional_text(issue, "status"), "created")
    if action in ("created", "unresolved"):
        status = "firing"
    elif action in ("resolved", "ignored"):
        status = "resolved"
    else:  # assigned, and actions Sentry may add later: not a change in the problem itself
        return []
    issue_id = optional_text(issue, "id") or _issue_id_in_urls(issue, "url", "web_url", "permalink")
    if not issue_id:
        # The id is the issue's identity: without it neither its events nor its resolution could find it.
        raise PayloadError("data.issue.id is missing and no issue URL names it")
    project = issue.get("project") if isinstance(issue.get("project"), dict) else {}
    service = _first_text(project, "slug", "id", "name") or UNKNOWN_PROJECT
    level = optional_text(issue, "level")
    short_id = optional_text(issue, "shortId")
    tags = {
        "sentry.resource": "issue",
        "sentry.action": action,
        "sentry.issue_id": issue_id,
        "sentry.short_id": short_id,
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
            service=service,
            env="",
            severity=severity_for_level(level),
            fingerprint=f"issue:{issue_id}",
            title=_text_title(issue) or _unnamed_title("issue", service, short_id or f"issue {issue_id}"),
            description=optional_text(issue, "culprit"),
            tags=_without_empty(tags),
            occurred_at=first_timestamp(
                received_at,
                ("data.issue.lastSeen", issue.get("lastSeen")),
                ("data.issue.firstSeen", issue.get("firstSeen")),
            ),
            link=optional_text(issue, "web_url") or optional_text(issue, "permalink") or None,
            status=status,
        )
    ]


def _from_event(
    event: dict[str, Any],
    where: str,
    resource: str,
    action: str,
    received_at: datetime,
    *,
    extra_tags: dict[str, str] | None = None,
) -> NormalizedAlert:
    """event_alert and error bodies share the event shape (event.as_dict() + url, issue_id)."""
    event_id = optional_text(event, "event_id")
    issue_id = optional_text(event, "issue_id") or _issue_id_in_urls(event, "issue_url", "web_url")
    text_title = _text_title(event)
    if not (text_title or issue_id or event_id):
        raise PayloadError(f"{where} has no title and no id (event_id, issue_id): nothing to alert on")
    service = _event_service(event)
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
    occurrence = f"issue {issue_id}" if issue_id else f"event {event_id}"
    return NormalizedAlert(
        source=NAME,
        source_event_id=event_id or issue_id or stable_hash(text_title),
        service=service,
        env=normalize_env(optional_text(event, "environment") or event_tags.get("environment")),
        severity=severity_for_level(level),
        fingerprint=_event_fingerprint(issue_id, text_title, event_id),
        title=text_title or _unnamed_title(resource.replace("_", " "), service, occurrence),
        description=optional_text(event, "culprit"),
        tags=_without_empty(tags),
        occurred_at=first_timestamp(
            received_at, (f"{where}.datetime", event.get("datetime")), (f"{where}.timestamp", event.get("timestamp"))
        ),
        link=optional_text(event, "web_url") or None,
        status="firing",
    )


def _event_fingerprint(issue_id: str, title: str, event_id: str) -> str:
    """The issue when the event names one; else its title, so repeats of one error still group
    (within a project: the group key has the service too); else the event alone."""
    if issue_id:
        return f"issue:{issue_id}"
    if title:
        return f"title:{stable_hash(title)}"
    return f"event:{event_id}"


def _from_metric_alert(action: str, data: dict[str, Any], received_at: datetime) -> list[NormalizedAlert]:
    incident = require_object(data, "metric_alert", "data.metric_alert")
    action = action or INCIDENT_STATUS_ACTION.get(_int(incident.get("status")), "open")
    if action not in METRIC_ACTION_SEVERITY:
        return []
    rule = incident.get("alert_rule") if isinstance(incident.get("alert_rule"), dict) else {}
    rule_id = optional_text(rule, "id")
    incident_id = _first_text(incident, "id", "identifier")
    if not (rule_id or incident_id):
        raise PayloadError("data.metric_alert names neither its alert_rule.id nor its id: nothing to group it by")
    projects = incident.get("projects") or rule.get("projects") or []
    projects = [str(p) for p in projects] if isinstance(projects, list) else []
    service = projects[0] if projects else UNKNOWN_PROJECT
    resolved = action == "resolved"
    description_parts = [optional_text(data, "description_title"), optional_text(data, "description_text")]
    tags = {
        "sentry.resource": "metric_alert",
        "sentry.action": action,
        "sentry.alert_rule_id": rule_id,
        "sentry.incident_id": incident_id,
        "sentry.aggregate": optional_text(rule, "aggregate"),
        "sentry.query": optional_text(rule, "query"),
        "sentry.projects": ",".join(projects),
    }
    title = (
        optional_text(rule, "name")
        or optional_text(incident, "title")
        or optional_text(data, "description_title")
        or _unnamed_title("metric alert", service, f"rule {rule_id}" if rule_id else f"incident {incident_id}")
    )
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=incident_id or rule_id,
            service=service,
            env=normalize_env(optional_text(rule, "environment")),
            # A resolution says nothing about how bad it was; the group keeps its own severity.
            severity=METRIC_ACTION_SEVERITY[action],
            # critical → warning is the alert getting better, not a second, milder problem.
            severity_is_current=True,
            fingerprint=f"metric_alert_rule:{rule_id}" if rule_id else f"metric_alert:{incident_id}",
            title=title,
            description="\n".join(part for part in description_parts if part),
            tags=_without_empty(tags),
            occurred_at=_metric_alert_time(incident, resolved, received_at),
            link=optional_text(data, "web_url") or None,
            status="resolved" if resolved else "firing",
        )
    ]


def _metric_alert_time(incident: dict[str, Any], resolved: bool, received_at: datetime) -> datetime:
    """When it closed (for a resolution), else when it was detected or started, else receipt time."""
    candidates = [("data.metric_alert.date_closed", incident.get("date_closed"))] if resolved else []
    candidates += [
        ("data.metric_alert.date_detected", incident.get("date_detected")),
        ("data.metric_alert.date_started", incident.get("date_started")),
    ]
    return first_timestamp(received_at, *candidates)


# --- legacy plugin ----------------------------------------------------------------------------------


def _from_legacy_plugin(payload: dict[str, Any], received_at: datetime) -> NormalizedAlert:
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
    service = _first_text(payload, "project_slug", "project") or UNKNOWN_PROJECT
    event_id = optional_text(event, "event_id")
    tags = {
        **event_tags,
        "sentry.resource": "legacy_plugin",
        "sentry.issue_id": issue_id,
        "sentry.event_id": event_id,
        "sentry.level": level,
        "sentry.logger": optional_text(payload, "logger"),
        "sentry.rules": ",".join(str(r) for r in payload.get("triggering_rules") or [] if isinstance(r, str)),
    }
    title = (
        optional_text(event, "title")
        or optional_text(payload, "message")
        or _text_title(event)
        or optional_text(payload, "culprit")
        or _unnamed_title("issue", service, f"issue {issue_id}")
    )
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
        occurred_at=first_timestamp(
            received_at,
            ("event.datetime", event.get("datetime")),
            ("event.timestamp", event.get("timestamp")),
            ("event.received", event.get("received")),
        ),
        link=optional_text(payload, "url") or None,
        status="firing",
    )


# --- helpers -----------------------------------------------------------------------------------------


def severity_for_level(level: str | None) -> str:
    """Pulser severity of a Sentry level (see the module docstring); unknown → medium."""
    return LEVEL_SEVERITY.get((level or "").strip().lower(), UNKNOWN_LEVEL_SEVERITY)


def _event_service(event: dict[str, Any]) -> str:
    """The project slug from the event's API URL, else its (numeric) project id, else "sentry"."""
    match = _PROJECT_SLUG_IN_API_URL.search(optional_text(event, "url"))
    if match:
        return match.group(1)
    return optional_text(event, "project") or UNKNOWN_PROJECT


def _issue_id_in_urls(container: dict[str, Any], *keys: str) -> str:
    """The issue id in the first of `keys` whose URL names one ("" when none does)."""
    for key in keys:
        match = _ISSUE_ID_IN_URL.search(optional_text(container, key))
        if match:
            return match.group(1)
    return ""


def _text_title(item: dict[str, Any]) -> str:
    """What an event or issue says went wrong: its title, message, error type and value, or culprit."""
    title = optional_text(item, "title") or optional_text(item, "message")
    if title:
        return title
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return _type_and_value(metadata) or _exception_title(item) or optional_text(item, "culprit")


def _exception_title(event: dict[str, Any]) -> str:
    """"Type: value" of the exception that was raised last (Sentry lists chained ones oldest first)."""
    exception = event.get("exception") if isinstance(event.get("exception"), dict) else {}
    values = exception.get("values") if isinstance(exception.get("values"), list) else []
    for value in reversed(values):
        if isinstance(value, dict) and (title := _type_and_value(value)):
            return title
    return ""


def _type_and_value(item: dict[str, Any]) -> str:
    return ": ".join(p for p in (optional_text(item, "type"), optional_text(item, "value")) if p)


def _unnamed_title(kind: str, service: str, identity: str) -> str:
    """A title for a problem Sentry sent no words for: still worth a message, since it has an id."""
    return f"Sentry {kind} in {service} ({identity})"


def _first_text(container: dict[str, Any], *keys: str) -> str:
    """The first of `keys` with a non-empty scalar value, as text ("" when none has one)."""
    for key in keys:
        value = optional_text(container, key)
        if value:
            return value
    return ""


def _int(value: Any) -> int | None:
    """An integer from a number or a numeric string (Sentry serialises some ids and states as either)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _without_empty(tags: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if value != ""}
