"""On-call schedules: rotation arithmetic across DST, layers, overrides, swaps (pure and on a real
Postgres), and iCal out and back in (a real HTTP server serving the calendars)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from alerts.oncall import ScheduleNotFound, load_schedule, on_call, shifts
from alerts.oncall.changes import Conflict, add_override, add_swap
from alerts.oncall.compose import Override, compose
from alerts.oncall.ical import export
from alerts.oncall.imports import CalendarImports
from alerts.oncall.rotation import Rotation, rotation_shifts
from alerts.oncall.validation import OverrideSpec, SwapSpec, validate_schedule
from storage import schedules as store

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
ADA, BOB, CY, DEE = "U0ADA1", "U0BOB2", "U0CY3", "U0DEE4"
WEEKLY = {"members": [ADA, BOB, CY], "shift": "1 week", "handoff": "09:00"}


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def weekly(start: date, members=(ADA, BOB, CY)) -> Rotation:
    return Rotation(tuple(members), 1, "weeks", time(9), start)


def last_monday(zone: ZoneInfo = BERLIN) -> date:
    today = datetime.now(zone).date()
    return today - timedelta(days=today.weekday())


# --- pure: rotation arithmetic and composition ---------------------------------------------------


def test_a_weekly_rotation_hands_off_at_local_nine_across_the_spring_dst_change():
    # Berlin moves from UTC+1 to UTC+2 on Sunday 29 March 2026.
    found = rotation_shifts(weekly(date(2026, 3, 16)), "Europe/Berlin", berlin(2026, 3, 16, 9), berlin(2026, 4, 6, 9))
    assert [(s.user, s.start.astimezone(BERLIN).strftime("%a %H:%M")) for s in found] == [
        (ADA, "Mon 09:00"), (BOB, "Mon 09:00"), (CY, "Mon 09:00"),
    ]
    assert [(s.end - s.start) / timedelta(hours=1) for s in found] == [168, 167, 168]


def test_the_autumn_dst_change_makes_that_weeks_shift_169_hours():
    # … and back to UTC+1 on Sunday 25 October 2026.
    found = rotation_shifts(weekly(date(2026, 10, 19)), "Europe/Berlin", berlin(2026, 10, 19, 9), berlin(2026, 10, 26, 9))
    assert [(s.user, s.end.astimezone(BERLIN).strftime("%a %H:%M"), (s.end - s.start) / timedelta(hours=1)) for s in found] == [
        (ADA, "Mon 09:00", 169),
    ]


def test_members_take_turns_in_order_and_start_over():
    found = rotation_shifts(weekly(date(2026, 1, 5)), "Europe/Berlin", berlin(2026, 1, 5, 9), berlin(2026, 2, 9, 9))
    assert [s.user for s in found] == [ADA, BOB, CY, ADA, BOB]


def test_a_higher_layer_wins_where_it_has_someone_and_the_lower_one_elsewhere():
    spec = validate_schedule({"name": "x", "time_zone": "Europe/Berlin", "layers": [
        {**WEEKLY, "start": "2026-03-02"},
        {"members": [DEE], "shift": "1 day", "handoff": "09:00", "start": "2026-03-02", "days": "weekdays", "hours": "09:00-17:00"},
    ]})
    start, end = berlin(2026, 3, 6, 0), berlin(2026, 3, 9, 0)  # Friday and the weekend
    layers = [rotation_shifts(layer.rotation, "Europe/Berlin", start, end) for layer in spec.layers]
    final = compose(layers, [], start, end)
    assert [(s.user, s.start.astimezone(BERLIN).strftime("%a %H:%M"), s.layer) for s in final] == [
        (ADA, "Fri 00:00", 1), (DEE, "Fri 09:00", 2), (ADA, "Fri 17:00", 1),
    ]


def test_an_override_replaces_whoever_is_on_call_in_its_window():
    start, end = berlin(2026, 3, 2, 9), berlin(2026, 3, 9, 9)
    layers = [rotation_shifts(weekly(date(2026, 3, 2)), "Europe/Berlin", start, end)]
    final = compose(layers, [Override(DEE, berlin(2026, 3, 4, 12), berlin(2026, 3, 4, 18))], start, end)
    assert [(s.user, s.layer) for s in final] == [(ADA, 1), (DEE, "override"), (ADA, 1)]


def test_before_the_first_hand_off_nobody_is_on_call():
    found = rotation_shifts(weekly(date(2026, 3, 2)), "Europe/Berlin", berlin(2026, 2, 1), berlin(2026, 3, 2, 8, 59))
    assert found == []


@pytest.mark.parametrize("field, value", [
    ("time_zone", "Mars/Olympus"), ("layers", [{**WEEKLY, "start": "2026-03-02", "members": ["bob"]}]),
    ("layers", [{**WEEKLY, "start": "2026-03-02", "shift": "fortnightly"}]), ("layers", [{"ical_url": "ftp://x/y.ics"}]),
])
def test_invalid_schedules_name_the_field(field, value):
    from alerts.oncall.validation import ValidationError

    with pytest.raises(ValidationError) as caught:
        validate_schedule({"name": "primary", "time_zone": "Europe/Berlin", field: value})
    assert all(key.startswith(field) for key in caught.value.errors)


# --- Postgres: schedules, overrides, swaps --------------------------------------------------------


async def make_schedule(pool, name: str = "primary", layers=None, zone: str = "Europe/Berlin") -> int:
    spec = validate_schedule({"name": name, "time_zone": zone, "layers": layers if layers is not None else [
        {**WEEKLY, "start": last_monday().isoformat()},
    ]})
    row = await store.create_schedule(
        pool, name=spec.name, time_zone=spec.time_zone, feed_token=f"token-{name}-0123456789abcdef",
        layers=[layer.as_row() for layer in spec.layers], created_by="test",
    )
    return row["id"]


def this_week(days: float = 0, hours: float = 0) -> datetime:
    """A time in this week's shift (Ada's), Monday 09:00 Berlin + the offset."""
    return datetime.combine(last_monday(), time(9), BERLIN) + timedelta(days=days, hours=hours)


async def test_on_call_finds_a_schedule_by_name_or_id(pool):
    schedule_id = await make_schedule(pool)
    assert await on_call(pool, "PRIMARY", this_week(1)) == [ADA]
    assert await on_call(pool, schedule_id, this_week(8)) == [BOB]


async def test_an_unknown_schedule_is_schedule_not_found(pool):
    with pytest.raises(ScheduleNotFound):
        await on_call(pool, "nope", datetime.now(UTC))


async def test_a_stored_override_puts_its_user_on_call_in_its_window_only(pool):
    schedule = await load_schedule(pool, await make_schedule(pool))
    await add_override(pool, schedule, OverrideSpec(DEE, this_week(2), this_week(2, 4)), by="test")
    assert (await on_call(pool, schedule.id, this_week(2, 1)), await on_call(pool, schedule.id, this_week(2, 5))) == ([DEE], [ADA])


async def test_an_overlapping_override_is_refused_and_not_stored(pool):
    schedule = await load_schedule(pool, await make_schedule(pool))
    await add_override(pool, schedule, OverrideSpec(DEE, this_week(2), this_week(2, 4)), by="test")
    with pytest.raises(Conflict) as caught:
        await add_override(pool, schedule, OverrideSpec(BOB, this_week(2, 3), this_week(2, 6)), by="test")
    assert "overlaps override" in caught.value.errors["start"]
    assert await pool.fetchval("SELECT count(*) FROM oncall_overrides") == 1


async def test_a_swap_gives_one_shift_to_someone_else(pool):
    schedule = await load_schedule(pool, await make_schedule(pool))
    await add_swap(pool, schedule, SwapSpec(this_week(7), BOB, DEE), by="test")  # Bob's shift, next week
    assert [await on_call(pool, schedule.id, this_week(d)) for d in (1, 8, 15)] == [[ADA], [DEE], [CY]]


async def test_a_swap_of_a_shift_someone_does_not_have_is_refused(pool):
    schedule = await load_schedule(pool, await make_schedule(pool))
    with pytest.raises(Conflict) as caught:
        await add_swap(pool, schedule, SwapSpec(this_week(7), ADA, DEE), by="test")  # next week is Bob's
    assert "is not on call" in caught.value.errors["shift_start"]
    assert await pool.fetchval("SELECT count(*) FROM oncall_swaps") == 0


# --- iCal out and in ------------------------------------------------------------------------------


class CalendarServer:
    """A real HTTP server that serves what a test puts at a path."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[int, bytes]] = {}
        self.url = ""

    async def serve(self, request: web.Request) -> web.Response:
        status, body = self.documents.get(request.path, (404, b"not found"))
        return web.Response(status=status, body=body, content_type="text/calendar")


@pytest.fixture
async def calendars() -> AsyncIterator[CalendarServer]:
    server = CalendarServer()
    app = web.Application()
    app.router.add_get("/{path:.*}", server.serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield server
    await runner.cleanup()


@pytest.fixture
async def imports(pool) -> AsyncIterator[CalendarImports]:
    found = CalendarImports(pool)
    yield found
    await found.close()


async def test_an_exported_calendar_imported_as_a_layer_gives_the_same_answers(pool, calendars, imports):
    original = await load_schedule(pool, await make_schedule(pool))
    await add_override(pool, original, OverrideSpec(DEE, this_week(2), this_week(2, 4)), by="test")
    now = datetime.now(UTC)
    feed = export(schedule_id=original.id, name=original.name, zone=original.time_zone,
                  shifts=await shifts(pool, original, now - timedelta(days=7), now + timedelta(days=60)),
                  names={ADA: "Ada Lovelace"}, now=now)
    calendars.documents["/primary.ics"] = (200, feed)
    copy_id = await make_schedule(pool, "copy", [{"ical_url": f"{calendars.url}/primary.ics"}], zone="America/New_York")
    [result] = await imports.refresh_schedule(copy_id)
    assert result.ok, result.error
    boundaries = {t for x in await shifts(pool, original, this_week(), this_week(21)) for t in (x.start, x.end)}
    times = sorted(t + timedelta(minutes=m) for t in boundaries for m in (-1, 0, 1))  # either side of every hand-off
    assert [await on_call(pool, copy_id, t) for t in times] == [await on_call(pool, original.id, t) for t in times]


GOOGLE = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Google Inc//Google Calendar 70.9054//EN
X-WR-CALNAME:Support rota
X-WR-TIMEZONE:America/New_York
BEGIN:VEVENT
DTSTART:%(day)sT090000
DTEND:%(day)sT170000
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Support
ATTENDEE;CN=Ada;ROLE=REQ-PARTICIPANT:mailto:Ada@Example.com
UID:abc@google.com
END:VEVENT
END:VCALENDAR
"""


async def test_a_google_calendar_with_x_wr_timezone_is_read_in_that_zone_and_attendees_become_users(pool, calendars, sandbox):
    sandbox.set_user(ADA, name="ada", email="ada@example.com")
    tomorrow = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date()
    calendars.documents["/google.ics"] = (200, GOOGLE % {b"day": tomorrow.strftime("%Y%m%d").encode()})
    schedule_id = await make_schedule(pool, "support", [{"ical_url": f"{calendars.url}/google.ics"}])
    client = AsyncWebClient(token="xoxb-test", base_url=sandbox.api_url)
    imports = CalendarImports(pool, slack_client=client)
    try:
        [result] = await imports.refresh_schedule(schedule_id)
    finally:
        await imports.close()
    assert result.ok, result.error
    nine_new_york = datetime.combine(tomorrow, time(9), ZoneInfo("America/New_York"))
    assert await on_call(pool, schedule_id, nine_new_york + timedelta(minutes=1)) == [ADA]
    assert await on_call(pool, schedule_id, nine_new_york - timedelta(minutes=1)) == []  # 09:00 New York, not Berlin or UTC


async def test_a_failed_fetch_keeps_the_last_good_copy_and_says_why(pool, calendars, imports):
    calendars.documents["/rota.ics"] = (200, b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
                                        b"UID:1\r\nSUMMARY:On call: " + ADA.encode() + b"\r\nDTSTART:20200101T000000Z\r\n"
                                        b"DTEND:20400101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    schedule_id = await make_schedule(pool, "rota", [{"ical_url": f"{calendars.url}/rota.ics"}])
    await imports.refresh_schedule(schedule_id)
    calendars.documents["/rota.ics"] = (503, b"busy")
    [result] = await imports.refresh_schedule(schedule_id)
    [calendar] = await store.calendars_of(pool, schedule_id)
    assert (result.ok, calendar["last_error"]) == (False, "the calendar server answered HTTP 503")
    assert await on_call(pool, schedule_id, datetime.now(UTC)) == [ADA]
