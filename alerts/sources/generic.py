"""Generic JSON alerts: anything that can POST JSON (cron jobs, scripts, tools without a module).

    POST /webhooks/generic
    Authorization: Bearer <PULSER_WEBHOOK_TOKEN>      (or  X-Pulser-Token: <PULSER_WEBHOOK_TOKEN>)
    Idempotency-Key: <optional, unique per delivery>
    Content-Type: application/json

    {
      "title":       "Nightly backup failed",          # required, non-blank string, ≤ 300 chars
      "service":     "billing-db",                     # string, default ""
      "env":         "production",                     # string, default ""; "prod" → "production"
      "severity":    "high",                           # info | low | medium | high | critical, any case; default medium
      "status":      "firing",                         # firing | resolved (any case); default firing
      "fingerprint": "backup:billing-db",              # string ≤ 200; default sha256 of [service, title]
      "description": "pg_dump exited with code 1",     # string, default ""
      "link":        "https://ci.example.com/job/42",  # http(s) URL or null
      "tags":        {"team": "payments"},             # object of string → string
      "occurred_at": "2026-11-23T02:00:00Z",           # ISO 8601 with Z or an offset; default: receipt time
      "event_id":    "backup-2026-11-23"               # string; the dedup key when no Idempotency-Key
    }

Validation is strict: a field of the wrong type, an unknown severity or status, or an unknown
top-level field (usually a typo such as "sevrity", which would otherwise be silently ignored) is a
PayloadError naming the field. Examples: tests/fixtures/generic/*.json.

Send the same `fingerprint` (or the same service + title) for repeats of one problem, and
`"status": "resolved"` with it to close the group.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

from alerts.normalized import SEVERITIES, STATUSES, NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    decode_json_body,
    header,
    json_type,
    normalize_env,
    parse_timestamp,
    stable_hash,
    verify_token,
)

NAME = "generic"
SECRET_ENV = "PULSER_WEBHOOK_TOKEN"

FIELDS = (
    "title", "service", "env", "severity", "status", "fingerprint",
    "description", "link", "tags", "occurred_at", "event_id",
)  # fmt: skip
MAX_LENGTH = {"title": 300, "fingerprint": 200, "service": 200, "env": 100, "event_id": 200, "description": 10_000}
MAX_TAGS = 50
DEFAULT_SEVERITY = "medium"


def decode(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
    """The JSON body as a dict (PayloadError if it is not a JSON object)."""
    return decode_json_body(raw_body)


def verify(headers: Mapping[str, str], raw_body: bytes, secret: str | None) -> None:
    """Check `Authorization: Bearer <token>` or `X-Pulser-Token` against `secret` in constant time.

    `secret` is PULSER_WEBHOOK_TOKEN; unset → every request is refused with an error naming it.
    """
    verify_token(headers, secret, env_var=SECRET_ENV, source="generic")


def idempotency_key(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """`Idempotency-Key` header, else the body's `event_id`, else a fresh random key.

    Without either, two identical bodies are taken as two occurrences (a cron job that fails every
    hour sends the same body each time and each should count), so a retried delivery counts twice;
    senders that retry should send an Idempotency-Key or event_id.
    """
    given = header(headers, "Idempotency-Key")
    if given:
        return f"key:{given}"
    event_id = payload.get("event_id")
    if isinstance(event_id, str) and event_id:
        return f"event:{event_id}"
    return f"unkeyed:{uuid.uuid4().hex}"


def parse(
    headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[NormalizedAlert]:
    """Exactly one alert, or PayloadError naming the first field that is wrong.

    `received_at` (default: now) stands in for a missing `occurred_at`.
    """
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise PayloadError(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")

    title = _string(payload, "title", required=True).strip()
    if not title:
        raise PayloadError("title must not be blank")
    service = _string(payload, "service")
    severity = _choice(payload, "severity", SEVERITIES, DEFAULT_SEVERITY)
    status = _choice(payload, "status", STATUSES, "firing")
    fingerprint = _string(payload, "fingerprint") or stable_hash(service, title)
    event_id = _string(payload, "event_id")
    occurred_at = (
        parse_timestamp(payload["occurred_at"], "occurred_at", assume_utc=False)
        if payload.get("occurred_at") is not None
        else received_at or datetime.now(timezone.utc)
    )
    return [
        NormalizedAlert(
            source=NAME,
            source_event_id=event_id or fingerprint,
            service=service,
            env=normalize_env(_string(payload, "env")),
            severity=severity,
            fingerprint=fingerprint,
            title=title,
            description=_string(payload, "description"),
            tags=_tags(payload.get("tags")),
            occurred_at=occurred_at,
            link=_link(payload.get("link")),
            status=status,
        )
    ]


def _string(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = payload.get(name)
    if value is None:
        if required:
            raise PayloadError(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{name} must be a string, got {json_type(value)}")
    limit = MAX_LENGTH.get(name)
    if limit and len(value) > limit:
        raise PayloadError(f"{name} is longer than {limit} characters")
    return value


def _choice(payload: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _string(payload, name)
    if not value:
        return default
    if value.lower() not in allowed:
        raise PayloadError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value.lower()


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"tags must be an object of string values, got {json_type(value)}")
    if len(value) > MAX_TAGS:
        raise PayloadError(f"tags has more than {MAX_TAGS} entries")
    for key, tag_value in value.items():
        if not isinstance(tag_value, str):
            raise PayloadError(f"tags.{key} must be a string, got {json_type(tag_value)}")
    return dict(value)


def _link(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"link must be a string, got {json_type(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PayloadError(f"link must be an http(s) URL, got {value!r}")
    return value
