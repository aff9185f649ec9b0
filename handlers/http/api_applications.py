"""The admin API for heartbeat applications: `/api/applications[/{id}[/heartbeats]]`.

Bearer `PULSER_ADMIN_TOKEN` on every route. Validation is `alerts.applications.validate_application`,
the same the Slack modal uses, so both refuse the same input with the same words. Every change is
written to the audit log as actor `api`.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timezone
from functools import wraps
from typing import Any, Callable

import asyncpg
from aiohttp import web

from alerts.application_view import application_json, heartbeat_json
from alerts.applications import FIELDS, ValidationError, clock_after_edit, validate_application
from alerts.channels import ChannelResolver
from handlers.http.auth import require_admin
from handlers.http.errors import Handler, database_unavailable, json_error
from handlers.http.json_body import InvalidJson, read_json_object
from storage import applications, audit, heartbeats
from storage.applications import Application, NameTaken
from storage.database import DATABASE_ERRORS

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
DEFAULT_CHANNEL: web.AppKey[str] = web.AppKey("default_channel", str)
# Channel names in saved bodies (apps, rules, event routes, deploy services) become channel IDs.
CHANNELS: web.AppKey[ChannelResolver] = web.AppKey("channels", ChannelResolver)
PUBLIC_BASE_URL: web.AppKey[Callable[[], str]] = web.AppKey("public_base_url", Callable[[], str])

# Fields that change when an app's clock must be recomputed from its last heartbeat.
# Response fields a client may send back in a PUT (GET → edit → PUT); the server owns them.
IGNORED_ON_UPDATE = ("status", "last_heartbeat", "next_deadline", "created_at", "updated_at", "ping_url")
IDENTITY_FIELDS = ("id", "uuid")
APP_ID = re.compile(r"[0-9]{1,18}")
HISTORY_LIMIT = 1000
LIST_LIMIT = 1000


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None):
        self.status, self.error, self.detail = status, error, detail


def api(handler: Handler) -> Handler:
    """Admin token first; then ApiError → its JSON, a body that is not JSON → 400, database trouble → 503."""

    @require_admin
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return json_error(exc.status, exc.error, exc.detail)
        except InvalidJson as exc:
            return exc.response()
        except DATABASE_ERRORS:
            return database_unavailable()

    return wrapped


@api
async def list_apps(request: web.Request) -> web.Response:
    limit = _int_query(request, "limit", 100, 1, LIST_LIMIT)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    apps = await applications.list_applications(request.app[POOL], limit=limit, offset=offset)
    now, base = _now(), request.app[PUBLIC_BASE_URL]()
    return web.json_response(
        {"applications": [application_json(a, now, base) for a in apps], "limit": limit, "offset": offset}
    )


@api
async def create_app(request: web.Request) -> web.Response:
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    try:
        spec = validate_application(data, default_channel=request.app[DEFAULT_CHANNEL])
    except ValidationError as exc:
        raise ApiError(400, "invalid application", exc.errors) from None
    pool = request.app[POOL]
    try:
        app = await applications.create_application(pool, spec, created_by="api")
    except NameTaken:
        raise _name_taken(spec.name) from None
    await audit.record_action(
        pool, actor="api", action="application.create", target_type="application", target_id=app.id, details=asdict(spec)
    )
    return web.json_response(
        _view(request, app), status=201, headers={"Location": f"/api/applications/{app.id}"}
    )


@api
async def get_app(request: web.Request) -> web.Response:
    return web.json_response(_view(request, await _existing(request)))


@api
async def update_app(request: web.Request) -> web.Response:
    app = await _existing(request)
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    errors: dict[str, str] = {}
    for field in IDENTITY_FIELDS:
        if field in data and str(data.pop(field)) != str(getattr(app, field)):
            errors[field] = "read-only: cannot be changed"
    for field in IGNORED_ON_UPDATE:
        data.pop(field, None)
    try:
        spec = validate_application(data, default_channel=request.app[DEFAULT_CHANNEL], current=app.spec)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ApiError(400, "invalid application", errors)

    changes = {
        f: {"from": getattr(app.spec, f), "to": getattr(spec, f)} for f in FIELDS if getattr(app.spec, f) != getattr(spec, f)
    }
    if not changes:
        return web.json_response(_view(request, app))
    pool = request.app[POOL]
    try:
        # Pausing and resuming go through set_active (resume restarts the clock as `new`).
        updated = await applications.update_application(pool, app.id, spec, clock_after_edit=clock_after_edit)
    except NameTaken:
        raise _name_taken(spec.name) from None
    if updated is not None and "is_active" in changes:
        updated = await applications.set_active(pool, app.id, spec.is_active)
    if updated is None:
        raise _not_found()
    await audit.record_action(
        pool, actor="api", action="application.update", target_type="application", target_id=app.id, details=changes
    )
    return web.json_response(_view(request, updated))


@api
async def delete_app(request: web.Request) -> web.Response:
    app = await _existing(request)
    pool = request.app[POOL]
    if not await applications.delete_application(pool, app.id):
        raise _not_found()
    await audit.record_action(
        pool,
        actor="api",
        action="application.delete",
        target_type="application",
        target_id=app.id,
        details={"name": app.name, "uuid": str(app.uuid)},
    )
    return web.Response(status=204)


@api
async def app_heartbeats(request: web.Request) -> web.Response:
    app = await _existing(request)
    limit = _int_query(request, "limit", 100, 1, HISTORY_LIMIT)
    rows = await heartbeats.list_heartbeats(request.app[POOL], app.id, limit=limit)
    return web.json_response({"heartbeats": [heartbeat_json(r) for r in rows]})


async def _existing(request: web.Request) -> Application:
    text = request.match_info["id"]
    app = await applications.get_application(request.app[POOL], int(text)) if APP_ID.fullmatch(text) else None
    if app is None:
        raise _not_found()
    return app


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid query parameter", {name: f"must be a whole number from {low} to {high}"})
    return int(raw)


def _view(request: web.Request, app: Application) -> dict[str, Any]:
    return application_json(app, _now(), request.app[PUBLIC_BASE_URL]())


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _not_found() -> ApiError:
    return ApiError(404, "application not found")


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "name already taken", {"name": f"an application named {name!r} already exists"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/applications", list_apps)
    app.router.add_post("/api/applications", create_app)
    app.router.add_get("/api/applications/{id}", get_app)
    app.router.add_put("/api/applications/{id}", update_app)
    app.router.add_delete("/api/applications/{id}", delete_app)
    app.router.add_get("/api/applications/{id}/heartbeats", app_heartbeats)
