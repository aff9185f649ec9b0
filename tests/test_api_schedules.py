"""The admin API for on-call schedules (`/api/schedules…`) and the iCal feed of a running sidecar."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import audit
from tests.admin_api import AUTH, TOKEN, http, sidecar  # noqa: F401 — fixtures, used by name
from tests.conftest import make_settings

BERLIN = ZoneInfo("Europe/Berlin")
ADA, BOB, CY, DEE = "U0ADA1", "U0BOB2", "U0CY3", "U0DEE4"


def last_monday() -> date:
    today = datetime.now(BERLIN).date()
    return today - timedelta(days=today.weekday())


def this_week(days: float = 0, hours: float = 0) -> datetime:
    return datetime.combine(last_monday(), time(9), BERLIN) + timedelta(days=days, hours=hours)


def body(**fields) -> dict:
    return {
        "name": "primary", "time_zone": "Europe/Berlin",
        "layers": [{"members": [ADA, BOB, CY], "shift": "1 week", "handoff": "09:00", "start": last_monday().isoformat()}],
        **fields,
    }


async def create(http: httpx.AsyncClient, **fields) -> dict:
    response = await http.post("/api/schedules", json=body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


async def on_call(http: httpx.AsyncClient, schedule: dict, at: datetime) -> list[str]:
    response = await http.get(f"/api/schedules/{schedule['id']}/oncall", params={"at": at.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()["on_call"]


async def test_create_returns_the_schedule_with_its_feed_url(http):
    response = await http.post("/api/schedules", json=body())
    assert response.status_code == 201
    created = response.json()
    assert response.headers["Location"] == f"/api/schedules/{created['id']}"
    assert created["layers"][0] | {"days": None} == {
        "name": "layer 1", "kind": "rotation", "members": [ADA, BOB, CY], "shift": "1 week", "handoff": "09:00",
        "start": last_monday().isoformat(), "days": None, "hours": None,
    }
    assert created["feed_url"].endswith(".ics") and "/schedules/" in created["feed_url"]


@pytest.mark.parametrize("field, fields", [
    ("time_zone", {"time_zone": "Europe/Atlantis"}),
    ("name", {"name": ""}),
    ("layers[0].members", {"layers": [{"members": ["bob"], "shift": "1 week", "start": "2026-12-07"}]}),
    ("layers[0].shift", {"layers": [{"members": [ADA], "shift": "1 fortnight", "start": "2026-12-07"}]}),
    ("layers[0].start", {"layers": [{"members": [ADA], "shift": "1 week", "start": "next monday"}]}),
    ("colour", {"colour": "red"}),
])
async def test_invalid_input_is_a_400_naming_the_field_and_creates_nothing(sidecar, http, field, fields):
    response = await http.post("/api/schedules", json=body(**fields))
    assert response.status_code == 400
    assert (response.json()["error"], set(response.json()["detail"])) == ("invalid schedule", {field})
    assert await sidecar.pool.fetchval("SELECT count(*) FROM oncall_schedules") == 0


async def test_a_second_schedule_of_the_same_name_is_a_409(http):
    await create(http)
    response = await http.post("/api/schedules", json=body(name="PRIMARY"))
    assert response.status_code == 409 and set(response.json()["detail"]) == {"name"}


async def test_oncall_says_who_now_until_when_and_who_next(http):
    schedule = await create(http)
    response = await http.get(f"/api/schedules/{schedule['id']}/oncall", params={"at": this_week(1).isoformat()})
    answer = response.json()
    assert (answer["on_call"], answer["next"]) == ([ADA], [BOB])
    assert datetime.fromisoformat(answer["until"]) == this_week(7)


async def test_shifts_lists_the_final_shifts_of_a_window(http):
    schedule = await create(http)
    response = await http.get(f"/api/schedules/{schedule['id']}/shifts",
                              params={"start": this_week().isoformat(), "end": this_week(21).isoformat()})
    assert [(s["user"], s["layer"]) for s in response.json()["shifts"]] == [(ADA, 1), (BOB, 1), (CY, 1)]


async def test_a_shifts_window_over_93_days_is_a_400(http):
    schedule = await create(http)
    response = await http.get(f"/api/schedules/{schedule['id']}/shifts", params={"start": "now", "end": "+94d"})
    assert response.status_code == 400 and set(response.json()["detail"]) == {"end"}


async def test_an_override_puts_its_user_on_call(http):
    schedule = await create(http)
    start = datetime.now(BERLIN) + timedelta(hours=1)
    response = await http.post(f"/api/schedules/{schedule['id']}/overrides",
                               json={"user": DEE, "start": start.strftime("%Y-%m-%d %H:%M"), "end": "+4h"})
    assert response.status_code == 201, response.text
    assert await on_call(http, schedule, start + timedelta(hours=1)) == [DEE]


async def test_an_overlapping_override_is_a_409_that_names_the_other(http):
    schedule = await create(http)
    url = f"/api/schedules/{schedule['id']}/overrides"
    first = (await http.post(url, json={"user": DEE, "start": "now", "end": "+4h"})).json()
    response = await http.post(url, json={"user": BOB, "start": "+2h", "end": "+6h"})
    assert response.status_code == 409
    assert f"overlaps override {first['id']}" in response.json()["detail"]["start"]


async def test_a_deleted_override_no_longer_counts(http):
    schedule = await create(http)
    override = (await http.post(f"/api/schedules/{schedule['id']}/overrides",
                                json={"user": DEE, "start": "now", "end": "+4h"})).json()
    response = await http.delete(f"/api/schedules/{schedule['id']}/overrides/{override['id']}")
    assert response.status_code == 204
    assert await on_call(http, schedule, datetime.now(BERLIN) + timedelta(hours=1)) != [DEE]


async def test_a_swap_gives_the_shift_to_someone_else(http):
    schedule = await create(http)
    response = await http.post(f"/api/schedules/{schedule['id']}/swaps",
                               json={"shift_start": this_week(7).isoformat(), "from_user": BOB, "to_user": DEE})
    assert response.status_code == 201, response.text
    assert await on_call(http, schedule, this_week(8)) == [DEE]


async def test_a_swap_of_someone_not_on_call_then_is_a_409(http):
    schedule = await create(http)
    response = await http.post(f"/api/schedules/{schedule['id']}/swaps",
                               json={"shift_start": this_week(7).isoformat(), "from_user": ADA, "to_user": DEE})
    assert response.status_code == 409 and set(response.json()["detail"]) == {"shift_start"}


async def test_a_partial_update_keeps_the_layers(http):
    schedule = await create(http)
    response = await http.put(f"/api/schedules/{schedule['id']}", json={"name": "platform"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["layers"]) == ("platform", schedule["layers"])


async def test_the_feed_is_served_without_a_token_with_zoned_shifts(sidecar, http):
    schedule = await create(http)
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(schedule["feed_url"])
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert str(events[0]["SUMMARY"]) == f"On call: {ADA}"
    assert events[0]["DTSTART"].params["TZID"] == "Europe/Berlin"


async def test_rotating_the_feed_token_retires_the_old_feed_url(http):
    schedule = await create(http)
    rotated = (await http.put(f"/api/schedules/{schedule['id']}", json={"rotate_feed_token": True})).json()
    async with httpx.AsyncClient() as anonymous:
        old, new = await anonymous.get(schedule["feed_url"]), await anonymous.get(rotated["feed_url"])
    assert (old.status_code, new.status_code) == (404, 200)


async def test_an_unreadable_imported_calendar_is_saved_with_its_error_shown(http):
    response = await http.post("/api/schedules", json=body(layers=[{"ical_url": "http://127.0.0.1:9/rota.ics"}]))
    assert response.status_code == 201
    status = response.json()["layers"][0]["status"]
    assert status["last_error"].startswith("could not reach the calendar server") and "127.0.0.1" not in status["last_error"]


async def test_delete_removes_the_schedule_and_is_audited(sidecar, http):
    schedule = await create(http)
    assert (await http.delete(f"/api/schedules/{schedule['id']}")).status_code == 204
    assert (await http.get(f"/api/schedules/{schedule['id']}")).status_code == 404
    actions = await audit.list_actions(sidecar.pool, target_type="schedule", target_id=schedule["id"])
    assert [a["action"] for a in actions] == ["schedule.delete", "schedule.create"]


# --- with Slack: user IDs are checked --------------------------------------------------------------


@pytest.fixture
async def slack_sidecar(database_url: str, sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A `pulser sidecar` that has Slack tokens (the sandbox), so it can ask users.info."""
    settings = make_settings(
        DATABASE_URL=database_url, PULSER_ADMIN_TOKEN=TOKEN, SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app", SLACK_API_URL=sandbox.api_url,
    )
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", headers=AUTH, timeout=10) as client:
            yield client
    finally:
        await runtime.stop()


async def test_a_member_slack_does_not_know_is_a_400(sandbox, slack_sidecar):
    for user in (ADA, BOB):
        sandbox.set_user(user)
    response = await slack_sidecar.post("/api/schedules", json=body())
    assert response.status_code == 400
    assert response.json()["detail"] == {"layers[0].members": f"{CY} is not a user of this Slack workspace"}


async def test_a_schedule_a_get_returned_can_be_put_back_unchanged(http):
    schedule = await create(http, layers=[body()["layers"][0], {"ical_url": "http://127.0.0.1:9/rota.ics"}])
    response = await http.put(f"/api/schedules/{schedule['id']}", json=schedule)
    assert response.status_code == 200, response.text
    assert response.json()["layers"][0] == schedule["layers"][0]
