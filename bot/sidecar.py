"""The aiohttp sidecar: heartbeats, webhooks, the API, /health and /metrics."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

import asyncpg
from aiohttp import web

from alerts.channels import ChannelResolver
from alerts.heartbeat_writer import HeartbeatWriter
from bot.metrics import Metrics
from handlers.http import (
    api_applications, api_delivery, api_deploy, api_escalation, api_incidents, api_integrations, api_rules, api_schedules,
    api_people, api_silences,
    auth, events,
    health, heartbeats, openapi, webhooks,
)
from handlers.http.errors import MAX_BODY_BYTES, body_size_limit, error_middleware
from handlers.http.health import HealthReport
from handlers.http.rate_limit import RateLimiter


ResponseObserver = Callable[[web.Request, web.StreamResponse], Awaitable[None]]
# Called with every answer the sidecar gives (after the error middleware made it JSON). Empty in
# production, where no middleware is added for it; the test suite adds one that checks each answer
# against the OpenAPI document (tests/openapi_conformance.py).
RESPONSE_OBSERVERS: list[ResponseObserver] = []


def build_sidecar(
    *,
    metrics: Metrics,
    health_report: HealthReport,
    max_body_bytes: int,
    pool: asyncpg.Pool | None = None,
    writer: HeartbeatWriter | None = None,
    admin_token: str | None = None,
    default_channel: str = "#ops-alerts",
    public_base_url: Callable[[], str] = lambda: "http://127.0.0.1:8080",
    webhook_secrets: Mapping[str, str | None] | None = None,
    worker_name: str = "sidecar",
    accept_envelope: Callable[[Any], None] | None = None,
    delivery_report: api_delivery.DeliveryReport | None = None,
    status_report: api_delivery.DeliveryReport | None = None,
    channels: ChannelResolver | None = None,
    rate_limiter: RateLimiter | None = None,
    incident_actions: Any = None,
    integrations: Any = None,
    slack_client: Any = None,
    calendar_imports: Any = None,
) -> web.Application:
    """The sidecar app; heartbeat routes need `writer`, the admin API needs `pool`, webhooks need
    `pool` and `accept_envelope` (hands a freshly recorded delivery to the ledger worker).
    `rate_limiter` replaces the heartbeat limiter (20, then 2/s per UUID): tests pass one with a
    clock they move. `incident_actions` (alerts.incident_actions.IncidentActions) serves the
    incidents API, `integrations` (alerts.integrations.Integrations) the integrations API.
    `slack_client` lets the schedules API check user IDs; `calendar_imports`
    (alerts.oncall.imports.CalendarImports) fetches imported layers on demand."""
    def count(route: str, status: int) -> None:
        metrics.http_requests.labels(route, str(status)).inc()

    # client_max_size makes aiohttp raise 413 while reading an oversized body; the middleware turns
    # it into JSON.
    observing = [_observe_responses] if RESPONSE_OBSERVERS else []
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[*observing, error_middleware(count), body_size_limit(max_body_bytes)],
    )
    app[MAX_BODY_BYTES] = max_body_bytes
    app[health.HEALTH_REPORT] = health_report
    app[health.METRICS_RENDERER] = metrics.render
    health.add_routes(app)
    openapi.add_routes(app)  # the document of every route below, served without a token
    if writer is not None:
        app[heartbeats.WRITER] = writer
        # `is None`, not `or`: an empty limiter has len() 0 and is falsy.
        app[heartbeats.RATE_LIMITER] = RateLimiter(capacity=20, rate=2.0) if rate_limiter is None else rate_limiter
        app[heartbeats.COUNT_HEARTBEAT] = _heartbeat_counter(metrics)
        heartbeats.add_routes(app)
    if pool is not None:
        app[api_applications.POOL] = pool
        app[auth.ADMIN_TOKEN] = admin_token
        app[api_applications.DEFAULT_CHANNEL] = default_channel
        app[api_applications.CHANNELS] = channels or ChannelResolver()
        app[api_applications.PUBLIC_BASE_URL] = public_base_url
        api_applications.add_routes(app)
        api_rules.add_routes(app)
        api_escalation.add_routes(app)
        api_silences.add_routes(app)
        api_deploy.add_routes(app)
        api_schedules.add_routes(app, slack_client=slack_client, imports=calendar_imports)
        api_people.add_routes(app)
        if incident_actions is not None:
            api_incidents.add_routes(app, incident_actions)
        if integrations is not None:
            api_integrations.add_routes(app, integrations)
            app[webhooks.REFUSALS] = integrations.refusals
        if delivery_report is not None:
            app[api_delivery.DELIVERY_REPORT] = delivery_report
            if status_report is not None:
                app[api_delivery.STATUS_REPORT] = status_report
            api_delivery.add_routes(app)
    if pool is not None and accept_envelope is not None:
        app[webhooks.POOL] = pool
        app[webhooks.SECRETS] = dict(webhook_secrets or {})
        app[webhooks.WORKER] = worker_name
        app[webhooks.ACCEPTED] = accept_envelope
        app[webhooks.COUNT] = lambda source, outcome: metrics.webhooks.labels(source, outcome).inc()
        webhooks.add_routes(app)
        events.add_routes(app)  # POST /events: the same keys (POOL, SECRETS, WORKER, ACCEPTED, COUNT) as webhooks
    return app


@web.middleware
async def _observe_responses(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    for observer in RESPONSE_OBSERVERS:
        await observer(request, response)
    return response


def _heartbeat_counter(metrics: Metrics) -> Callable[[str, str], None]:
    children: dict[tuple[str, str], object] = {}

    def count(kind: str, outcome: str) -> None:
        # Label children are cached: the heartbeat path is the sidecar's hottest.
        child = children.get((kind, outcome))
        if child is None:
            child = children[(kind, outcome)] = metrics.heartbeats.labels(kind, outcome)
        child.inc()

    return count


async def start_sidecar(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Bind and serve; returns the runner (for cleanup) and the bound port (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    # reuse_port: several `pulser sidecar` processes can share one port; the kernel spreads connections.
    site = web.TCPSite(runner, host, port, reuse_port=True)
    await site.start()
    server = site._server  # noqa: SLF001 — aiohttp exposes no public accessor for the bound port
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, bound
