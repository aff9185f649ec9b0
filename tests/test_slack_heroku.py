"""Heroku in Slack, end to end: `/heroku-status` (all apps, one app, help, config) and the Rollback
button, through the sandbox with the real Bolt app over Socket Mode, a real Postgres and a fake
Heroku API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from blocks.heroku import app_section, dynos_text
from alerts.incident_view import rollback_offer
from blocks.incidents import ROLLBACK
from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import audit, heroku, incidents
from tests.conftest import eventually, handled, make_settings
from tests.fake_heroku import FakeHeroku, addon, dyno

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member
ALERTS = "C0ALERTS"  # #ops-alerts, where deploy messages go
COMMAND_CHANNEL = "C0OPS"
SECRET_VALUE = "postgres://shop:v3ry-s3cret-config-value@db.internal/shop"


@pytest.fixture
async def fake():
    server = FakeHeroku()
    await server.start()
    server.add_app("shop-api")
    server.add_release("shop-api", 41, description="Deploy 1111111")
    server.add_release("shop-api", 42, description="Deploy abc123", user_email="dev@example.com", current=True)
    server.set_dynos(
        "shop-api",
        [dyno("web.1", "web", release_version=42), dyno("web.2", "web", release_version=42),
         dyno("worker.1", "worker", "crashed", release_version=42)],
    )
    server.set_config("shop-api", {"DATABASE_URL": SECRET_VALUE, "DEBUG": "false"})
    server.set_addons("shop-api", [addon("shop-db", "heroku-postgresql", "essential-0")])
    server.add_app("shop-worker")
    server.add_release("shop-worker", 7, description="Deploy 7777777", current=True)
    server.set_dynos("shop-worker", [dyno("worker.1", "worker", release_version=7)])
    server.add_app("side-project")  # Heroku knows it; Pulser does not monitor it
    server.add_release("side-project", 3, description="Deploy side333", current=True)
    yield server
    await server.stop()


def pulser_env(database_url: str, sandbox, **extra: str) -> dict[str, str]:
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.add_channel(COMMAND_CHANNEL, "ops")
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")
    return dict(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        MONITORED_APP_NAME="shop-api,shop-worker",
        SLACK_CHANNEL="#ops-alerts",
        CHECK_INTERVAL_MINUTES="5",
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        **extra,
    )


@pytest.fixture
def settings(database_url, sandbox, fake):
    return make_settings(**pulser_env(database_url, sandbox, HEROKU_API_KEY=fake.api_key, HEROKU_API_URL=fake.base_url))


@contextlib.asynccontextmanager
async def running_pulser(settings, sandbox):
    """Another `pulser run` on the same sandbox (a restart, or one configured differently)."""
    opened = sandbox.connections_opened
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected(timeout=30)
        await sandbox.wait_for_connection(timeout=5, newer_than=opened)
        yield runtime
    finally:
        await runtime.stop()


async def first_poll_done(pulser) -> None:
    """The poller's first cycle (the silent baseline) has finished; the next is minutes away."""
    await eventually(lambda: pulser.heroku.status.last_success_at or pulser.heroku.status.last_error, timeout=30)


# --- reading what Slack shows ---------------------------------------------------------------------


def readable(body: dict) -> str:
    """The text a person reads: fallback text plus every section, context and field text."""
    parts = [body.get("text") or ""]
    blocks = list(body.get("blocks") or [])
    for attachment in body.get("attachments") or []:
        blocks += attachment.get("blocks") or []
    for block in blocks:
        if block.get("text"):
            parts.append(block["text"]["text"])
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict) and e.get("type") == "mrkdwn"]
        parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)


async def status(sandbox, text: str = "", user: str = ADMIN, timeout: float = 15) -> str:
    """Run `/heroku-status <text>` and return the answer that follows the ack (via response_url)."""
    before = len(sandbox.response_url_posts)
    ack = await sandbox.send_slash_command(command="/heroku-status", text=text, user_id=user, channel_id=COMMAND_CHANNEL)
    assert not (ack.get("payload") or {}).get("text"), "status is acked empty and answered after"
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=timeout)
    _, body = sandbox.response_url_posts[before]
    assert body.get("response_type") == "ephemeral"
    return readable(body)


async def command_ack(sandbox, text: str, user: str = ADMIN) -> str:
    ack = await sandbox.send_slash_command(command="/heroku-status", text=text, user_id=user, channel_id=COMMAND_CHANNEL)
    return readable(ack.get("payload") or {})


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- /heroku-status -------------------------------------------------------------------------------


async def test_status_shows_every_monitored_app_under_the_monitoring_line(pulser, sandbox):
    await first_poll_done(pulser)
    answer = await status(sandbox)
    assert f"Monitoring ACTIVE* — 2 apps every 5 min → <#{ALERTS}>" in answer  # SLACK_CHANNEL, resolved at start
    assert "*shop-api*" in answer and "*shop-worker*" in answer and "side-project" not in answer
    assert "web: 2 up · worker: 1 crashed" in answer
    assert "v42 by dev@example.com just now: Deploy abc123 (succeeded)" in answer
    assert "shop-db (heroku-postgresql:essential-0) provisioned" in answer
    assert "Last poll just now" in answer


async def test_status_of_an_app_heroku_knows_but_pulser_does_not_monitor(pulser, sandbox):
    answer = await status(sandbox, "side-project")
    assert "*side-project*" in answer and "not monitored by Pulser" in answer
    assert "v3 by dev@example.com just now: Deploy side333 (succeeded)" in answer
    assert "shop-api" not in answer


async def test_status_of_an_app_heroku_does_not_know_is_one_line(pulser, sandbox):
    answer = await status(sandbox, "no-such-app")
    assert lines(answer) == [":warning: Heroku doesn't know an app called no-such-app."]


async def test_a_heroku_500_shows_as_one_line_in_that_apps_section_only(pulser, sandbox, fake):
    await first_poll_done(pulser)
    fake.fail_next("/apps/shop-api/", 500, times=4)  # the first try and the client's three retries
    answer = await status(sandbox)
    assert "Heroku 500 internal_server_error: Internal server error." in answer
    assert "Deploy 7777777" in answer, "the other app is still shown"
    assert "Traceback" not in answer


async def test_without_an_api_key_monitoring_is_inactive_and_says_which_variable_is_missing(database_url, sandbox):
    settings = make_settings(**pulser_env(database_url, sandbox))
    async with running_pulser(settings, sandbox):
        answer = await status(sandbox)
        assert "Monitoring INACTIVE*: HEROKU_API_KEY is not set" in answer
        one_app = await status(sandbox, "shop-api")
        assert len(lines(one_app)) == 1 and "HEROKU_API_KEY" in one_app


async def test_help_explains_each_form_of_the_command(pulser, sandbox):
    answer = await command_ack(sandbox, "help")
    for usage in ("`/heroku-status`", "`/heroku-status <app>`", "`/heroku-status config`", "`/heroku-status help`"):
        assert usage in answer


# --- /heroku-status config ------------------------------------------------------------------------


def settings_form(apps: str, channel: str, interval: str) -> dict:
    """`view.state.values` as Slack sends them for the settings modal."""
    return {field: {field: {"type": "plain_text_input", "value": value}}
            for field, value in (("apps", apps), ("channel", channel), ("interval_minutes", interval))}


async def open_settings(sandbox, user: str = ADMIN) -> dict:
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_slash_command(command="/heroku-status", text="config", user_id=user, channel_id=COMMAND_CHANNEL)
    await sandbox.wait_for_call("views.open", count=before + 1)
    return sandbox.views[max(sandbox.views)]


async def submit(sandbox, view: dict, values: dict, user: str = ADMIN) -> dict:
    return await sandbox.send_view_submission(view["callback_id"], values, user_id=user, view_id=view["id"])


async def test_a_member_who_is_not_an_admin_cannot_open_the_settings(pulser, sandbox):
    envelope = sandbox.slash_command_envelope(command="/heroku-status", text="config", user_id=MEMBER, channel_id=COMMAND_CHANNEL)
    ack = await sandbox.send_envelope(envelope)
    assert "Only Pulser admins can change Heroku monitoring" in readable(ack.get("payload") or {})
    await handled(pulser.pool, envelope)
    assert sandbox.calls_to("views.open") == []


async def test_the_settings_form_opens_filled_with_the_current_settings(pulser, sandbox):
    view = await open_settings(sandbox)
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert initial == {"apps": "shop-api\nshop-worker", "channel": ALERTS, "interval_minutes": "5"}


async def test_bad_settings_are_shown_inline_and_change_nothing(pulser, sandbox):
    view = await open_settings(sandbox)
    before = await heroku.get_settings(pulser.pool)  # opening the form stored the environment's values
    ack = await submit(sandbox, view, settings_form("Shop API!", "ops alerts", "90"))
    payload = ack["payload"]
    assert payload["response_action"] == "errors"
    assert set(payload["errors"]) == {"apps", "channel", "interval_minutes"}
    assert "1 to 60" in payload["errors"]["interval_minutes"]
    assert await heroku.get_settings(pulser.pool) == before
    assert sandbox.calls_to("chat.postEphemeral") == []


async def test_a_channel_name_in_the_settings_is_saved_as_the_channels_id_and_shown_as_a_link(pulser, sandbox):
    view = await open_settings(sandbox)
    ack = await submit(sandbox, view, settings_form("shop-api", "#ops", "5"))
    assert not ack.get("payload")
    assert (await heroku.get_settings(pulser.pool))["channel"] == COMMAND_CHANNEL  # #ops is C0OPS
    (call,) = await sandbox.wait_for_call("chat.postEphemeral")
    assert f"<#{COMMAND_CHANNEL}>" in call.params["text"]


async def test_saved_settings_apply_are_confirmed_and_survive_a_restart(pulser, sandbox, settings):
    view = await open_settings(sandbox)
    ack = await submit(sandbox, view, settings_form("shop-api, shop-worker\nside-project", "#deploys", "10"))
    assert not ack.get("payload"), "a bare ack closes the modal"
    stored = await heroku.get_settings(pulser.pool)
    assert (stored["apps"], stored["channel"], stored["interval_minutes"], stored["updated_by"]) == (
        ["shop-api", "shop-worker", "side-project"], "#deploys", 10, ADMIN,
    )
    (call,) = await sandbox.wait_for_call("chat.postEphemeral")
    assert call.params["channel"] == COMMAND_CHANNEL and call.params["user"] == ADMIN
    assert "side-project every 10 min" in call.params["text"]
    [entry] = await audit.list_actions(pulser.pool, target_type="heroku_settings", target_id="1")
    assert entry["actor"] == ADMIN and entry["action"] == "heroku.settings"

    await pulser.stop()
    async with running_pulser(settings, sandbox) as restarted:
        kept = await restarted.heroku.settings()
        assert (kept.apps, kept.channel, kept.interval_minutes) == (("shop-api", "shop-worker", "side-project"), "#deploys", 10)
        assert "Monitoring ACTIVE* — 3 apps every 10 min → #deploys" in await status(sandbox)


# --- the Rollback button --------------------------------------------------------------------------


async def deploy_message(pulser, sandbox, fake) -> tuple[dict, dict]:
    """shop-api v43 is released after the baseline: its deploy message offers a rollback to v42."""
    await first_poll_done(pulser)
    fake.add_release("shop-api", 43, description="Deploy 3333333", current=True)
    await pulser.heroku.observe(await pulser.heroku.poll_app("shop-api", ["releases"]), polled=True)
    posts = await eventually(
        lambda: [m for m in sandbox.messages.get(ALERTS, []) if ROLLBACK in json.dumps(m.get("attachments"))], timeout=10
    )
    [incident] = await incidents.list_incidents(pulser.pool)
    return posts[0], incident


def rollback_button(message: dict) -> tuple[str, dict]:
    for attachment in message.get("attachments") or []:
        for block in attachment.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == ROLLBACK:
                    return block["block_id"], element
    raise AssertionError("no Rollback button on the message")


async def click_rollback(sandbox, message: dict, user: str) -> str:
    """Click Rollback as `user`; returns what the clicker was told (ephemeral, via response_url)."""
    block_id, button = rollback_button(message)
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(
        ROLLBACK, button["value"], user_id=user, channel_id=message["channel"], message_ts=message["ts"], block_id=block_id
    )
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    _, body = sandbox.response_url_posts[before]
    assert body.get("replace_original") is False, "the message itself is updated by the notifier, not replaced"
    return readable(body)


def current(sandbox, message: dict) -> str:
    return readable(sandbox.state.find_message(message["channel"], message["ts"]))


async def test_an_admin_rolls_back_and_the_message_says_so_in_place(pulser, sandbox, fake):
    message, incident = await deploy_message(pulser, sandbox, fake)
    v42 = next(r for r in fake.releases_of("shop-api") if r["version"] == 42)
    told = await click_rollback(sandbox, message, ADMIN)
    [request] = fake.requests_to("POST", "/apps/shop-api/releases")
    assert request.json == {"release": v42["id"]}
    assert f"Rolled back shop-api to v42 by <@{ADMIN}>: new release v44" in told
    await eventually(lambda: "Rolled back shop-api to v42" in current(sandbox, message), timeout=30)
    assert "new release v44" in current(sandbox, message)
    actions = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident["id"])
    assert [(a["actor"], a["action"], a["details"]["outcome"]) for a in actions] == [(ADMIN, "heroku.rollback", "ok")]


async def test_a_member_is_refused_and_heroku_is_not_asked(pulser, sandbox, fake):
    message, incident = await deploy_message(pulser, sandbox, fake)
    told = await click_rollback(sandbox, message, MEMBER)
    assert "Only Pulser admins can roll back Heroku deploys" in told
    assert fake.requests_to("POST", "/apps/shop-api/releases") == []
    actions = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident["id"])
    assert [(a["actor"], a["action"]) for a in actions] == [(MEMBER, "heroku.rollback_refused")]
    assert "Rolled back" not in current(sandbox, message)


@pytest.mark.parametrize(
    "status_code, says",
    [
        (422, "Heroku 422 invalid_params: Invalid parameters."),
        (404, "Heroku 404 not_found: Couldn't find that app."),
        (403, "Heroku 403 forbidden: You do not have access to that app."),
    ],
)
async def test_when_heroku_refuses_the_rollback_the_message_and_the_clicker_are_told_why(
    pulser, sandbox, fake, status_code, says
):
    message, _ = await deploy_message(pulser, sandbox, fake)
    fake.fail_next("POST /apps/shop-api/releases", status_code)
    told = await click_rollback(sandbox, message, ADMIN)
    assert f"Rollback of shop-api to v42 failed: {says}" in told
    await eventually(lambda: f"failed: {says}" in current(sandbox, message), timeout=30)
    assert max(r["version"] for r in fake.releases_of("shop-api")) == 43, "no release was created"


async def test_a_rollback_under_way_on_one_replica_is_refused_on_another_and_heroku_gets_one_request(
    pulser, sandbox, fake, settings
):
    message, incident = await deploy_message(pulser, sandbox, fake)
    offer = rollback_offer(incident)
    heroku_answers = fake.hold("POST /apps/shop-api/releases")
    async with running_pulser(settings, sandbox) as replica:  # a second process on the same database
        first = asyncio.create_task(
            pulser.heroku.rollback(incident["id"], offer.app, offer.release_id, offer.version, user=ADMIN)
        )
        try:
            await eventually(lambda: fake.requests_to("POST", "/apps/shop-api/releases"), timeout=30)
            second = await replica.heroku.rollback(incident["id"], offer.app, offer.release_id, offer.version, user=ADMIN)
        finally:
            heroku_answers.set()
        assert "already under way" in second.text and not second.ok
        assert (await first).ok
    assert len(fake.requests_to("POST", "/apps/shop-api/releases")) == 1
    actions = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident["id"])
    assert [(a["actor"], a["action"]) for a in actions] == [(ADMIN, "heroku.rollback")]


async def test_a_click_after_the_rollback_finished_does_not_roll_back_again(pulser, sandbox, fake):
    message, incident = await deploy_message(pulser, sandbox, fake)
    assert "Rolled back shop-api to v42" in await click_rollback(sandbox, message, ADMIN)
    again = await click_rollback(sandbox, message, ADMIN)
    assert f"shop-api was already rolled back to v42 by <@{ADMIN}>" in again and "nothing was done" in again
    assert len(fake.requests_to("POST", "/apps/shop-api/releases")) == 1
    assert max(r["version"] for r in fake.releases_of("shop-api")) == 44


# --- secrets --------------------------------------------------------------------------------------


async def test_no_config_var_value_reaches_slack_or_the_log(pulser, sandbox, fake, caplog):
    caplog.set_level(logging.DEBUG)
    with capture_logs() as captured:
        await first_poll_done(pulser)
        await status(sandbox)
        await status(sandbox, "shop-api")
        message, _ = await deploy_message(pulser, sandbox, fake)
        await click_rollback(sandbox, message, ADMIN)
        await eventually(lambda: "Rolled back" in current(sandbox, message), timeout=30)
    slack = json.dumps([[c.params for c in sandbox.calls], sandbox.response_url_posts, sandbox.messages], default=str)
    assert "shop-api" in slack  # what we search is really there
    assert SECRET_VALUE not in slack
    assert any(entry["event"] == "heroku.rollback" for entry in captured)  # the log really was captured
    assert SECRET_VALUE not in json.dumps(captured, default=str)
    assert SECRET_VALUE not in caplog.text


# --- the status layout (pure) ---------------------------------------------------------------------


def test_dynos_read_by_type_with_each_state_counted():
    assert dynos_text({"worker": {"crashed": 1}, "web": {"up": 2, "starting": 1}}) == "web: 2 up, 1 starting · worker: 1 crashed"
    assert dynos_text({}) == "no dynos"


def test_text_from_heroku_is_shown_never_obeyed():
    now = datetime.now(timezone.utc)
    summary = {
        "app": "shop-api",
        "dynos": {},
        "release": {"version": 9, "user": {"email": "x@example.com"}, "created_at": (now - timedelta(hours=3)).isoformat(),
                    "description": "Deploy <!channel> now", "status": "succeeded"},
        "addons": [],
        "last_poll_at": None,
        "last_error": None,
    }
    text = app_section(summary, now=now)["text"]["text"]
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "v9 by x@example.com 3 h ago" in text
