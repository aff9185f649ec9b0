"""The Heroku poller: each cycle, look at every monitored app within the account's rate budget.

Heroku allows 4,500 requests per hour per account (a token bucket; `RateLimit-Remaining` on every
answer). A cycle may spend `BUDGET_SHARE` of the hour's tokens pro rata to its interval:
int(4500 × 0.9 × interval / 60) — 67 requests for a 1-minute interval. Dynos are the urgent part
(crashes), so every app's dyno list is fetched each cycle; the remaining requests go round-robin
over (app, releases | config | add-ons). With 50 apps at 1 minute that is 50 + 17 = 67 requests a
minute, 4,020 an hour, and each app's releases, config and add-ons are looked at every ~9 minutes
— webhooks (`POST /webhooks/heroku`) bring releases and dyno changes at once anyway. An app seen
for the first time gets all four parts (its silent baseline) before anything else. When
`RateLimit-Remaining` falls below two cycles' worth, a cycle spends half.

The tick runs every 15 s in every process; `claim_cycle` lets one process per interval poll, and a
settings change from Slack clears the claim so the next tick polls with the new settings.
"""

from __future__ import annotations

from datetime import datetime, timezone

import structlog

from alerts.heroku_monitor import PARTS, HerokuMonitor
from alerts.sources.heroku_api import HerokuError
from storage import heroku
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

TICK_SECONDS = 15
HOURLY_BUDGET = 4500
BUDGET_SHARE = 0.9
SLOW_PARTS = ("releases", "config", "addons")


def cycle_budget(interval_minutes: int, remaining: int | None = None) -> int:
    budget = int(HOURLY_BUDGET * BUDGET_SHARE * interval_minutes / 60)
    if remaining is not None and remaining < 2 * budget:
        budget //= 2
    return max(1, budget)


def plan_cycle(apps: list[str], known: set[str], budget: int, cursor: int) -> tuple[list[tuple[str, tuple[str, ...]]], int]:
    """Which parts of which apps to fetch this cycle, and the round-robin cursor for the next one."""
    plan: dict[str, list[str]] = {}
    spent = 0
    for app in apps:  # new apps first: their baseline needs every part
        if app not in known and spent + len(PARTS) <= budget:
            plan[app] = list(PARTS)
            spent += len(PARTS)
    for app in apps:
        if app not in plan and spent < budget:
            plan[app] = ["dynos"]
            spent += 1
    pairs = [(app, part) for app in apps if app in known for part in SLOW_PARTS]
    taken = 0
    while pairs and spent < budget and taken < len(pairs):
        app, part = pairs[(cursor + taken) % len(pairs)]
        taken += 1
        if part not in plan.setdefault(app, []):
            plan[app].append(part)
            spent += 1
    next_cursor = (cursor + taken) % len(pairs) if pairs else 0
    return [(app, tuple(parts)) for app, parts in plan.items() if parts], next_cursor


class HerokuPoller:
    def __init__(self, monitor: HerokuMonitor):
        self.monitor = monitor
        self._cursor = 0

    async def tick(self, *, now: datetime | None = None) -> int | None:
        """Poll if this cycle is due and ours; returns how many requests it made (None: not due)."""
        now = now or datetime.now(timezone.utc)
        if not self.monitor.configured:
            return None
        try:
            await self.monitor.settings()  # the first tick stores the environment's values
            claimed = await heroku.claim_cycle(self.monitor.pool, now=now)
        except DATABASE_ERRORS as exc:
            log.warning("heroku.poll_database_unavailable", error=f"{type(exc).__name__}: {exc}")
            return None
        if claimed is None or not claimed["apps"]:
            return None
        return await self.poll(list(claimed["apps"]), claimed["interval_minutes"], now=now)

    async def poll(self, apps: list[str], interval_minutes: int, *, now: datetime) -> int:
        status = self.monitor.status
        known = set(await heroku.app_states(self.monitor.pool, apps))
        budget = cycle_budget(interval_minutes, self.monitor.client.budget.remaining)
        plan, self._cursor = plan_cycle(apps, known, budget, self._cursor)
        before = self.monitor.client.requests_made
        status.last_cycle_at = now
        failures = 0
        for app, parts in plan:
            try:
                obs = await self.monitor.poll_app(app, parts, now=now)
                await self.monitor.observe(obs, polled=True)
            except HerokuError as exc:
                failures += 1
                status.errors_by_app[app] = str(exc)
                status.last_error, status.last_error_at = f"{app}: {exc}", now
                log.warning("heroku.poll_failed", app=app, error=str(exc))
                try:
                    await heroku.record_poll_error(self.monitor.pool, app, str(exc), now)
                except DATABASE_ERRORS:
                    pass
                if exc.status in (401, 403) or exc.id == "not_configured":
                    break  # the key is wrong for every app: one line, not fifty
            except DATABASE_ERRORS as exc:
                failures += 1
                status.last_error, status.last_error_at = f"database: {type(exc).__name__}", now
                log.warning("heroku.poll_database_unavailable", app=app, error=f"{type(exc).__name__}: {exc}")
                break
            else:
                status.errors_by_app.pop(app, None)
        status.requests_last_cycle = self.monitor.client.requests_made - before
        if failures == 0:
            status.last_success_at = now
        log.info("heroku.polled", apps=len(plan), requests=status.requests_last_cycle, budget=budget, failures=failures)
        return status.requests_last_cycle


