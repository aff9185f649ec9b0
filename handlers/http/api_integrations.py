"""The integrations API: `GET /api/integrations` (each webhook source: configured or which
variable is missing, last delivery, last error, deliveries in 24 hours) and
`POST /api/integrations/{source}/test` (a signed sample sent through the sidecar's own webhook
endpoint, followed until it is a Slack message or says where it stopped).

Bearer `PULSER_ADMIN_TOKEN`, like every `/api/*` route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from alerts.integrations import ORDER, Integrations, NotTestable
from handlers.http.api_applications import ApiError, api

INTEGRATIONS: web.AppKey[Integrations] = web.AppKey("integrations", Integrations)


@api
async def list_integrations(request: web.Request) -> web.Response:
    return web.json_response({"integrations": [_jsonable(s) for s in await request.app[INTEGRATIONS].statuses()]})


@api
async def test_integration(request: web.Request) -> web.Response:
    source = request.match_info["source"]
    if source not in ORDER:
        raise ApiError(404, "unknown integration", f"expected one of: {', '.join(ORDER)}")
    if await request.read():
        raise ApiError(400, "invalid request", {"body": "this endpoint takes no body"})
    try:
        outcome = await request.app[INTEGRATIONS].tester.run(source)
    except NotTestable as exc:
        error = "integration not testable" if exc.configured else "integration not configured"
        raise ApiError(409, error, exc.reason) from None
    return web.json_response(outcome.as_json())


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def add_routes(app: web.Application, integrations: Integrations) -> None:
    app[INTEGRATIONS] = integrations
    app.router.add_get("/api/integrations", list_integrations)
    app.router.add_post("/api/integrations/{source}/test", test_integration)
