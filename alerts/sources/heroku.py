"""Heroku app webhooks: verified and validated here, turned into alerts by heroku_detection.

Signature: `Heroku-Webhook-Hmac-SHA256` = standard Base64 (with `=` padding, not hex) of
HMAC-SHA256 over the raw body, keyed by the subscription's secret (`HEROKU_WEBHOOK_SECRET`),
as Heroku's app-webhooks documentation specifies.

`parse` validates the envelope and returns no alerts: a webhook event is one more observation of
an app, and only `heroku_detection.detect`, comparing it with the stored state, knows whether it
is news (the poll may have seen the same release already). The worker therefore calls
`observation_from_event` and `detect` instead of feeding `parse`'s result to the pipeline.

Events used: api:dyno (crashes, stops), api:release (deploys, failures), api:formation (scale
changes, so a scale-down is not reported as dynos down), api:addon (add-on state). Other
subscribed entities are accepted, validated and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any, Mapping

from alerts.heroku_detection import Observation
from alerts.normalized import NormalizedAlert
from alerts.sources.common import (
    PayloadError,
    SignatureError,
    canonical_payload_hash,
    decode_json_body,
    header,
    json_type,
    optional_text,
    require_object,
    require_secret,
    require_text,
    same_secret,
)

NAME = "heroku"
SECRET_ENV = "HEROKU_WEBHOOK_SECRET"
SIGNATURE_HEADER = "Heroku-Webhook-Hmac-SHA256"
# Not confirmed by Heroku's documentation (see the reference README): only a last resort for dedup.
WEBHOOK_ID_HEADER = "Heroku-Webhook-Id"


def decode(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
    """The JSON body as a dict (PayloadError if it is not a JSON object)."""
    return decode_json_body(raw_body)


def verify(headers: Mapping[str, str], raw_body: bytes, secret: str | None) -> None:
    """Check `Heroku-Webhook-Hmac-SHA256` against Base64(HMAC-SHA256(secret, raw_body)), in constant time.

    With no `secret` (HEROKU_WEBHOOK_SECRET unset) every delivery is refused with an error naming
    the variable: an unconfigured source is closed, not open.
    """
    key = require_secret(secret, SECRET_ENV, "Heroku")
    given = header(headers, SIGNATURE_HEADER)
    if not given:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header (was the app webhook created with a secret?)")
    expected = base64.b64encode(hmac.new(key.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")
    if not same_secret(given, expected):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body signed with {SECRET_ENV}")


def idempotency_key(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """The ledger key: the delivery id (kept across retry attempts), else the event id, else the
    `Heroku-Webhook-Id` header, else a hash of the content. Prefixed so the kinds never collide."""
    metadata = payload.get("webhook_metadata")
    delivery = metadata.get("delivery") if isinstance(metadata, dict) else None
    delivery_id = optional_text(delivery, "id") if isinstance(delivery, dict) else ""
    if delivery_id:
        return f"delivery:{delivery_id}"
    event_id = optional_text(payload, "id")
    if event_id:
        return f"event:{event_id}"
    webhook_id = header(headers, WEBHOOK_ID_HEADER)
    if webhook_id:
        return f"webhook-id:{webhook_id}"
    return f"sha256:{canonical_payload_hash(payload)}"


def parse(
    headers: Mapping[str, str], payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[NormalizedAlert]:
    """Validate the envelope (PayloadError says what is wrong); always [] — see the module docstring.
    `received_at` is unused: detection reads the ledger's receipt time itself."""
    _event(payload)
    return []


def observation_from_event(payload: Mapping[str, Any], received_at: datetime) -> Observation | None:
    """What this event shows of its app, observed at the server's receipt time; None for entities
    detection does not use. PayloadError when the body is not a valid Heroku app webhook."""
    resource, action, data, app = _event(payload)
    if resource == "dyno":
        event = {
            "id": optional_text(data, "id"),
            "name": str(data["name"]),
            "type": str(data["type"]),
            "state": str(data["state"]),
            "action": action,
            "exit_status": data.get("exit_status") if isinstance(data.get("exit_status"), int) else None,
        }
        return Observation(app=app, observed_at=received_at, dyno_events=[event])
    if resource == "release":
        user = data.get("user") if isinstance(data.get("user"), dict) else {}
        release = {
            "id": optional_text(data, "id"),
            "version": data["version"],
            "status": str(data["status"]),
            "description": optional_text(data, "description"),
            "user": optional_text(user, "email"),
            "created_at": optional_text(data, "created_at") or None,
            "eligible_for_rollback": data.get("eligible_for_rollback") is True,
            "current": data.get("current") is True,
        }
        return Observation(app=app, observed_at=received_at, releases=[release])
    if resource == "formation":
        quantity = 0 if action == "destroy" else data["quantity"]
        return Observation(app=app, observed_at=received_at, formation={str(data["type"]): quantity})
    if resource == "addon":
        service = data.get("addon_service") if isinstance(data.get("addon_service"), dict) else {}
        plan = data.get("plan") if isinstance(data.get("plan"), dict) else {}
        event = {
            "name": str(data["name"]),
            "service": optional_text(service, "name"),
            "plan": optional_text(plan, "name"),
            "state": str(data["state"]),
            "action": action,
        }
        return Observation(app=app, observed_at=received_at, addon_events=[event])
    return None


# --- validation -------------------------------------------------------------------------------------------


def _event(payload: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], str]:
    """(resource without "api:", action, data, app name) of a valid envelope, or PayloadError."""
    if not isinstance(payload, dict):
        raise PayloadError(f"body must be a JSON object, got {json_type(payload)}")
    resource = require_text(payload, "resource", "resource").strip().lower().removeprefix("api:")
    action = require_text(payload, "action", "action").strip().lower()
    data = require_object(payload, "data", "data")
    if resource == "app":
        app = require_text(data, "name", "data.name")
    else:
        app = require_text(require_object(data, "app", "data.app"), "name", "data.app.name")
    for key in _REQUIRED_TEXT.get(resource, ()):
        require_text(data, key, f"data.{key}")
    if resource == "release":
        _require_count(data, "version", minimum=1)
    if resource == "formation" and action != "destroy":
        _require_count(data, "quantity", minimum=0)
    return resource, action, data, app


_REQUIRED_TEXT = {
    "dyno": ("name", "type", "state"),
    "release": ("status",),
    "formation": ("type",),
    "addon": ("name", "state"),
}


def _require_count(data: dict[str, Any], key: str, *, minimum: int) -> None:
    value = data.get(key)
    if value is None:
        raise PayloadError(f"data.{key} is missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PayloadError(f"data.{key} must be an integer ≥ {minimum}, got {value!r}")
