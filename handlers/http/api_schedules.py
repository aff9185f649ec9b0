"""The admin API for on-call schedules, and their iCal feed.

    GET/POST /api/schedules                    GET/PUT/DELETE /api/schedules/{id}
    GET  /api/schedules/{id}/oncall?at=        who now (or at `at`), until when, who next
    GET  /api/schedules/{id}/shifts?start=&end=  final shifts (at most 93 days)
    POST /api/schedules/{id}/overrides         DELETE /api/schedules/{id}/overrides/{oid}
    POST /api/schedules/{id}/swaps             POST /api/schedules/{id}/refresh (imported layers, now)
    GET  /schedules/{feed_token}.ics           no bearer token: calendar apps cannot send one, so the
                                               random token in the URL is the secret

Bearer `PULSER_ADMIN_TOKEN` on every /api route. Validation is `alerts.oncall.validation` (the
words Slack uses too); with a Slack client, user IDs are also checked with users.info. Every change
is written to the audit log as actor `api`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from alerts.managed import MANAGED_ERROR, is_managed, managed_detail
from alerts.oncall import Schedule, ScheduleNotFound, load_schedule, shifts
from alerts.oncall.changes import Conflict, add_override, add_swap
from alerts.oncall.ical import export
from alerts.oncall.imports import CalendarImports
from alerts.oncall.people import unknown_users
from alerts.oncall.validation import (
    ValidationError, fetchable_url, parse_when, validate_override, validate_schedule, validate_swap, WHEN_HINT,
)
from alerts.oncall.view import override_json, schedule_json, shift_json, standing, standing_json, swap_json
from handlers.http.api_applications import POOL, PUBLIC_BASE_URL, ApiError, api
from handlers.http.errors import database_unavailable, json_error
from handlers.http.json_body import read_json_object
from storage import audit
from storage import schedules as store
from storage.database import DATABASE_ERRORS

SLACK_CLIENT: web.AppKey[Any] = web.AppKey("oncall_slack_client", object)
CALENDAR_IMPORTS: web.AppKey[CalendarImports] = web.AppKey("calendar_imports", CalendarImports)

NUMERIC_ID = re.compile(r"[0-9]{1,18}")
IGNORED_ON_UPDATE = ("id", "feed_url", "overrides", "created_by", "created_at", "updated_at", "managed_by")
MAX_SHIFTS_WINDOW = timedelta(days=93)
DEFAULT_SHIFTS_WINDOW = timedelta(days=7)
FEED_BEFORE, FEED_AFTER = timedelta(days=7), timedelta(days=60)


def new_feed_token() -> str:
    return secrets.token_urlsafe(24)


@api
async def list_schedules(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    rows = await store.list_schedules(pool)
    layers = await store.layers_of(pool, [r["id"] for r in rows])
    now = _now()
    return web.json_response({"schedules": [
        await schedule_json(pool, Schedule.from_rows(r, layers[r["id"]]), base_url=_base(request), now=now) for r in rows
    ]})


@api
async def create_schedule(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    spec = await _valid_schedule(request, data)
    pool = request.app[POOL]
    try:
        row = await store.create_schedule(
            pool, name=spec.name, time_zone=spec.time_zone, feed_token=new_feed_token(),
            layers=[layer.as_row() for layer in spec.layers], created_by="api",
        )
    except store.NameTaken:
        raise _name_taken(spec.name) from None
    schedule = await load_schedule(pool, row["id"])
    await _refresh_calendars(request, schedule)
    await audit.record_action(
        pool, actor="api", action="schedule.create", target_type="schedule", target_id=schedule.id,
        details=_audited(spec),
    )
    return web.json_response(
        await _view(request, schedule), status=201, headers={"Location": f"/api/schedules/{schedule.id}"}
    )


@api
async def get_schedule(request: web.Request) -> web.Response:
    return web.json_response(await _view(request, await _existing(request)))


@api
async def update_schedule(request: web.Request) -> web.Response:
    schedule = await _changeable(request)
    data = await read_json_object(request)
    errors: dict[str, str] = {}
    if "id" in data and str(data["id"]) != str(schedule.id):
        errors["id"] = "read-only: cannot be changed"
    for field in IGNORED_ON_UPDATE:
        data.pop(field, None)
    rotate = data.pop("rotate_feed_token", False)
    if not isinstance(rotate, bool):
        errors["rotate_feed_token"] = "true or false"
    merged = {
        "name": schedule.name, "time_zone": schedule.time_zone,
        "layers": [layer.as_json() for layer in schedule.layers], **data,
    }
    spec = await _valid_schedule(request, merged, errors)
    pool = request.app[POOL]
    try:
        row = await store.update_schedule(
            pool, schedule.id, name=spec.name, time_zone=spec.time_zone,
            layers=[layer.as_row() for layer in spec.layers], feed_token=new_feed_token() if rotate else None,
        )
    except store.NameTaken:
        raise _name_taken(spec.name) from None
    if row is None:
        raise _not_found()
    updated = await load_schedule(pool, schedule.id)
    await _refresh_calendars(request, updated)
    details = _audited(spec)
    if rotate:
        details["feed_token"] = "rotated"
    await audit.record_action(
        pool, actor="api", action="schedule.update", target_type="schedule", target_id=schedule.id, details=details
    )
    return web.json_response(await _view(request, updated))


@api
async def delete_schedule(request: web.Request) -> web.Response:
    schedule = await _changeable(request)
    pool = request.app[POOL]
    if not await store.delete_schedule(pool, schedule.id):
        raise _not_found()
    await audit.record_action(
        pool, actor="api", action="schedule.delete", target_type="schedule", target_id=schedule.id,
        details={"name": schedule.name},
    )
    return web.Response(status=204)


@api
async def who_is_on_call(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    at = _time_query(request, "at", schedule, default=_now())
    return web.json_response(standing_json(await standing(request.app[POOL], schedule, at), at))


@api
async def list_shifts(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    start = _time_query(request, "start", schedule, default=_now())
    end = _time_query(request, "end", schedule, default=start + DEFAULT_SHIFTS_WINDOW, base=start)
    if end <= start:
        raise ApiError(400, "invalid query parameter", {"end": "must be after start"})
    if end - start > MAX_SHIFTS_WINDOW:
        raise ApiError(400, "invalid query parameter", {"end": "at most 93 days after start"})
    found = await shifts(request.app[POOL], schedule, start, end)
    return web.json_response({"start": start.isoformat(), "end": end.isoformat(), "shifts": [shift_json(s) for s in found]})


@api
async def create_override(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    data = await read_json_object(request)
    try:
        spec = validate_override(data, schedule.time_zone, now=_now())
    except ValidationError as exc:
        raise ApiError(400, "invalid override", exc.errors) from None
    await _known_users(request, {"user": spec.user}, "invalid override")
    pool = request.app[POOL]
    try:
        row = await add_override(pool, schedule, spec, by="api")
    except Conflict as exc:
        raise ApiError(409, exc.message, exc.errors) from None
    except LookupError:
        raise _not_found() from None
    await audit.record_action(
        pool, actor="api", action="schedule.override", target_type="schedule", target_id=schedule.id,
        details=override_json(row),
    )
    return web.json_response(
        override_json(row), status=201, headers={"Location": f"/api/schedules/{schedule.id}/overrides/{row['id']}"}
    )


@api
async def delete_override(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    text = request.match_info["oid"]
    pool = request.app[POOL]
    row = await store.delete_override(pool, schedule.id, int(text)) if NUMERIC_ID.fullmatch(text) else None
    if row is None:
        raise ApiError(404, "override not found")
    await audit.record_action(
        pool, actor="api", action="schedule.override_delete", target_type="schedule", target_id=schedule.id,
        details=override_json(row),
    )
    return web.Response(status=204)


@api
async def create_swap(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    data = await read_json_object(request)
    try:
        spec = validate_swap(data, schedule.time_zone, now=_now())
    except ValidationError as exc:
        raise ApiError(400, "invalid swap", exc.errors) from None
    await _known_users(request, {"to_user": spec.to_user}, "invalid swap")
    pool = request.app[POOL]
    try:
        row = await add_swap(pool, schedule, spec, by="api")
    except Conflict as exc:
        raise ApiError(409, exc.message, exc.errors) from None
    await audit.record_action(
        pool, actor="api", action="schedule.swap", target_type="schedule", target_id=schedule.id, details=swap_json(row)
    )
    return web.json_response(swap_json(row), status=201)


@api
async def refresh(request: web.Request) -> web.Response:
    schedule = await _existing(request)
    await _refresh_calendars(request, schedule)
    return web.json_response(await _view(request, schedule))


async def feed(request: web.Request) -> web.StreamResponse:
    """The schedule's final shifts from a week ago to 60 days ahead, as iCal."""
    token = request.match_info["token"]
    pool = request.app[POOL]
    try:
        row = await store.schedule_by_feed_token(pool, token) if 16 <= len(token) <= 64 else None
        if row is None:
            return json_error(404, "not found")
        schedule = await load_schedule(pool, row["id"])
        now = _now()
        found = await shifts(pool, schedule, now - FEED_BEFORE, now + FEED_AFTER)
        names = await store.names_of(pool, sorted({s.user for s in found}))
    except DATABASE_ERRORS:
        return database_unavailable()
    body = export(schedule_id=schedule.id, name=schedule.name, zone=schedule.time_zone, shifts=found, names=names, now=now)
    return web.Response(
        body=body, content_type="text/calendar", charset="utf-8",
        headers={"Cache-Control": "private, max-age=300",
                 "Content-Disposition": f'inline; filename="oncall-{schedule.id}.ics"'},
    )


# --- helpers ---------------------------------------------------------------------------------------


async def _valid_schedule(request: web.Request, data: dict[str, Any], errors: dict[str, str] | None = None):
    errors = dict(errors or {})
    spec = None
    try:
        spec = validate_schedule(data)
    except ValidationError as exc:
        errors.update(exc.errors)
    if spec is not None and not errors:
        fields = {
            f"layers[{i}].members": user for i, layer in enumerate(spec.layers) if layer.rotation
            for user in layer.rotation.members
        }
        problems = await unknown_users(request.app[POOL], request.app.get(SLACK_CLIENT), set(fields.values()))
        for i, layer in enumerate(spec.layers):
            for user in layer.rotation.members if layer.rotation else ():
                if user in problems:
                    errors.setdefault(f"layers[{i}].members", problems[user])
    if errors:
        raise ApiError(400, "invalid schedule", errors)
    return spec


async def _known_users(request: web.Request, fields: dict[str, str], error: str) -> None:
    problems = await unknown_users(request.app[POOL], request.app.get(SLACK_CLIENT), fields.values())
    found = {field: problems[user] for field, user in fields.items() if user in problems}
    if found:
        raise ApiError(400, error, found)


async def _refresh_calendars(request: web.Request, schedule: Schedule) -> None:
    """On demand: a schedule saved with imported layers shows at once whether they can be read."""
    if any(layer.imported for layer in schedule.layers):
        await request.app[CALENDAR_IMPORTS].refresh_schedule(schedule.id)


async def _existing(request: web.Request) -> Schedule:
    text = request.match_info["id"]
    if not NUMERIC_ID.fullmatch(text):
        raise _not_found()
    try:
        return await load_schedule(request.app[POOL], int(text))
    except ScheduleNotFound:
        raise _not_found() from None


async def _changeable(request: web.Request) -> Schedule:
    schedule = await _existing(request)
    if is_managed(schedule):
        raise ApiError(409, MANAGED_ERROR, managed_detail("schedule"))
    return schedule


def _time_query(
    request: web.Request, name: str, schedule: Schedule, *, default: datetime, base: datetime | None = None
) -> datetime:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    at = parse_when(raw, schedule.time_zone, base=base or _now())
    if at is None:
        raise ApiError(400, "invalid query parameter", {name: WHEN_HINT})
    return at


async def _view(request: web.Request, schedule: Schedule) -> dict[str, Any]:
    return await schedule_json(request.app[POOL], schedule, base_url=_base(request), now=_now())


def _base(request: web.Request) -> str:
    return request.app[PUBLIC_BASE_URL]()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _audited(spec) -> dict[str, Any]:
    """What the audit log keeps of a saved schedule: a calendar URL may hold a secret (Google's
    "secret address"), so only its host is kept."""
    layers = []
    for layer in spec.layers:
        item = layer.as_json()
        if layer.imported is not None:
            item["ical_url"] = urlsplit(fetchable_url(layer.imported.url)).hostname
        layers.append(item)
    return {"name": spec.name, "time_zone": spec.time_zone, "layers": layers}


def _not_found() -> ApiError:
    return ApiError(404, "schedule not found")


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "name already taken", {"name": f"a schedule named {name!r} already exists"})


def add_routes(app: web.Application, *, slack_client: Any = None, imports: CalendarImports | None = None) -> None:
    app[SLACK_CLIENT] = slack_client
    app[CALENDAR_IMPORTS] = imports or CalendarImports(app[POOL], slack_client=slack_client)
    app.router.add_get("/api/schedules", list_schedules)
    app.router.add_post("/api/schedules", create_schedule)
    app.router.add_get("/api/schedules/{id}", get_schedule)
    app.router.add_put("/api/schedules/{id}", update_schedule)
    app.router.add_delete("/api/schedules/{id}", delete_schedule)
    app.router.add_get("/api/schedules/{id}/oncall", who_is_on_call)
    app.router.add_get("/api/schedules/{id}/shifts", list_shifts)
    app.router.add_post("/api/schedules/{id}/overrides", create_override)
    app.router.add_delete("/api/schedules/{id}/overrides/{oid}", delete_override)
    app.router.add_post("/api/schedules/{id}/swaps", create_swap)
    app.router.add_post("/api/schedules/{id}/refresh", refresh)
    app.router.add_get("/schedules/{token}.ics", feed)
