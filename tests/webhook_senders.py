"""How each source puts a delivery on the wire: signed/authorized headers plus body bytes.

Shared by the webhook end-to-end tests and the benchmarks, so both send exactly what Sentry,
GitHub, Alertmanager and a generic sender send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

SENTRY_SECRET = "sentry-client-secret"
GITHUB_SECRET = "github-webhook-secret"
WEBHOOK_TOKEN = "pulser-webhook-token"

SECRETS_ENV = {
    "SENTRY_CLIENT_SECRET": SENTRY_SECRET,
    "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    "PULSER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
}


def _compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def sentry(payload: dict, resource: str = "error", secret: str = SENTRY_SECRET) -> tuple[dict, bytes]:
    body = _compact(payload)
    return {
        "Content-Type": "application/json",
        "Request-ID": uuid.uuid4().hex,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": "1700000000",
        "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }, body


def github(payload: dict, event: str, delivery: str | None = None, secret: str = GITHUB_SECRET) -> tuple[dict, bytes]:
    body = _compact(payload)
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }, body


def alertmanager(payload: dict, token: str = WEBHOOK_TOKEN) -> tuple[dict, bytes]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, _compact(payload)


def generic(payload: dict, token: str = WEBHOOK_TOKEN, idempotency_key: str | None = None) -> tuple[dict, bytes]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers, _compact(payload)
