"""Imported layers: fetch each calendar URL, read its events, keep them as the last good copy.

Every 15 minutes (jobs.oncall.CalendarRefresh) and on demand (a schedule saved with a new URL,
`POST /api/schedules/{id}/refresh`). Replicas claim calendars in Postgres, so each is fetched
once per round. A failed fetch (network, HTTP status, not a calendar, too large) keeps the last
good copy and records the error, which the API and Slack show until a fetch succeeds. The URL
itself is never logged or shown: a Google "secret address" is a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from alerts.oncall.ical import CalendarError, read_events
from alerts.oncall.people import user_for_email
from alerts.oncall.validation import fetchable_url
from alerts.tls import client_context
from storage import schedules as store

log = structlog.get_logger(__name__)

REFRESH_EVERY = timedelta(minutes=15)
CLAIM_HOLD = timedelta(minutes=2)
KEEP_BEFORE = timedelta(days=7)  # the window of events kept: a week back …
KEEP_AFTER = timedelta(days=120)  # … four months ahead
MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = 10.0


@dataclass(frozen=True)
class RefreshResult:
    url_host: str
    ok: bool
    events: int = 0
    error: str | None = None


class CalendarImports:
    def __init__(self, pool, *, slack_client: Any = None, http: httpx.AsyncClient | None = None):
        self.pool = pool
        self.slack_client = slack_client
        self._http = http or httpx.AsyncClient(
            verify=client_context(), timeout=TIMEOUT, follow_redirects=True, headers={"User-Agent": "pulser-oncall", "Accept": "text/calendar"}
        )

    async def refresh_due(self, *, now: datetime | None = None) -> list[RefreshResult]:
        """The job: calendars not fetched for REFRESH_EVERY."""
        now = now or datetime.now(timezone.utc)
        claimed = await store.claim_stale_calendars(self.pool, now=now, older_than=REFRESH_EVERY, hold=CLAIM_HOLD)
        return [await self._refresh(c["schedule_id"], c["url"], now) for c in claimed]

    async def refresh_schedule(self, schedule_id: int, *, now: datetime | None = None) -> list[RefreshResult]:
        """On demand: every calendar of one schedule now (unless another replica is fetching it)."""
        now = now or datetime.now(timezone.utc)
        claimed = await store.claim_stale_calendars(
            self.pool, now=now, older_than=timedelta(0), hold=CLAIM_HOLD, schedule_id=schedule_id
        )
        return [await self._refresh(c["schedule_id"], c["url"], now) for c in claimed]

    async def close(self) -> None:
        await self._http.aclose()

    async def _refresh(self, schedule_id: int, url: str, now: datetime) -> RefreshResult:
        host = urlsplit(fetchable_url(url)).hostname or "?"
        schedule = await store.get_schedule(self.pool, schedule_id)
        if schedule is None:
            return RefreshResult(host, False, error="schedule removed")
        try:
            document = await self._download(url)
            events = read_events(document, schedule["time_zone"], now - KEEP_BEFORE, now + KEEP_AFTER)
        except (httpx.HTTPError, CalendarError, _TooLarge, _BadStatus) as exc:
            error = _describe(exc)
            await store.record_calendar_failure(self.pool, schedule_id, url, error, now=now)
            log.warning("oncall.calendar_fetch_failed", schedule_id=schedule_id, host=host, error=error)
            return RefreshResult(host, False, error=error)
        rows = []
        for event in events:
            users = list(event.user_ids)
            if not users:
                for email in event.emails:
                    user = await user_for_email(self.pool, self.slack_client, email, now=now)
                    if user:
                        users.append(user)
            for user in users or [None]:
                rows.append((event.start, event.end, user, event.label))
        await store.store_calendar_events(self.pool, schedule_id, url, rows, now=now)
        log.info("oncall.calendar_fetched", schedule_id=schedule_id, host=host, events=len(rows))
        return RefreshResult(host, True, events=len(rows))

    async def _download(self, url: str) -> bytes:
        async with self._http.stream("GET", fetchable_url(url)) as response:
            if response.status_code != 200:
                raise _BadStatus(response.status_code)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise _TooLarge()
        return bytes(body)


class _TooLarge(Exception):
    pass


class _BadStatus(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _describe(exc: Exception) -> str:
    """Words for people; never the URL (httpx puts it in its messages)."""
    if isinstance(exc, _BadStatus):
        return f"the calendar server answered HTTP {exc.status}"
    if isinstance(exc, _TooLarge):
        return f"the calendar is larger than {MAX_BYTES // (1024 * 1024)} MB"
    if isinstance(exc, CalendarError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"the calendar server did not answer within {TIMEOUT:.0f} s"
    return f"could not reach the calendar server ({type(exc).__name__})"
