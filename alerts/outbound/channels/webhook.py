"""A generic outbound webhook: every action of an incident, as signed JSON, to a URL of yours.

Body: `{"action": "trigger", "incident": {...the page's fields...}, "sent_at": "<ISO 8601>"}`.
Headers: `X-Pulser-Event` (the action), `X-Pulser-Timestamp` (Unix seconds) and, when a signing
secret is set, `X-Pulser-Signature: sha256=<hex>` — the HMAC-SHA256, keyed with the signing secret,
of `"{timestamp}.{body}"` (the raw body bytes as received). `Idempotency-Key` is the same for a
retried send, so a receiver can drop a duplicate.

A receiver verifies in five lines (Python):

    import hashlib, hmac, time
    def verified(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
        expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) < 300  # refuse replays older than five minutes
        return fresh and hmac.compare_digest(expected, signature)

Any 2xx is delivered; 429 (with `Retry-After`), 408 and 5xx are retried; other answers are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import httpx
from pydantic import field_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, Secret, service_url

KIND = "webhook"
LABEL = "Outbound webhook (signed JSON)"
SECRET_FIELDS = ("url", "signing_secret")
ACTIONS = frozenset({"trigger", "escalate", "acknowledge", "resolve", "test"})

HINTS = {
    400: "the receiver refused the payload",
    401: "the receiver refused the signature; set the same signing secret on both sides",
    403: "the receiver refused the request; check the signing secret and its access rules",
    404: "the receiver's URL was not found; check it",
    410: "the receiver's URL is gone; paste a new one",
}


class WebhookSettings(ChannelSettings):
    url: Secret
    signing_secret: Secret | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value):
        # A receiver on the private network may well listen on plain http; the body is signed.
        return service_url(value, plain_http=True)


def incident(page: Page) -> dict:
    """The page's fields as JSON (`recipient` included: it says who this send was for)."""
    return {
        "dedup_key": page.dedup_key,
        "incident_id": page.incident_id,
        "title": page.title,
        "severity": page.severity,
        "status": page.status,
        "service": page.service,
        "env": page.env,
        "source": page.source,
        "description": page.description,
        "link": page.link,
        "count": page.count,
        "first_seen": page.first_seen.isoformat() if page.first_seen else None,
        "labels": dict(page.labels),
        "step": page.step,
        "recipient": page.recipient,
        "acked_by": page.acked_by,
        "resolved_by": page.resolved_by,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def idempotency_key(page: Page) -> str:
    return ":".join(part for part in (page.dedup_key, page.action, page.step or "") if part)


async def send(settings: WebhookSettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    url = settings.url.get_secret_value()
    key = settings.signing_secret.get_secret_value() if settings.signing_secret else None
    secrets = answers.secret_values(url, key)
    body = json.dumps(
        {"action": page.action, "incident": incident(page), "sent_at": datetime.now(timezone.utc).isoformat()},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Pulser-Event": page.action,
        "X-Pulser-Timestamp": timestamp,
        "Idempotency-Key": idempotency_key(page),
    }
    if key:
        headers["X-Pulser-Signature"] = signature(key, timestamp, body)
    response = await answers.call(http, "POST", url, service="The webhook receiver", secrets=secrets, content=body, headers=headers)
    if response.is_success:
        return SendResult(detail=f"HTTP {response.status_code}")
    raise answers.refused("The webhook receiver", response, secrets=secrets, hints=HINTS, detail=response.text or None)
