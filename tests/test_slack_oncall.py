"""On-call from Slack, end to end: `/pulser oncall`, overrides by command and by modal, and the
shift-start DM, through the sandbox with the real Bolt app over Socket Mode and a real Postgres."""

from __future__ import annotations

import asyncio
import json
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from alerts.oncall import on_call
from alerts.oncall.validation import validate_schedule
from blocks.oncall import ADD_OVERRIDE, OVERRIDE_CALLBACK
from jobs.oncall import ShiftNotices
from sandbox.page import dm_channel_of
from storage import schedules as store
from tests.conftest import eventually

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN, MEMBER = "U0ADA1", "U0BOB2"
CY, DEE = "U0CY3", "U0DEE4"


@pytest.fixture(autouse=True)
def people(sandbox):
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")
    sandbox.set_user(CY, name="cy")
    sandbox.set_user(DEE, name="dee")


def rotation_start() -> date:
    """A Monday three weeks back: this week's shift is Ada's (the first member's) again."""
    today = datetime.now(BERLIN).date()
    return today - timedelta(days=today.weekday(), weeks=3)


async def make_schedule(pulser, name: str = "primary", **layer) -> int:
    spec = validate_schedule({"name": name, "time_zone": "Europe/Berlin", "layers": [{
        "members": [ADMIN, MEMBER, CY], "shift": "1 week", "handoff": "09:00", "start": rotation_start().isoformat(), **layer,
    }]})
    row = await store.create_schedule(
        pulser.pool, name=spec.name, time_zone=spec.time_zone, feed_token=f"feed-{name}-0123456789abcdef",
        layers=[layer.as_row() for layer in spec.layers], created_by=ADMIN,
    )
    return row["id"]


def text_of(message: dict) -> str:
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return "\n".join(
        [message.get("text", "")]
        + [b["text"]["text"] for b in blocks if b["type"] == "section"]
        + [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    )


def direct_messages(sandbox, user: str) -> list[dict]:
    """What the bot posted to `user` (by user ID, which Slack files under the app's DM with them)."""
    return sandbox.messages.get(user) or sandbox.messages.get(dm_channel_of(user)) or []


def this_weeks_person() -> str:
    now = datetime.now(BERLIN)
    monday_nine = datetime.combine(rotation_start() + timedelta(weeks=3), time(9), BERLIN)
    return ADMIN if now >= monday_nine else CY  # before Monday 09:00 it is still last week's (Cy's)


async def test_oncall_lists_every_schedule_with_who_now_until_when_and_next_in_the_ack(pulser, sandbox):
    await make_schedule(pulser, "primary")
    await make_schedule(pulser, "secondary", members=[DEE])
    started = clock.monotonic()
    # The answer is in the ack itself (what Slack waits 3 s for); how long it took is printed, not
    # asserted: a busy machine must not fail the test.
    ack = await sandbox.send_slash_command(text="oncall", user_id=MEMBER, timeout=30)
    print(f"/pulser oncall acked with its answer in {clock.monotonic() - started:.3f} s")
    text = text_of(ack["payload"])
    assert f"*primary* — now <@{this_weeks_person()}> until <!date^" in text
    assert "*secondary* — now <@U0DEE4> (no change in the next 60 days)" in text


async def test_oncall_of_one_schedule_shows_its_next_shifts_and_an_add_override_button(pulser, sandbox):
    await make_schedule(pulser)
    ack = await sandbox.send_slash_command(text="oncall Primary", user_id=MEMBER)
    payload = ack["payload"]
    assert "*Next shifts*" in text_of(payload)
    buttons = [e["action_id"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [ADD_OVERRIDE]


async def test_an_unknown_schedule_is_named_in_the_answer(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="oncall nightshift", user_id=MEMBER)
    assert "no on-call schedule named `nightshift`" in text_of(ack["payload"])


async def test_an_admin_adds_an_override_by_command(pulser, sandbox):
    schedule_id = await make_schedule(pulser)
    ack = await sandbox.send_slash_command(text=f"oncall override primary <@{DEE}|dee> now +4h", user_id=ADMIN)
    assert f"<@{DEE}> is on call for *primary*" in text_of(ack["payload"])
    assert await on_call(pulser.pool, schedule_id, datetime.now(timezone.utc) + timedelta(hours=1)) == [DEE]


async def test_a_member_cannot_add_an_override(pulser, sandbox):
    await make_schedule(pulser)
    ack = await sandbox.send_slash_command(text=f"oncall override primary <@{DEE}> now +4h", user_id=MEMBER)
    assert "Only Pulser admins" in text_of(ack["payload"])
    assert await pulser.pool.fetchval("SELECT count(*) FROM oncall_overrides") == 0


async def test_an_override_at_a_local_time_is_read_in_the_schedules_zone(pulser, sandbox):
    schedule_id = await make_schedule(pulser)
    day = (datetime.now(BERLIN) + timedelta(days=2)).date()
    await sandbox.send_slash_command(
        text=f"oncall override primary <@{DEE}> {day} 09:00 {day} 17:00", user_id=ADMIN
    )
    row = await pulser.pool.fetchrow("SELECT starts_at, ends_at FROM oncall_overrides WHERE schedule_id = $1", schedule_id)
    assert (row["starts_at"], row["ends_at"]) == (datetime.combine(day, time(9), BERLIN), datetime.combine(day, time(17), BERLIN))


async def test_the_add_override_modal_stores_the_override(pulser, sandbox):
    schedule_id = await make_schedule(pulser)
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(ADD_OVERRIDE, value=str(schedule_id), user_id=ADMIN, channel_id="C0OPS")
    await sandbox.wait_for_call("views.open", count=before + 1, timeout=30)
    view = sandbox.views[max(sandbox.views)]
    values = {
        "user": {"user": {"type": "users_select", "selected_user": DEE}},
        "start": {"start": {"type": "plain_text_input", "value": "now"}},
        "end": {"end": {"type": "plain_text_input", "value": "+2h"}},
    }
    ack = await sandbox.send_view_submission(OVERRIDE_CALLBACK, values, user_id=ADMIN, view_id=view["id"])
    assert not ack.get("payload"), ack  # no errors: the form closes
    assert await on_call(pulser.pool, schedule_id, datetime.now(timezone.utc) + timedelta(hours=1)) == [DEE]


async def test_a_modal_end_before_its_start_is_shown_on_the_field(pulser, sandbox):
    schedule_id = await make_schedule(pulser)
    await sandbox.send_block_action(ADD_OVERRIDE, value=str(schedule_id), user_id=ADMIN, channel_id="C0OPS")
    await sandbox.wait_for_call("views.open", timeout=30)
    view = sandbox.views[max(sandbox.views)]
    values = {
        "user": {"user": {"type": "users_select", "selected_user": DEE}},
        "start": {"start": {"type": "plain_text_input", "value": "+4h"}},
        "end": {"end": {"type": "plain_text_input", "value": "now"}},
    }
    ack = await sandbox.send_view_submission(OVERRIDE_CALLBACK, values, user_id=ADMIN, view_id=view["id"])
    assert ack["payload"] == {"response_action": "errors", "errors": {"end": "must be after the start"}}


async def test_a_shift_start_is_announced_once_by_dm_across_replicas(pulser, sandbox):
    started = (datetime.now(BERLIN) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    await make_schedule(pulser, "support", members=[DEE], shift="1 day", handoff=f"{started:%H:%M}",
                        start=started.date().isoformat())
    other_replica = ShiftNotices(pulser.pool, pulser.app.client)
    await asyncio.gather(pulser.shift_notices.run_once(), other_replica.run_once())
    dms = await eventually(lambda: direct_messages(sandbox, DEE), timeout=30)
    await asyncio.gather(pulser.shift_notices.run_once(), other_replica.run_once())
    assert len(direct_messages(sandbox, DEE)) == 1
    assert "You are on call for *support* from now" in dms[0]["text"]


async def test_a_mention_slack_sent_as_a_bare_name_is_explained(pulser, sandbox):
    await make_schedule(pulser)
    ack = await sandbox.send_slash_command(text="oncall override primary @dee now +4h", user_id=ADMIN)
    assert "Slack sent `@dee` as a name, not a person" in text_of(ack["payload"])
    assert await pulser.pool.fetchval("SELECT count(*) FROM oncall_overrides") == 0
