"""The App Home dashboard's figures, and the refresher that keeps open Home tabs current.

The dashboard is the same for everyone (team-wide figures), so one view is built per refresh and
published to each user who opened Home recently. Slack has no "Home is open" signal; the last
`remember` users who opened it are the best guess, and views.publish to the others is harmless.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import asyncpg
import structlog
from slack_sdk.errors import SlackApiError

from alerts import oncall
from alerts.sources import SOURCES
from blocks.home import home_view
from blocks.oncall import ScheduleStanding
from storage import dashboard, schedules

log = structlog.get_logger(__name__)

WINDOW = timedelta(hours=24)
LIST_SHOWN = 10
NOISY_SHOWN = 5
ON_CALL_HORIZON = timedelta(days=14)
# Every webhook source, plus POST /events (platform events go through the same ledger).
WEBHOOK_SOURCES: tuple[str, ...] = (*sorted(SOURCES), "events")


async def dashboard_figures(pool: asyncpg.Pool, now: datetime) -> dict[str, Any]:
    """Everything the dashboard shows, as of `now`: four aggregate queries and who is on call, run
    side by side."""
    since = now - WINDOW
    alerts, incidents, apps, delivery, on_call = await asyncio.gather(
        dashboard.alert_figures(pool, since=since, noisy_limit=NOISY_SHOWN),
        dashboard.open_incidents(pool, limit=LIST_SHOWN),
        dashboard.heartbeat_overview(pool, now=now, down_limit=LIST_SHOWN),
        dashboard.delivery_figures(pool, sources=WEBHOOK_SOURCES, since=since),
        on_call_now(pool, now),
    )
    return {
        "now": now,
        "since": since,
        "alerts": {**alerts, **alert_ratios(alerts)},
        "incidents": incidents,
        "apps": apps,
        "delivery": delivery,
        "on_call": on_call,
    }


async def on_call_now(pool: asyncpg.Pool, now: datetime) -> list[ScheduleStanding]:
    """Who is on call for each schedule (the first few by name), until when, and who is next,
    looking a fortnight ahead: the Home tab is redrawn often, `/pulser oncall` looks further."""
    standings = []
    for row in (await schedules.list_schedules(pool))[:LIST_SHOWN]:
        schedule = await oncall.load_schedule(pool, row["id"])
        now_on, until, then = await oncall.next_change(pool, schedule, now, horizon=ON_CALL_HORIZON)
        standings.append(ScheduleStanding(
            id=schedule.id, name=schedule.name, time_zone=schedule.time_zone, now=now_on, until=until, next=then,
        ))
    return standings


def alert_ratios(alerts: dict[str, Any]) -> dict[str, float | None]:
    """grouped_share = 1 − incidents/alerts (the share of alerts that joined an existing incident);
    ack_rate = acknowledged/opened. None when there is nothing to divide by."""
    received, opened = int(alerts.get("alerts") or 0), int(alerts.get("incidents_opened") or 0)
    grouped = None if not received else min(1.0, max(0.0, 1 - opened / received))
    ack_rate = None if not opened else int(alerts.get("acked") or 0) / opened
    return {"grouped_share": grouped, "ack_rate": ack_rate}


async def dashboard_view(pool: asyncpg.Pool, now: datetime | None = None, *, integrations: Any = None) -> dict:
    """The Home view as of `now` (default: this moment); with `integrations`
    (alerts.integrations.Integrations) it has the integrations section and its Send test buttons."""
    now = now or datetime.now(timezone.utc)
    figures = await dashboard_figures(pool, now)
    if integrations is not None:
        figures["integrations"] = await integrations.statuses(now=now)
    return home_view(figures, now=now)


BuildView = Callable[[asyncpg.Pool], Awaitable[dict]]


class HomeRefresher:
    """Republishes the dashboard for recent Home visitors when woken, at most once per `debounce`
    seconds: a burst of incident changes becomes one views.publish per user, not one per change.

    The first wake after a quiet spell publishes at once; wakes during the next `debounce`
    seconds are folded into one publish at its end."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Any,
        build_view: BuildView = dashboard_view,
        *,
        debounce: float = 30.0,
        remember: int = 50,
    ):
        self.pool = pool
        self.client = client
        self.build_view = build_view
        self.debounce = debounce
        self.remember = remember
        self._users: OrderedDict[str, None] = OrderedDict()
        self._woken = asyncio.Event()
        self._last_round: float | None = None
        self._task: asyncio.Task | None = None
        self.published_total = 0

    @property
    def users(self) -> list[str]:
        """Who gets republished, least recent first."""
        return list(self._users)

    def opened(self, user_id: str) -> None:
        """`user_id` opened Home: keep them among the last `remember` visitors."""
        if not user_id:
            return
        self._users.pop(user_id, None)
        self._users[user_id] = None
        while len(self._users) > self.remember:
            self._users.popitem(last=False)

    def wake(self) -> None:
        """Something the dashboard shows changed (callable from any callback on the loop)."""
        self._woken.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="home-refresher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def refresh(self) -> int:
        """Build the view once and publish it to every remembered user; returns how many took it."""
        users = self.users
        if not users:
            return 0
        view = await self.build_view(self.pool)
        published = 0
        for user in users:
            try:
                await self.client.views_publish(user_id=user, view=view)
                published += 1
            except SlackApiError as exc:  # e.g. user_not_found after a deactivation: stop trying them
                error = exc.response.get("error")
                log.info("home.publish_failed", user=user, error=error)
                if error in ("user_not_found", "user_disabled", "not_found"):
                    self._users.pop(user, None)
        self.published_total += published
        return published

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._woken.wait()
            if self._last_round is not None:
                wait = self._last_round + self.debounce - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # wakes meanwhile fold into this round
            self._woken.clear()
            self._last_round = loop.time()
            try:
                published = await self.refresh()
            except Exception:  # a database or network hiccup: the next change tries again
                log.exception("home.refresh_failed")
                continue
            if published:
                log.info("home.refreshed", users=published)
