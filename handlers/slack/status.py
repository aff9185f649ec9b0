"""`/pulser status` (what Pulser watches and how it stands) and `/pulser health` (how Pulser
itself is doing), both ephemeral, for anyone.

Slack wants the ack within 3 s. Both answers are a handful of aggregate queries (no per-app
loops, no Heroku API call: Heroku's state is what the poller last stored), so they normally ride
on the ack itself; if they are not ready within ANSWER_BUDGET (a slow or unreachable database),
the ack goes out empty and the answer follows through response_url.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.status import LIST_SHOWN, health_message, status_message
from handlers.slack.services import SlackServices
from storage import dashboard, heroku as heroku_store, silences as silence_store

log = structlog.get_logger(__name__)

ANSWER_BUDGET = 2.0  # seconds; past this the answer goes through response_url instead of the ack


async def status_command(*, ack: AsyncAck, respond, services: SlackServices, command: dict | None = None, **_: Any) -> None:
    await answer_soon(ack, respond, lambda: status_answer(services), what="status")


async def health_command(*, ack: AsyncAck, respond, services: SlackServices, command: dict | None = None, **_: Any) -> None:
    await answer_soon(ack, respond, lambda: health_answer(services), what="health")


def register(app: AsyncApp, services: SlackServices) -> None:
    """Both answers are subcommands of /pulser (handlers.slack.commands); nothing else to listen to."""


# --- the answers ----------------------------------------------------------------------------------


async def status_answer(services: SlackServices) -> dict:
    now = datetime.now(timezone.utc)
    pool = services.pool
    apps, incidents, quiet, silences, heroku = await asyncio.gather(
        dashboard.heartbeat_overview(pool, now=now, down_limit=LIST_SHOWN),
        dashboard.open_incidents(pool, limit=LIST_SHOWN),
        dashboard.quiet_figures(pool, now=now),
        silence_store.list_silences(pool, now=now, limit=LIST_SHOWN),
        heroku_state(services),
    )
    return status_message(apps=apps, incidents=incidents, heroku=heroku, quiet=quiet, silences=silences, now=now)


async def heroku_state(services: SlackServices) -> dict | None:
    """Monitoring settings and each shown app's last stored state (never the Heroku API: that
    may take seconds per app, and the poller already asked)."""
    monitor = services.heroku
    if monitor is None:
        return None
    settings = await monitor.settings()
    active, why = await monitor.activity()
    shown = list(settings.apps[:LIST_SHOWN])
    states = await heroku_store.app_states(services.pool, shown)
    errors = monitor.status.errors_by_app
    apps = []
    for name in shown:
        state = states.get(name)
        apps.append({
            "app": name,
            "dynos": state["dynos"] if state else None,
            "polled_at": state.get("last_poll_at") if state else None,
            "error": errors.get(name) or (state.get("last_poll_error") if state else None),
        })
    return {
        "active": active, "why": why, "names": list(settings.apps), "apps": apps,
        "interval_minutes": settings.interval_minutes, "channel": settings.channel,
    }


async def health_answer(services: SlackServices) -> dict:
    if services.health_report is None:
        return {"response_type": "ephemeral", "text": "This Pulser process has no health report to show."}
    return health_message(await services.health_report(), now=datetime.now(timezone.utc))


# --- answering within Slack's 3 s -----------------------------------------------------------------


async def answer_soon(ack: AsyncAck, respond, build: Callable[[], Awaitable[dict]], *, what: str) -> None:
    """Ack with the answer when it is ready within ANSWER_BUDGET; otherwise ack empty now and send
    the answer through response_url when it is ready. Failures become one line, details in the log."""
    task = asyncio.ensure_future(_safely(build, what))
    done, _ = await asyncio.wait({task}, timeout=ANSWER_BUDGET)
    if done:
        await ack(**task.result())
        return
    await ack()
    log.info("slack.answer_late", what=what, budget=ANSWER_BUDGET)
    await respond(**await task)


async def _safely(build: Callable[[], Awaitable[dict]], what: str) -> dict:
    try:
        return await build()
    except Exception as exc:
        log.exception("slack.answer_failed", what=what)
        return {
            "response_type": "ephemeral",
            "text": f":warning: Pulser could not put its {what} together just now ({type(exc).__name__}); "
            + ("its log says why." if what == "health" else "`/pulser health` shows whether its database is reachable."),
        }
