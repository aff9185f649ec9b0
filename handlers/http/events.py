"""`POST /events` (platform events from CI, deploy tools, monitors, cron jobs) and the admin API
`GET /api/events`, `GET|PUT /api/event-routes`.

`POST /events` follows the webhook order: verify the token (PULSER_WEBHOOK_TOKEN; unset → 401
naming it), validate (400 with every wrong field), record in the envelope ledger under the
event's idempotency key, answer 202 — then the ledger worker stores the event and the event
notifier posts it. A replay of the same event_id (or Idempotency-Key) is a 200 "duplicate".
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Mapping

import structlog
from aiohttp import web

from alerts.applications import ValidationError
from alerts.platform_events import ACTION, EVENT_TYPES, event_json, validate_event, validate_route
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError, decode_json_body, header, verify_token
from alerts.managed import MANAGED_ERROR
from handlers.http import api_applications
from handlers.http.api_applications import ApiError, api
from handlers.http.errors import database_unavailable, json_error
from handlers.http.json_body import read_json_object
from handlers.http.webhooks import ACCEPTED, COUNT, POOL, SECRETS, WORKER, key_too_long, undecodable_header
from storage import audit, envelopes
from storage import platform_events as store
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

SOURCE = "events"
TOKEN_ENV = "PULSER_WEBHOOK_TOKEN"
# Headers kept with the event; tokens never reach the database.
KEPT_HEADERS = ("Content-Type", "User-Agent", "Idempotency-Key")
LIST_LIMIT = 500


def add_routes(app: web.Application) -> None:
    app.router.add_post("/events", receive_event)
    app.router.add_get("/api/events", list_events)
    app.router.add_get("/api/event-routes", get_routes)
    app.router.add_put("/api/event-routes", put_routes)


async def receive_event(request: web.Request) -> web.Response:
    count = request.app[COUNT]
    raw = await request.read()
    try:
        verify_token(request.headers, request.app[SECRETS].get(TOKEN_ENV), env_var=TOKEN_ENV, source="events")
    except NotConfiguredError as exc:
        count(SOURCE, "not_configured")
        log.warning("events.not_configured", detail=exc.message)
        return json_error(401, "events not configured", exc.message)
    except SignatureError as exc:
        count(SOURCE, "unauthorized")
        log.info("events.refused", status=401, detail=exc.message)
        return json_error(401, f"invalid {exc.proof}", exc.message)
    try:
        payload = decode_json_body(raw)
        spec = validate_event(payload)
    except PayloadError as exc:
        count(SOURCE, "invalid")
        return json_error(400, "invalid event", {"body": exc.message})
    except ValidationError as exc:
        count(SOURCE, "invalid")
        log.info("events.invalid", fields=sorted(exc.errors))
        return json_error(400, "invalid event", exc.errors)

    bad_header = undecodable_header(request.headers, KEPT_HEADERS)
    if bad_header is not None:
        count(SOURCE, "invalid")
        return json_error(400, "invalid header", f"the {bad_header} header is not UTF-8 text; send it as ASCII")
    key = idempotency_key(request.headers, spec.event_id)
    if (too_long := key_too_long(key, "event")) is not None:
        count(SOURCE, "invalid")
        return too_long
    try:
        pk = await envelopes.record_envelope(
            request.app[POOL],
            source=SOURCE,
            scope="",
            envelope_id=key,
            kind=spec.event_type,
            payload=payload,
            headers={h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
            claimed_by=request.app[WORKER],
        )
    except DATABASE_ERRORS:
        count(SOURCE, "unavailable")
        return database_unavailable("the event was not stored; retry later")
    if pk is None:
        count(SOURCE, "duplicate")
        return web.json_response({"status": "duplicate", "idempotency_key": key}, status=200)
    count(SOURCE, "accepted")
    request.app[ACCEPTED](pk)
    log.info("events.accepted", envelope_pk=pk, event_type=spec.event_type, status=spec.status, service=spec.service)
    return web.json_response(
        {
            "status": "accepted",
            "idempotency_key": key,
            "event_type": spec.event_type,
            "event_status": spec.status,
            "received_at": datetime.now(timezone.utc).isoformat(),
        },
        status=202,
    )


def idempotency_key(headers: Mapping[str, str], event_id: str | None) -> str:
    """The body's event_id, else the Idempotency-Key header, else a fresh key (each POST counts)."""
    if event_id:
        return f"event:{event_id}"
    given = header(headers, "Idempotency-Key")
    if given:
        return f"key:{given}"
    return f"unkeyed:{uuid.uuid4().hex}"


# --- the admin API ---------------------------------------------------------------------------------------


@api
async def list_events(request: web.Request) -> web.Response:
    """Newest first; `?type=deploy` (or `action` for the audit) and `?limit=` (1–500, default 50)."""
    event_type = request.query.get("type") or None
    if event_type is not None and event_type not in (*EVENT_TYPES, ACTION):
        raise ApiError(400, "invalid query parameter", {"type": f"must be one of {', '.join((*EVENT_TYPES, ACTION))}"})
    limit = _limit(request.query.get("limit"))
    rows = await store.list_events(request.app[api_applications.POOL], event_type=event_type, limit=limit)
    return web.json_response({"events": [event_json(r) for r in rows], "limit": limit})


@api
async def get_routes(request: web.Request) -> web.Response:
    """The types with a channel of their own: `{"deploy": "#ops-deploy"}`; the rest go to SLACK_CHANNEL."""
    return web.json_response(await store.list_routes(request.app[api_applications.POOL]))


@api
async def put_routes(request: web.Request) -> web.Response:
    """Replace the routes with the body's: `{"deploy": "#ops-deploy", "ci": null}`; a type left out
    or null goes back to the default channel. Every change is audited as actor `api`."""
    data = await read_json_object(request)
    wanted: dict[str, str] = {}
    errors: dict[str, str] = {}
    for event_type, channel in data.items():
        if channel is None and event_type in EVENT_TYPES:
            continue
        try:
            kind, target = validate_route(event_type, channel)
        except ValidationError as exc:
            errors[str(event_type)] = "; ".join(exc.errors.values())
            continue
        wanted[kind] = await request.app[api_applications.CHANNELS].resolve(target)
    if errors:
        raise ApiError(400, "invalid event routes", errors)
    pool = request.app[api_applications.POOL]
    async with pool.acquire() as conn, conn.transaction():
        current = await store.list_routes(conn)
        managed = await store.managed_routes(conn)
        locked = sorted(t for t in managed if current.get(t) != wanted.get(t))
        if locked:
            raise ApiError(409, MANAGED_ERROR, {
                t: "this route is defined in the config file (PULSER_CONFIG) and is read-only here: keep it as it "
                "is in this body (GET /api/event-routes shows it), and change it in the file" for t in locked
            })
        for event_type in EVENT_TYPES:
            before, after = current.get(event_type), wanted.get(event_type)
            if before == after:
                continue
            if after is None:
                await store.delete_route(conn, event_type)
            else:
                await store.set_route(conn, event_type, after, updated_by="api")
            await audit.record_action(
                conn, actor="api", action="event_route.set" if after else "event_route.reset",
                target_type="event_route", target_id=event_type, details={"channel": {"from": before, "to": after}},
            )
        routes = await store.list_routes(conn)
    return web.json_response(routes)


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= LIST_LIMIT:
        raise ApiError(400, "invalid query parameter", {"limit": f"must be a whole number from 1 to {LIST_LIMIT}"})
    return int(raw)
