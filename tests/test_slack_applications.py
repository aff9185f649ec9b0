"""Heartbeat applications from Slack, end to end: `/pulser register`, the modal, `/pulser apps` and
its buttons, through the sandbox with the real Bolt app over Socket Mode and a real Postgres."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from alerts.applications import validate_application
from blocks.applications import DELETE, EDIT, HEARTBEATS, PAUSE, RESUME
from handlers.slack.admin import forget_answers
from storage import applications as store
from storage.audit import list_actions
from storage.heartbeats import HeartbeatRow, insert_heartbeats
from tests.conftest import eventually, handled

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member


@pytest.fixture(autouse=True)
def people(sandbox):
    # A sandbox may reuse an earlier test's port, and so its cache key: start with no answers.
    forget_answers()
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")


def form(
    name: str | None = "nightly-backup",
    interval: str | None = "5m",
    grace: str | None = "1m",
    channel: str | None = "C0OPS",
    owner: str | None = None,
    schedule: str | None = None,
    tz: str | None = None,
) -> dict:
    """`view.state.values` as Slack sends them for our modal."""

    def text(block: str, value: str | None) -> dict:
        return {block: {block: {"type": "plain_text_input", "value": value}}}

    return {
        **text("name", name),
        **text("interval", interval),
        **text("grace", grace),
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": channel}},
        "owner": {"owner": {"type": "users_select", "selected_user": owner}},
        **text("schedule", schedule),
        **text("timezone", tz),
    }


def ack_text(ack: dict) -> str:
    payload = ack.get("payload") or {}
    parts = [payload.get("text", "")]
    for block in payload.get("blocks", []):
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts += [e["text"] for e in block["elements"]]
    return "\n".join(parts)


def message_text(message: dict) -> str:
    return ack_text({"payload": message})


def newest_view(sandbox) -> dict:
    return sandbox.views[max(sandbox.views)]


async def open_form(sandbox, user: str = ADMIN, text: str = "register") -> dict:
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_slash_command(text=text, user_id=user)
    await sandbox.wait_for_call("views.open", count=before + 1)
    return newest_view(sandbox)


async def submit(sandbox, view: dict, values: dict, user: str = ADMIN) -> dict:
    return await sandbox.send_view_submission(view["callback_id"], values, user_id=user, view_id=view["id"])


async def register_via_form(sandbox, user: str = ADMIN, **fields) -> dict:
    view = await open_form(sandbox, user)
    return await submit(sandbox, view, form(**fields), user)


async def add_app(pulser, name: str = "nightly-backup", **data) -> store.Application:
    spec = validate_application({"name": name, "expected_interval": 300, **data}, default_channel="#ops-alerts")
    return await store.create_application(pulser.pool, spec, created_by=ADMIN)


async def set_clock(pulser, app_id: int, *, state: str, last_heartbeat: datetime, due_at: datetime, deadline: datetime):
    await pulser.pool.execute(
        "UPDATE applications SET state = $2, last_heartbeat = $3, due_at = $4, next_deadline = $5 WHERE id = $1",
        app_id, state, last_heartbeat, due_at, deadline,
    )


async def click(sandbox, action_id: str, app_id: int, user: str = ADMIN) -> tuple[str, dict]:
    """Click a button of the (ephemeral) list; returns the response_url post it caused."""
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(action_id, value=str(app_id), user_id=user, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before)
    return sandbox.response_url_posts[before]


async def actions_on(pulser, app_id: int) -> list[str]:
    return [a["action"] for a in await list_actions(pulser.pool, target_type="application", target_id=app_id)]


# --- who may register ----------------------------------------------------------------------------


async def test_a_member_who_is_not_an_admin_is_refused_and_no_form_opens(pulser, sandbox):
    envelope = sandbox.slash_command_envelope(text="register", user_id=MEMBER)
    ack = await sandbox.send_envelope(envelope)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "Only Pulser admins can register apps: workspace admins/owners or users listed in PULSER_ADMINS" in ack_text(ack)
    await handled(pulser.pool, envelope)
    assert sandbox.calls_to("views.open") == []


async def test_a_workspace_admin_gets_the_registration_form(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="register", user_id=ADMIN, channel_id="C0OPS")
    assert not (ack.get("payload") or {}).get("text"), "the ack is silent: the modal is the answer"
    (call,) = await sandbox.wait_for_call("views.open")
    assert call.params["trigger_id"]
    view = newest_view(sandbox)
    assert view["title"]["text"] == "Register an app"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "name", "interval", "grace", "channel", "owner", "schedule", "timezone",
    ]
    assert json.loads(view["private_metadata"]) == {"channel_id": "C0OPS", "user_id": ADMIN}


async def test_a_user_listed_in_pulser_admins_gets_the_form(pulser, sandbox):
    pulser.services.admins = ("U0CAROL",)  # unknown to users.info: PULSER_ADMINS alone decides
    await open_form(sandbox, user="U0CAROL")
    assert sandbox.calls_to("users.info") == []


async def test_when_slack_cannot_say_who_is_admin_the_answer_is_no(pulser, sandbox):
    sandbox.fail_next("users.info", status=200, error="user_not_found")
    ack = await sandbox.send_slash_command(text="register", user_id=ADMIN)
    assert "Only Pulser admins can register apps" in ack_text(ack)
    assert sandbox.calls_to("views.open") == []


async def test_an_admin_is_looked_up_once_not_on_every_command(pulser, sandbox):
    await open_form(sandbox)
    await open_form(sandbox)
    assert len(sandbox.calls_to("users.info")) == 1


async def test_rights_are_checked_again_when_the_form_is_submitted(pulser, sandbox):
    pulser.services.admins = ("U0CAROL",)
    view = await open_form(sandbox, user="U0CAROL")
    pulser.services.admins = ()  # removed from PULSER_ADMINS while the form was open
    ack = await submit(sandbox, view, form(), user="U0CAROL")
    assert ack["payload"]["response_action"] == "errors"
    assert "Only Pulser admins" in ack["payload"]["errors"]["name"]
    assert await store.list_applications(pulser.pool) == []


# --- the registration form -----------------------------------------------------------------------


async def test_bad_values_are_shown_inline_and_nothing_is_stored(pulser, sandbox):
    view = await open_form(sandbox)
    ack = await submit(sandbox, view, form(name="", interval="5", grace="abc", schedule="every day"))
    payload = ack["payload"]
    assert payload["response_action"] == "errors"
    assert set(payload["errors"]) == {"name", "interval", "grace", "schedule"}
    assert "required" in payload["errors"]["name"]
    assert "5m" in payload["errors"]["grace"], "the error says which forms work"
    assert await store.list_applications(pulser.pool) == []
    assert sandbox.calls_to("chat.postEphemeral") == []


async def test_an_interval_is_required_unless_a_schedule_is_given(pulser, sandbox):
    view = await open_form(sandbox)
    ack = await submit(sandbox, view, form(interval=None))
    assert "unless a cron schedule" in ack["payload"]["errors"]["interval"]


async def test_a_good_submission_stores_the_app_and_hands_out_its_curl_lines(pulser, sandbox):
    ack = await register_via_form(sandbox, name="nightly-backup", interval="5m", grace="2m", owner=MEMBER)
    assert not ack.get("payload"), "a bare ack closes the modal"
    (app,) = await store.list_applications(pulser.pool)
    assert (app.name, app.expected_interval, app.grace_period, app.channel, app.owner, app.created_by) == (
        "nightly-backup", 300, 120, "C0OPS", MEMBER, ADMIN,
    )
    (call,) = await sandbox.wait_for_call("chat.postEphemeral")
    assert call.params["channel"] == "C0OPS" and call.params["user"] == ADMIN
    text = message_text(call.params)
    ping = f"{pulser.services.public_base_url}/heartbeat/{app.uuid}"
    assert str(app.uuid) in text and "nightly-backup" in text
    for line in (f"curl -fsS -m 10 --retry 5 -X POST {ping}", f"{ping}/start", f"{ping}/fail", f"my-job.sh; curl -fsS -m 10 --retry 5 -X POST {ping}/$?"):
        assert line in text


async def test_a_registration_is_audited(pulser, sandbox):
    await register_via_form(sandbox)
    (app,) = await store.list_applications(pulser.pool)
    (entry,) = await list_actions(pulser.pool, target_type="application", target_id=app.id)
    assert entry["actor"] == ADMIN and entry["action"] == "application.register"
    assert entry["details"]["uuid"] == str(app.uuid)


async def test_a_cron_schedule_may_replace_the_interval(pulser, sandbox):
    await register_via_form(sandbox, interval=None, schedule="0 2 * * *", tz="Europe/Berlin")
    (app,) = await store.list_applications(pulser.pool)
    assert (app.expected_interval, app.schedule, app.timezone) == (None, "0 2 * * *", "Europe/Berlin")


async def test_no_channel_chosen_means_the_default_channel(pulser, sandbox):
    await register_via_form(sandbox, channel=None)
    (app,) = await store.list_applications(pulser.pool)
    assert app.channel == pulser.services.default_channel == "#ops-alerts"


async def test_a_duplicate_name_is_shown_inline_on_the_name(pulser, sandbox):
    await add_app(pulser, "Nightly-Backup")
    view = await open_form(sandbox)
    ack = await submit(sandbox, view, form(name="nightly-backup"))
    assert ack["payload"]["response_action"] == "errors"
    assert "already exists" in ack["payload"]["errors"]["name"]
    assert len(await store.list_applications(pulser.pool)) == 1


async def test_where_the_bot_cannot_post_an_ephemeral_the_uuid_comes_by_dm(pulser, sandbox):
    sandbox.fail_next("chat.postEphemeral", status=200, error="channel_not_found")
    await register_via_form(sandbox)
    (app,) = await store.list_applications(pulser.pool)
    (dm,) = await sandbox.wait_for_call("chat.postMessage")
    assert dm.params["channel"] == ADMIN and str(app.uuid) in message_text(dm.params)


# --- /pulser apps --------------------------------------------------------------------------------


async def test_anyone_can_list_apps_with_status_expectation_and_last_heartbeat(pulser, sandbox):
    fresh = await add_app(pulser, "fresh-job")
    running = await add_app(pulser, "running-job", grace_period=120)
    now = datetime.now(timezone.utc)
    seen = now - timedelta(minutes=12)
    await set_clock(pulser, running.id, state="up", last_heartbeat=seen, due_at=now + timedelta(minutes=5),
                    deadline=now + timedelta(minutes=7))
    ack = await sandbox.send_slash_command(text="apps", user_id=MEMBER)
    assert ack["payload"]["response_type"] == "ephemeral"
    blocks = {b.get("block_id"): b for b in ack["payload"]["blocks"]}
    new_line = blocks[f"app_{fresh.id}"]["text"]["text"]
    up_line = blocks[f"app_{running.id}"]["text"]["text"]
    assert "⚪ *new*" in new_line and "fresh-job" in new_line and "Last heartbeat never" in new_line
    assert "🟢 *up*" in up_line and "every 5 min" in up_line and "grace 2 min" in up_line
    assert "Last heartbeat 12 min ago" in up_line and "#ops-alerts" in up_line


async def test_a_down_app_is_listed_first(pulser, sandbox):
    await add_app(pulser, "a-fine-job")
    broken = await add_app(pulser, "z-broken-job")
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    await pulser.pool.execute("UPDATE applications SET state = 'down', last_heartbeat = $2 WHERE id = $1", broken.id, past)
    ack = await sandbox.send_slash_command(text="apps", user_id=MEMBER)
    first_app = next(b for b in ack["payload"]["blocks"] if b.get("block_id", "").startswith("app_"))
    assert first_app["block_id"] == f"app_{broken.id}" and "🔴 *down*" in first_app["text"]["text"]


async def test_with_no_apps_the_list_says_how_to_register(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="apps", user_id=MEMBER)
    assert "/pulser register" in ack_text(ack)


# --- the list's buttons --------------------------------------------------------------------------


async def test_pause_by_an_admin_pauses_the_app_and_replaces_the_list_in_place(pulser, sandbox):
    app = await add_app(pulser)
    _, body = await click(sandbox, PAUSE, app.id)
    assert (await store.get_application(pulser.pool, app.id)).is_active is False
    assert body["replace_original"] is True
    text = message_text(body)
    assert "Paused *nightly-backup*" in text and "⏸️ *paused*" in text
    buttons = next(b for b in body["blocks"] if b.get("block_id") == f"app_actions_{app.id}")["elements"]
    assert buttons[0]["action_id"] == RESUME
    entry = (await list_actions(pulser.pool, target_type="application", target_id=app.id))[0]
    assert (entry["actor"], entry["action"]) == (ADMIN, "application.pause")


async def test_pause_by_a_member_is_refused_and_changes_nothing(pulser, sandbox):
    app = await add_app(pulser)
    _, body = await click(sandbox, PAUSE, app.id, user=MEMBER)
    assert body["replace_original"] is False, "the list stays; the refusal comes as its own message"
    assert "Only Pulser admins can pause or resume apps" in body["text"]
    assert (await store.get_application(pulser.pool, app.id)).is_active is True
    assert await actions_on(pulser, app.id) == ["application.pause_refused"]


async def test_resume_makes_a_paused_app_new_again(pulser, sandbox):
    app = await add_app(pulser)
    await store.set_active(pulser.pool, app.id, False)
    _, body = await click(sandbox, RESUME, app.id)
    resumed = await store.get_application(pulser.pool, app.id)
    assert resumed.is_active is True and resumed.state == "new"
    assert "Resumed" in message_text(body)
    assert "application.resume" in await actions_on(pulser, app.id)


async def test_delete_removes_the_app_and_its_uuid_stops_working(pulser, sandbox):
    app = await add_app(pulser)
    keep = await add_app(pulser, "other-job")
    _, body = await click(sandbox, DELETE, app.id)
    assert await store.get_application(pulser.pool, app.id) is None
    assert await store.get_application_by_uuid(pulser.pool, app.uuid) is None
    assert body["replace_original"] is True
    ids = {b.get("block_id") for b in body["blocks"]}
    assert f"app_{app.id}" not in ids and f"app_{keep.id}" in ids
    assert "Deleted *nightly-backup*" in message_text(body)
    assert "application.delete" in await actions_on(pulser, app.id)


async def test_delete_by_a_member_is_refused(pulser, sandbox):
    app = await add_app(pulser)
    _, body = await click(sandbox, DELETE, app.id, user=MEMBER)
    assert "Only Pulser admins can delete apps" in body["text"]
    assert await store.get_application(pulser.pool, app.id) is not None


async def test_a_click_on_an_app_deleted_meanwhile_shows_the_current_list(pulser, sandbox):
    app = await add_app(pulser)
    await store.delete_application(pulser.pool, app.id)
    _, body = await click(sandbox, PAUSE, app.id)
    assert body["replace_original"] is True and "no longer exists" in message_text(body)


# --- edit ----------------------------------------------------------------------------------------


async def open_edit_form(sandbox, app_id: int, user: str = ADMIN) -> dict:
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(EDIT, value=str(app_id), user_id=user, channel_id="C0OPS")
    await sandbox.wait_for_call("views.open", count=before + 1)
    return newest_view(sandbox)


def initial(view: dict, block_id: str):
    element = next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]
    return element.get("initial_value") or element.get("initial_conversation") or element.get("initial_user")


async def test_edit_opens_the_form_filled_with_the_app(pulser, sandbox):
    app = await add_app(pulser, grace_period=90, channel="C0OPS", owner=MEMBER)
    view = await open_edit_form(sandbox, app.id)
    assert view["title"]["text"] == "Edit app"
    assert [initial(view, b) for b in ("name", "interval", "grace", "channel", "owner")] == [
        "nightly-backup", "5m", "90s", "C0OPS", MEMBER,
    ]
    assert json.loads(view["private_metadata"])["app_id"] == app.id


async def test_an_edit_is_stored_audited_and_the_list_refreshed(pulser, sandbox):
    app = await add_app(pulser)
    view = await open_edit_form(sandbox, app.id)
    posts_before = len(sandbox.response_url_posts)
    ack = await submit(sandbox, view, form(name="nightly-backup", interval="10m", grace="1m", channel=None))
    assert not ack.get("payload")
    edited = await store.get_application(pulser.pool, app.id)
    assert edited.expected_interval == 600 and edited.channel == "#ops-alerts", "an empty channel keeps the current one"
    await eventually(lambda: len(sandbox.response_url_posts) > posts_before)
    _, body = sandbox.response_url_posts[-1]
    assert body["replace_original"] is True and "every 10 min" in message_text(body)
    entry = (await list_actions(pulser.pool, target_type="application", target_id=app.id))[0]
    assert entry["action"] == "application.update" and entry["details"]["changes"] == {"expected_interval": {"from": 300, "to": 600}}


async def test_an_edit_with_bad_values_is_shown_inline_and_changes_nothing(pulser, sandbox):
    app = await add_app(pulser)
    view = await open_edit_form(sandbox, app.id)
    ack = await submit(sandbox, view, form(interval="1s", tz="Mars/Olympus"))
    assert set(ack["payload"]["errors"]) == {"interval", "timezone"}
    assert (await store.get_application(pulser.pool, app.id)).expected_interval == 300


async def test_editing_the_interval_of_an_up_app_moves_its_deadline_from_the_last_heartbeat(pulser, sandbox):
    app = await add_app(pulser)
    seen = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=2)
    await set_clock(pulser, app.id, state="up", last_heartbeat=seen, due_at=seen + timedelta(minutes=5),
                    deadline=seen + timedelta(minutes=6))
    view = await open_edit_form(sandbox, app.id)
    await submit(sandbox, view, form(interval="1h", grace="10m"))
    edited = await store.get_application(pulser.pool, app.id)
    assert edited.state == "up"
    assert edited.due_at == seen + timedelta(hours=1)
    assert edited.next_deadline == seen + timedelta(hours=1, minutes=10)


async def test_editing_a_down_app_keeps_its_clock(pulser, sandbox):
    app = await add_app(pulser)
    seen = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    await set_clock(pulser, app.id, state="down", last_heartbeat=seen, due_at=seen + timedelta(minutes=5),
                    deadline=seen + timedelta(minutes=6))
    view = await open_edit_form(sandbox, app.id)
    await submit(sandbox, view, form(interval="10m"))
    edited = await store.get_application(pulser.pool, app.id)
    assert (edited.state, edited.due_at, edited.next_deadline) == ("down", seen + timedelta(minutes=5), seen + timedelta(minutes=6))


async def test_edit_by_a_member_is_refused_and_opens_nothing(pulser, sandbox):
    app = await add_app(pulser)
    _, body = await click(sandbox, EDIT, app.id, user=MEMBER)
    assert "Only Pulser admins can edit apps" in body["text"]
    assert sandbox.calls_to("views.open") == []


async def test_renaming_to_a_taken_name_is_shown_inline(pulser, sandbox):
    app = await add_app(pulser)
    await add_app(pulser, "other-job")
    view = await open_edit_form(sandbox, app.id)
    ack = await submit(sandbox, view, form(name="OTHER-job"))
    assert "already exists" in ack["payload"]["errors"]["name"]
    assert (await store.get_application(pulser.pool, app.id)).name == "nightly-backup"


# --- heartbeats ----------------------------------------------------------------------------------


async def test_heartbeats_shows_the_newest_ten_with_kind_exit_code_and_duration(pulser, sandbox):
    app = await add_app(pulser)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    def row(i: int, kind: str = "success", exit_code=None, duration_ms=None) -> HeartbeatRow:
        return HeartbeatRow(app.id, kind, exit_code, start + timedelta(minutes=i), None, duration_ms, "POST",
                            "127.0.0.1", "curl/8", None, None)

    rows = [row(i) for i in range(11)] + [row(11, "fail", exit_code=3, duration_ms=4200)]
    async with pulser.pool.acquire() as conn, conn.transaction():
        await insert_heartbeats(conn, rows)
    await sandbox.send_block_action(HEARTBEATS, value=str(app.id), user_id=MEMBER, channel_id="C0OPS")
    await sandbox.wait_for_call("views.open")
    view = newest_view(sandbox)
    lines = [b["text"]["text"] for b in view["blocks"] if b.get("block_id", "").startswith("heartbeat_")]
    assert len(lines) == 10
    assert "❌ *fail*" in lines[0] and "exit code 3" in lines[0] and "ran 4.2 s" in lines[0]
    assert "2024-05-01 12:11:00 UTC" in lines[0] and "2024-05-01 12:02:00 UTC" in lines[-1]
