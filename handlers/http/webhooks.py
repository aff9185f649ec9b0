"""`POST /webhooks/{source}`: verify, validate, record in the ledger, answer 202 — in that order.

A forged request (401) and a body that is not what the source sends (400) store nothing. An
accepted delivery is committed to the envelope ledger under the source's idempotency key before
the 202 goes out, so a sender retry or a replay is a no-op (200, "duplicate") and a crash after the
202 loses nothing: the ledger worker finds the row when its lease runs out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import asyncpg
import structlog
from aiohttp import web
from multidict import CIMultiDict

from alerts.sources import SOURCES, NotConfiguredError, SourceError, parse_warnings, sentry
from handlers.http.errors import database_unavailable, json_error
from storage import envelopes
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

WebhookCounter = Callable[[str, str], None]

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("webhook_pool", asyncpg.Pool)
# Secrets by environment variable name (SENTRY_CLIENT_SECRET, …): each source names the one it needs.
SECRETS: web.AppKey[Mapping[str, str | None]] = web.AppKey("webhook_secrets", Mapping)
WORKER: web.AppKey[str] = web.AppKey("webhook_worker", str)
# Hands a freshly recorded delivery (the row, or its id) to the ledger worker.
ACCEPTED: web.AppKey[Callable[[Any], None]] = web.AppKey("webhook_accepted", Callable[[Any], None])
COUNT: web.AppKey[WebhookCounter] = web.AppKey("webhook_count", WebhookCounter)
# The last refused delivery per source ({"at", "error"}), for the integrations page: a refusal
# stores nothing in the ledger, yet a wrong secret is the most common integration fault.
REFUSALS: web.AppKey[dict] = web.AppKey("webhook_refusals", dict)

# Headers a parser reads later, kept with the delivery. An allowlist: signatures and tokens
# (Authorization, X-Hub-Signature-256, Sentry-Hook-Signature, X-Pulser-Token) never reach the database.
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "Sentry-Hook-Resource",
    "Sentry-Hook-Timestamp",
    "Request-ID",
    "Idempotency-Key",
)
# Headers whose values end up in the database: kept with the delivery, or part of its ledger key.
STORED_HEADERS = (*KEPT_HEADERS, "Heroku-Webhook-Id")
# Ledger keys are unique-indexed and a btree entry holds about 2.7 kB; a longer key would fail the insert.
MAX_KEY_BYTES = 1024


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/{source}", receive_webhook)


async def receive_webhook(request: web.Request) -> web.Response:
    name = request.match_info["source"]
    source = SOURCES.get(name)
    count = request.app[COUNT]
    if source is None:
        return json_error(404, "unknown webhook source", f"expected one of: {', '.join(sorted(SOURCES))}")
    raw = await request.read()
    given = request.headers
    if "token" in request.query:
        # Senders that cannot set headers (Sentry's legacy plugin) put the token in the URL.
        given = CIMultiDict(request.headers)
        given["X-Pulser-Token"] = request.query["token"]
    try:
        secrets = request.app[SECRETS]
        if source is sentry:  # the legacy plugin cannot sign; it proves itself with the shared token
            sentry.verify(given, raw, secrets.get(sentry.SECRET_ENV), legacy_token=secrets.get(sentry.LEGACY_TOKEN_ENV))
        else:
            source.verify(given, raw, secrets.get(source.SECRET_ENV))
        payload = source.decode(given, raw)
        alerts = source.parse(given, payload)  # validate now; the worker parses again later
        # What the alert lost (a link Slack would refuse, a cut title): said in the 202, not a 400.
        warnings = parse_warnings(source, given, payload)
        key = source.idempotency_key(given, payload)
    except NotConfiguredError as exc:
        count(name, "not_configured")
        _remember_refusal(request, name, f"401 webhook source not configured: {exc.message}")
        log.warning("webhook.not_configured", source=name, detail=exc.message)
        return json_error(401, "webhook source not configured", exc.message)
    except SourceError as exc:
        outcome = "unauthorized" if exc.status == 401 else "invalid"
        count(name, outcome)
        log.info("webhook.refused", source=name, status=exc.status, detail=exc.message)
        error = f"invalid {getattr(exc, 'proof', 'signature')}" if exc.status == 401 else "invalid payload"
        _remember_refusal(request, name, f"{exc.status} {error}: {exc.message}")
        return json_error(exc.status, error, exc.message)

    bad_header = undecodable_header(request.headers, STORED_HEADERS)
    if bad_header is not None:
        count(name, "invalid")
        return json_error(400, "invalid header", f"the {bad_header} header is not UTF-8 text; send it as ASCII")
    if (too_long := key_too_long(key)) is not None:
        count(name, "invalid")
        return too_long
    headers = {h: request.headers[h] for h in KEPT_HEADERS if h in request.headers}
    try:
        envelope = await envelopes.record_new_envelope(
            request.app[POOL],
            source=name,
            envelope_id=key,
            kind=_kind(name, headers, payload),
            payload=payload,
            headers=headers,
            claimed_by=request.app[WORKER],
        )
    except DATABASE_ERRORS:
        count(name, "unavailable")
        # 503: the sender retries later, and nothing was accepted that could be lost.
        return database_unavailable("the delivery was not stored; retry later")
    if envelope is None:
        count(name, "duplicate")
        return web.json_response({"status": "duplicate", "idempotency_key": key}, status=200)
    count(name, "accepted")
    request.app[ACCEPTED](envelope)
    log.info("webhook.accepted", source=name, envelope_pk=envelope.id, alerts=len(alerts), warnings=len(warnings))
    return web.json_response(
        {
            "status": "accepted", "idempotency_key": key, "alerts": len(alerts),
            "received_at": datetime.now(timezone.utc).isoformat(), "warnings": warnings,
        },
        status=202,
    )


def _remember_refusal(request: web.Request, source: str, error: str) -> None:
    refusals = request.app.get(REFUSALS)
    if refusals is not None:
        refusals[source] = {"at": datetime.now(timezone.utc), "error": error[:500]}


def undecodable_header(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The first of `names` whose value is not UTF-8 text, else None. aiohttp hands such bytes over
    as lone surrogates, which Postgres stores neither as text nor in jsonb: refused here, they are
    a 400 naming the header instead of a failed insert."""
    for name in names:
        value = headers.get(name)
        if value is not None and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def key_too_long(key: str, what: str = "delivery") -> web.Response | None:
    """The 400 for a ledger key too long to store, else None. Keys come from the Idempotency-Key
    header, a sender's delivery-id header or an id in the body; each is short when real."""
    size = len(key.encode("utf-8"))
    if size <= MAX_KEY_BYTES:
        return None
    return json_error(
        400,
        "idempotency key too long",
        f"the {what}'s idempotency key (from its Idempotency-Key or delivery-id header, or the event id in the "
        f"body) is {size} bytes long; send one of at most {MAX_KEY_BYTES} bytes",
    )


def _kind(source: str, headers: Mapping[str, str], payload: object) -> str:
    if source == "github":
        return headers.get("X-GitHub-Event", "")
    if source == "sentry":
        return headers.get("Sentry-Hook-Resource", "legacy")
    if source == "heroku" and isinstance(payload, dict):
        return str(payload.get("resource", ""))
    return source
