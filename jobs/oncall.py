"""On-call jobs: refresh imported calendars, and tell people when their shift starts.

`CalendarRefresh` runs in every process (claims in Postgres make each calendar fetched once per
round). `ShiftNotices` runs where the Slack connection is: each minute it looks for shifts that
began in the last few minutes and DMs their person once per shift across replicas — a row in
`oncall_shift_notices` is claimed by INSERT … ON CONFLICT DO NOTHING, and only the replica whose
insert took sends. A shift that merely continues the same person's time on call (a higher layer
handing back to them) is not announced, nor is one that began before the look-back (a restart,
a schedule created mid-shift).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from alerts.oncall import load_schedule, shifts
from alerts.oncall.compose import Shift
from alerts.oncall.imports import CalendarImports
from storage import schedules as store
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

REFRESH_TICK_SECONDS = 60  # each tick fetches the calendars last fetched 15+ minutes ago
NOTICE_TICK_SECONDS = 30
LOOK_BACK = timedelta(minutes=10)
UNTIL_HORIZON = timedelta(days=14)
KEEP_NOTICES = timedelta(days=30)


class CalendarRefresh:
    def __init__(self, imports: CalendarImports):
        self.imports = imports

    async def run_once(self, *, now: datetime | None = None) -> int:
        try:
            done = await self.imports.refresh_due(now=now)
        except DATABASE_ERRORS as exc:
            log.warning("oncall.refresh_database_unavailable", error=f"{type(exc).__name__}: {exc}")
            return 0
        return len(done)


class ShiftNotices:
    def __init__(self, pool, client: Any):
        self.pool = pool
        self.client = client  # the Bolt app's AsyncWebClient

    async def run_once(self, *, now: datetime | None = None) -> int:
        """DMs sent by this call."""
        now = now or datetime.now(timezone.utc)
        sent = 0
        try:
            for row in await store.list_schedules(self.pool):
                sent += await self._schedule(row["id"], now)
            await store.forget_notices_before(self.pool, now - KEEP_NOTICES)
        except DATABASE_ERRORS as exc:
            log.warning("oncall.notices_database_unavailable", error=f"{type(exc).__name__}: {exc}")
        return sent

    async def _schedule(self, schedule_id: int, now: datetime) -> int:
        schedule = await load_schedule(self.pool, schedule_id)
        horizon_end = now + UNTIL_HORIZON
        final = await shifts(self.pool, schedule, now - LOOK_BACK - timedelta(seconds=1), horizon_end)
        sent = 0
        for shift in final:
            if not now - LOOK_BACK <= shift.start <= now or _continues(final, shift):
                continue
            if not await store.claim_notice(self.pool, schedule.id, shift.user, shift.start):
                continue
            until = _until(final, shift, horizon_end)
            try:
                await self.client.chat_postMessage(channel=shift.user, **shift_started(schedule.name, shift, until))
                sent += 1
                log.info("oncall.shift_notice_sent", schedule_id=schedule.id, user=shift.user)
            except Exception as exc:  # noqa: BLE001 — Slack refused or is away: this shift goes unannounced
                error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error") or type(exc).__name__
                log.warning("oncall.shift_notice_failed", schedule_id=schedule.id, user=shift.user, error=str(error))
        return sent


def _continues(final: list[Shift], shift: Shift) -> bool:
    return any(s.user == shift.user and s.start < shift.start <= s.end and s is not shift for s in final)


def _until(final: list[Shift], shift: Shift, horizon_end: datetime) -> datetime | None:
    """The end of this person's unbroken time on call (None: not within the horizon)."""
    end = shift.end
    for s in sorted((s for s in final if s.user == shift.user), key=lambda s: s.start):
        if s.start <= end < s.end:
            end = s.end
    return None if end >= horizon_end else end


def shift_started(schedule_name: str, shift: Shift, until: datetime | None) -> dict:
    """The DM (Slack mrkdwn; dates in the reader's own zone)."""
    name = schedule_name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if until is None:
        ends = "for at least two weeks"
    else:
        ts = int(until.timestamp())
        ends = f"until <!date^{ts}^{{date_short_pretty}} at {{time}}|{until:%Y-%m-%d %H:%M} UTC>"
    text = f":pager: You are on call for *{name}* from now {ends}. `/pulser oncall {name}` shows the schedule."
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
