"""The admin API for deploys: `/api/services[/{id}]` (the services `/pulser deploy` knows and how
each deploys) and `GET /api/deploys` (requests, newest first).

Bearer `PULSER_ADMIN_TOKEN` on every route (`api`). Validation is `alerts.deploys.validate_service`,
the one Slack's side relies on too. Every change is audited as actor `api`. A webhook service's URL
is returned here (admins need it to edit the service) but never shown in Slack or logged.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from alerts.deploys import (
    ServiceNameTaken,
    ValidationError,
    create_service,
    delete_service,
    describe_action,
    update_service,
)
from alerts.managed import MANAGED_ERROR, is_managed, managed_detail
from handlers.http.api_applications import CHANNELS, POOL, ApiError, _int_query, api
from handlers.http.json_body import read_json_object
from storage import deploys as store
from storage.deploys import DeployRequest, DeployService

SERVICE_ID = re.compile(r"[0-9]{1,18}")
# Response fields a client may send back in a PUT (GET → edit → PUT); the server owns them.
IGNORED_ON_UPDATE = ("created_by", "created_at", "updated_at", "description", "managed_by")
LIST_LIMIT = 1000


@api
async def list_services(request: web.Request) -> web.Response:
    services = await store.list_services(request.app[POOL], limit=LIST_LIMIT)
    return web.json_response({"services": [service_json(s) for s in services]})


@api
async def create(request: web.Request) -> web.Response:
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    try:
        service = await create_service(request.app[POOL], data, user="api")
    except ValidationError as exc:
        raise ApiError(400, "invalid service", exc.errors) from None
    except ServiceNameTaken as exc:
        raise _name_taken(str(exc)) from None
    return web.json_response(service_json(service), status=201, headers={"Location": f"/api/services/{service.id}"})


@api
async def get(request: web.Request) -> web.Response:
    return web.json_response(service_json(await _existing(request)))


@api
async def update(request: web.Request) -> web.Response:
    service = await _changeable(request)
    data = await request.app[CHANNELS].resolve_field(await read_json_object(request))
    if "id" in data and str(data.pop("id")) != str(service.id):
        raise ApiError(400, "invalid service", {"id": "read-only: cannot be changed"})
    for field in IGNORED_ON_UPDATE:
        data.pop(field, None)
    try:
        updated = await update_service(request.app[POOL], service.id, data, user="api")
    except ValidationError as exc:
        raise ApiError(400, "invalid service", exc.errors) from None
    except ServiceNameTaken as exc:
        raise _name_taken(str(exc)) from None
    if updated is None:
        raise _not_found()
    return web.json_response(service_json(updated))


@api
async def delete(request: web.Request) -> web.Response:
    service = await _changeable(request)
    if await delete_service(request.app[POOL], service.id, user="api") is None:
        raise _not_found()
    return web.Response(status=204)


@api
async def list_deploys(request: web.Request) -> web.Response:
    limit = _int_query(request, "limit", 100, 1, LIST_LIMIT)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    requests = await store.list_requests(request.app[POOL], limit=limit, offset=offset)
    return web.json_response({"deploys": [request_json(r) for r in requests], "limit": limit, "offset": offset})


def service_json(service: DeployService) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "action_type": service.action_type,
        "action": service.action,
        "description": describe_action(service),
        "default_env": service.default_env,
        "requires_approval": service.requires_approval,
        "channel": service.channel,
        "created_by": service.created_by,
        "created_at": _iso(service.created_at),
        "updated_at": _iso(service.updated_at),
        "managed_by": service.managed_by,
    }


def request_json(request: DeployRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "service_id": request.service_id,
        "service": request.service_name,
        "env": request.env,
        "ref": request.ref,
        "reason": request.reason,
        "requested_by": request.requested_by,
        "status": request.status,
        "decided_by": request.decided_by,
        "decided_at": _iso(request.decided_at),
        "trigger_error": request.trigger_error,
        "created_at": _iso(request.created_at),
        "updated_at": _iso(request.updated_at),
    }


async def _existing(request: web.Request) -> DeployService:
    text = request.match_info["id"]
    service = await store.get_service(request.app[POOL], int(text)) if SERVICE_ID.fullmatch(text) else None
    if service is None:
        raise _not_found()
    return service


async def _changeable(request: web.Request) -> DeployService:
    """The service, unless the config file manages it (409: change it there)."""
    service = await _existing(request)
    if is_managed(service):
        raise ApiError(409, MANAGED_ERROR, managed_detail("deploy service"))
    return service


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _not_found() -> ApiError:
    return ApiError(404, "service not found")


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "name already taken", {"name": f"a service named {name!r} already exists"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/services", list_services)
    app.router.add_post("/api/services", create)
    app.router.add_get("/api/services/{id}", get)
    app.router.add_put("/api/services/{id}", update)
    app.router.add_delete("/api/services/{id}", delete)
    app.router.add_get("/api/deploys", list_deploys)
