"""Generic JSON alerts: anything that can POST JSON (cron jobs, scripts, tools without a module).

    POST /webhooks/generic
    Authorization: Bearer <PULSER_WEBHOOK_TOKEN>      (or  X-Pulser-Token: <PULSER_WEBHOOK_TOKEN>)
    Idempotency-Key: <optional, unique per delivery>
    Content-Type: application/json

    {
      "title":       "Nightly backup failed",          # required, non-blank string; cut to 300 chars
      "service":     "billing-db",                     # string ≤ 200, default ""
      "env":         "production",                     # string ≤ 100, default ""; "prod" → "production"
      "severity":    "high",                           # info | low | medium | high | critical, any case; default medium
      "severity_is_current": false,                    # true: the severity is the problem's current state (see below)
      "status":      "firing",                         # firing | resolved (any case); default firing
      "fingerprint": "backup:billing-db",              # string ≤ 200; default sha256 of [service, title]
      "description": "pg_dump exited with code 1",     # string, default ""; cut to 10,000 chars
      "link":        "https://ci.example.com/job/42",  # http(s) URL ≤ 3,000 chars, or null
      "tags":        {"team": "payments"},             # object of string → string, ≤ 50 entries
      "occurred_at": "2026-11-23T02:00:00Z",           # ISO 8601 with Z or an offset; default: receipt time
      "event_id":    "backup-2026-11-23"               # string ≤ 200; the dedup key when no Idempotency-Key
    }

Validation is strict about the *shape*: a field of the wrong type, an unknown severity or status,
or an unknown top-level field (usually a typo such as "sevrity", which would otherwise be silently
ignored) is a PayloadError naming the field, and so is an identity field (service, env, fingerprint,
event_id) over its limit — cutting it could merge two problems. Examples: tests/fixtures/generic/*.json.

It is liberal about *values* that only show up with some alerts and are not needed to alert: an
over-long title or description is cut, and a link Slack would refuse (over 3,000 characters, not
http(s)) is left out. Refusing the alert for them would lose a page; instead the 202 answer lists
each such change under `warnings` (see `warnings`), and so does a tag named like one of the alert's
own labels (source, service, env, severity, fingerprint), which silences and rules never see.

Severity: by default an incident keeps the highest severity its alerts had (a repeat at a lower
severity does not calm it down). A sender whose severity is a state — a check that is now "warning"
after being "critical" — sends `"severity_is_current": true`, and the incident follows its latest
alert down as well as up.

Send the same `fingerprint` (or the same service + title) for repeats of one problem, and
`"status": "resolved"` with it to close the group.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

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
    "title", "service", "env", "severity", "severity_is_current", "status", "fingerprint",
    "description", "link", "tags", "occurred_at", "event_id",
)  # fmt: skip
# Identity fields: over the limit is a 400, since a cut value could merge two problems.
MAX_LENGTH = {"fingerprint": 200, "service": 200, "env": 100, "event_id": 200}
# Text fields: over the limit is cut, and the 202 says so.
CUT_LENGTH = {"title": 300, "description": 10_000}
# Slack refuses a message whose button URL is longer (blocks.incidents.URL_MAX).
LINK_MAX = 3000
# Never valid in a URL, and Slack refuses a link with it; percent-encoded, it is the same address.
_WHITESPACE = re.compile(r"\s")
MAX_TAGS = 50
# The labels every alert has (alerts.matchers.alert_labels): a tag of the same name is hidden by them.
FIXED_LABELS = ("source", "service", "env", "severity", "fingerprint")
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
    alert, _ = _read(payload, received_at)
    return [alert]


def warnings(headers: Mapping[str, str], payload: Mapping[str, Any]) -> list[str]:
    """What an accepted body lost on the way to its alert — a field cut or left out, a tag hidden —
    one sentence each, naming the field and the limit, for the 202 answer: the sender learns of it
    without the alert being refused. [] for a body that went through whole."""
    _, notes = _read(payload, None)
    return notes


def _read(payload: Mapping[str, Any], received_at: datetime | None) -> tuple[NormalizedAlert, list[str]]:
    """The alert and the warnings about it, from one pass, so `parse` and `warnings` never disagree."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    unknown = sorted(set(payload) - set(FIELDS))
    if unknown:
        raise PayloadError(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")

    notes: list[str] = []
    full_title = _string(payload, "title", required=True).strip()
    if not full_title:
        raise PayloadError("title must not be blank")
    service = _string(payload, "service")
    severity = _choice(payload, "severity", SEVERITIES, DEFAULT_SEVERITY)
    status = _choice(payload, "status", STATUSES, "firing")
    # The whole title, not the cut one: two long titles that differ only at the end stay two problems.
    fingerprint = _string(payload, "fingerprint") or stable_hash(service, full_title)
    event_id = _string(payload, "event_id")
    occurred_at = (
        parse_timestamp(payload["occurred_at"], "occurred_at", assume_utc=False)
        if payload.get("occurred_at") is not None
        else received_at or datetime.now(timezone.utc)
    )
    tags = _tags(payload.get("tags"))
    notes += _hidden_tag_warnings(tags)
    alert = NormalizedAlert(
        source=NAME,
        source_event_id=event_id or fingerprint,
        service=service,
        env=normalize_env(_string(payload, "env")),
        severity=severity,
        severity_is_current=_flag(payload, "severity_is_current"),
        fingerprint=fingerprint,
        title=_cut(full_title, "title", notes),
        description=_cut(_string(payload, "description"), "description", notes),
        tags=tags,
        occurred_at=occurred_at,
        link=_link(payload.get("link"), notes),
        status=status,
    )
    return alert, notes


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


def _cut(value: str, name: str, notes: list[str]) -> str:
    """`value` cut to CUT_LENGTH[name], with a warning when something was cut."""
    limit = CUT_LENGTH[name]
    if len(value) <= limit:
        return value
    notes.append(f"{name} is longer than {limit:,} characters ({len(value):,}): it was cut to {limit:,}")
    return value[:limit]


def _flag(payload: Mapping[str, Any], name: str) -> bool:
    value = payload.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PayloadError(f"{name} must be true or false, got {json_type(value)}")
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


def _hidden_tag_warnings(tags: Mapping[str, str]) -> list[str]:
    """A tag named like a fixed label is stored, but silences and rules only ever see the label."""
    notes = []
    for name in FIXED_LABELS:
        if name in tags:
            hint = "" if name == "source" else f"; send it as the top-level {name} field"
            notes.append(f"tags.{name} is hidden by the alert's own {name} label, which silences and rules match{hint}")
    return notes


def _link(value: Any, notes: list[str]) -> str | None:
    """The link as Slack will take it, or None with a warning in `notes` when Slack would refuse it.

    Whitespace (never valid in a URL, and refused by Slack) is percent-encoded and a scheme in capitals
    lowercased: the same address, now usable. Not http(s), or over LINK_MAX → left out: a link is not
    worth losing the alert over, and Slack would refuse the whole message with it.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"link must be a string, got {json_type(value)}")
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # "http://[::1" and the like: not a URL at all
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        notes.append(f"link must be an http(s) URL, got {_preview(value)}: the alert was accepted without it")
        return None
    link = parts.scheme + _WHITESPACE.sub(lambda m: quote(m.group()), value.strip()[len(parts.scheme) :])
    if len(link) > LINK_MAX:
        notes.append(
            f"link is longer than {LINK_MAX:,} characters ({len(link):,}), the most Slack takes for a "
            "link: the alert was accepted without it"
        )
        return None
    return link


def _preview(value: str, limit: int = 80) -> str:
    """A value quoted for a warning, cut so that a huge one does not make a huge answer."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")
