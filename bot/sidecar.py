"""The aiohttp sidecar: heartbeats, webhooks, the API, /health and /metrics."""

from __future__ import annotations

from aiohttp import web

from bot.metrics import Metrics
from handlers.http import health
from handlers.http.errors import MAX_BODY_BYTES, body_size_limit, error_middleware
from handlers.http.health import HealthReport


def build_sidecar(*, metrics: Metrics, health_report: HealthReport, max_body_bytes: int) -> web.Application:
    def count(route: str, status: int) -> None:
        metrics.http_requests.labels(route, str(status)).inc()

    # client_max_size makes aiohttp raise 413 while reading an oversized body; the middleware turns
    # it into JSON.
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[error_middleware(count), body_size_limit(max_body_bytes)],
    )
    app[MAX_BODY_BYTES] = max_body_bytes
    app[health.HEALTH_REPORT] = health_report
    app[health.METRICS_RENDERER] = metrics.render
    health.add_routes(app)
    return app


async def start_sidecar(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Bind and serve; returns the runner (for cleanup) and the bound port (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001 — aiohttp exposes no public accessor for the bound port
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, bound
