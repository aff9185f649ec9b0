"""`GET /health` and `GET /metrics`.

/health answers 200 when every part this process runs is up and 503 otherwise, with one entry per
part, so a load balancer, Docker's HEALTHCHECK and a person reading JSON all get what they need.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

HealthReport = Callable[[], Awaitable[dict]]
MetricsRenderer = Callable[[], bytes]

HEALTH_REPORT: web.AppKey[HealthReport] = web.AppKey("health_report", HealthReport)
METRICS_RENDERER: web.AppKey[MetricsRenderer] = web.AppKey("metrics_renderer", MetricsRenderer)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_REPORT]()
    down = [name for name, part in report["components"].items() if part["status"] == "down"]
    report = {"status": "down" if down else "ok", **report}
    return web.json_response(report, status=503 if down else 200)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_RENDERER]()
    return web.Response(body=body, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
