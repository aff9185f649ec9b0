"""`GET /health` and `GET /metrics`.

/health answers 200 when every part this process runs is up and 503 otherwise, with one entry per
part, so a load balancer, Docker's HEALTHCHECK and a person reading JSON all get what they need.

Overall status: `down` when a part is down; `degraded` when a part works but not as a deployment
should (`misconfigured`: the Slack sandbox next to a real database); `ok` otherwise. Only `ok`
answers 200. A part that is merely `degraded` itself (one channel refuses us, a webhook source is
silent) leaves the process healthy: replacing it would not help.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import structlog
from aiohttp import web

from handlers.http.errors import RETRY_AFTER_SECONDS

log = structlog.get_logger(__name__)

HealthReport = Callable[[], Awaitable[dict]]
MetricsRenderer = Callable[[], bytes]

HEALTH_REPORT: web.AppKey[HealthReport] = web.AppKey("health_report", HealthReport)
METRICS_RENDERER: web.AppKey[MetricsRenderer] = web.AppKey("metrics_renderer", MetricsRenderer)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def overall_status(components: dict[str, dict]) -> str:
    """`down`, `degraded` or `ok` for a report's components (see the module docstring)."""
    statuses = {part.get("status") for part in components.values()}
    if "down" in statuses:
        return "down"
    if "misconfigured" in statuses:
        return "degraded"
    return "ok"


class PartReports:
    """Builds each part of the report on its own, so one that fails shows as that part `down`
    (with the error's type) instead of taking others with it. Each failure is logged once, when
    it starts or its error changes, not on every poll of /health; its recovery once too."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    async def build(self, name: str, report: Callable[[], Awaitable[dict]]) -> dict:
        try:
            part = await report()
        except Exception as exc:  # any bug or outage in one sub-report must not hide the others
            error = f"{type(exc).__name__}: {exc}"
            if self._failing.get(name) != error:
                self._failing[name] = error
                log.error("health.part_failed", part=name, error=error)
            return {"status": "down", "error": type(exc).__name__}
        if self._failing.pop(name, None) is not None:
            log.info("health.part_recovered", part=name)
        return part


async def health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_REPORT]()
    status = overall_status(report["components"])
    if status == "ok":
        return web.json_response({"status": status, **report})
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == "down" else None
    return web.json_response({"status": status, **_database_error(report), **report}, status=503, headers=headers)


def _database_error(report: dict) -> dict:
    """The error body every other route answers while the database is down, at the top of the
    report too, so a probe that reads only `error` learns the same as one that reads components."""
    if report["components"].get("database", {}).get("status") != "down":
        return {}
    return {"error": "database unavailable", "detail": "the database did not answer a trivial query"}


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_RENDERER]()
    return web.Response(body=body, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
