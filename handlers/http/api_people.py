"""The admin API for people's notification rules: how each person is reached when paged.

    GET  /api/users/{user_id}/notification-rules   contacts and rules (uses_default: none set, a Slack DM)
    PUT  /api/users/{user_id}/notification-rules   replace them; a field left out keeps what is stored
    POST /api/users/{user_id}/test-page            one test delivery per method of their rules (202)

Bearer `PULSER_ADMIN_TOKEN`, like every `/api/*` route. Validation and the audit are
`alerts.escalation.people`'s, the same Slack's `/pulser me` uses; changes are audited as actor
`api`. A test page goes the way a real page goes (`EscalationEngine.reach`), so what it proves is
what paging will do.
"""

from __future__ import annotations

from aiohttp import web

from alerts.escalation import people
from alerts.escalation.engine import EscalationEngine
from handlers.http.api_applications import POOL, ApiError, api
from handlers.http.json_body import read_json_object

ENGINE: web.AppKey[EscalationEngine] = web.AppKey("escalation_engine", EscalationEngine)
# Response fields a client may send back in a PUT (GET → edit → PUT); the server owns them.
IGNORED_ON_UPDATE = ("user_id", "uses_default", "updated_at")


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    try:
        people.check_user_id(user_id)
    except people.RulesValidationError as exc:
        raise ApiError(400, "invalid user", exc.errors) from None
    return user_id


@api
async def get_rules(request: web.Request) -> web.Response:
    return web.json_response(await people.load(request.app[POOL], _user_id(request)))


@api
async def put_rules(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    data = await read_json_object(request)
    for name in IGNORED_ON_UPDATE:
        data.pop(name, None)
    try:
        saved = await people.save_rules(request.app[POOL], user_id, data, actor="api")
    except people.RulesValidationError as exc:
        raise ApiError(400, "invalid notification rules", exc.errors) from None
    return web.json_response(saved)


@api
async def test_page(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    if await request.read():
        raise ApiError(400, "invalid request", {"body": "this endpoint takes no body"})
    results = await people.send_test_pages(request.app[POOL], request.app[ENGINE], user_id, "api")
    return web.json_response(
        {"user_id": user_id, "delivery_ids": [r["delivery_id"] for r in results], "deliveries": results},
        status=202,
    )


def add_routes(app: web.Application, engine: EscalationEngine | None = None) -> None:
    """`engine`: the process's own; without it a bare one, whose `reach` needs nothing of its loop
    (the dispatcher of a process holding the Slack connection is woken by NOTIFY)."""
    app[ENGINE] = engine or EscalationEngine(app[POOL])
    app.router.add_get("/api/users/{user_id}/notification-rules", get_rules)
    app.router.add_put("/api/users/{user_id}/notification-rules", put_rules)
    app.router.add_post("/api/users/{user_id}/test-page", test_page)
