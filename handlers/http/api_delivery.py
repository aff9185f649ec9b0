"""`GET /api/delivery` and `GET /api/status`.

Delivery: is anything reaching us, and is anything reaching Slack?

The last webhook per source (and which have gone silent), the last successful Slack delivery,
throttled channels, token and channel problems, the outbox backlog and the latest failures —
the page to open when "Pulser has been quiet" might mean "Pulser is deaf or mute".
"""

from __future__ import annotations

import json
from typing import Awaitable, Callable

from aiohttp import web

from handlers.http.api_applications import api

DeliveryReport = Callable[[], Awaitable[dict]]
DELIVERY_REPORT: web.AppKey[DeliveryReport] = web.AppKey("delivery_report", DeliveryReport)
STATUS_REPORT: web.AppKey[DeliveryReport] = web.AppKey("status_report", DeliveryReport)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/delivery", delivery)
    if STATUS_REPORT in app:
        app.router.add_get("/api/status", status)


@api
async def status(request: web.Request) -> web.Response:
    """What Pulser watches (heartbeat apps, incidents, Heroku apps, webhook sources) and how it stands."""
    return web.json_response(await request.app[STATUS_REPORT](), dumps=_dumps)


@api
async def delivery(request: web.Request) -> web.Response:
    report = await request.app[DELIVERY_REPORT]()
    return web.json_response(report, dumps=_dumps)


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)  # datetimes as ISO text
