"""Channel names become channel IDs once, when they are saved: from Slack, from the API, and
SLACK_CHANNEL at start (alerts.channels over conversations.list, against the sandbox with the real
slack_sdk client). A name Slack does not know is kept as given."""

from __future__ import annotations

import httpx
import pytest

from alerts.channels import ChannelResolver
from bot.slack_app import build_web_client
from sandbox import SlackSandbox
from storage import applications, platform_events, routing_rules
from storage import deploys as deploy_store
from tests.conftest import StoppedClock, make_settings
from tests.test_slack_rules import ADD, form, open_form, submit

ADMIN = "U0ADA"
TOKEN = "admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}



def resolver(sandbox, clock: StoppedClock | None = None) -> ChannelResolver:
    return ChannelResolver(build_web_client(SlackSandbox.BOT_TOKEN, sandbox.api_url), clock=clock or StoppedClock())


def list_calls(sandbox) -> int:
    return len(sandbox.calls_to("conversations.list"))


# --- the resolver ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["#ops-alerts", "ops-alerts"])
async def test_a_channel_name_with_or_without_its_hash_becomes_the_channels_id(sandbox, typed):
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    assert await resolver(sandbox).resolve(typed) == "C0ALERTS"


@pytest.mark.parametrize("value", ["C0OPS", "G0PRIVATE", None, "", "not a channel", 42])
async def test_ids_and_values_that_are_no_channel_name_come_back_unchanged_without_asking_slack(sandbox, value):
    assert await resolver(sandbox).resolve(value) == value
    assert list_calls(sandbox) == 0


async def test_a_private_channel_the_bot_is_in_is_found_too(sandbox):
    sandbox.add_channel("G0SECRET", "incident-room", is_private=True)
    assert await resolver(sandbox).resolve("#incident-room") == "G0SECRET"


async def test_a_name_on_a_later_page_of_the_channel_list_is_found(sandbox):
    for i in range(450):
        sandbox.add_channel(f"C0N{i:04d}", f"noise-{i}")
    sandbox.add_channel("C0LAST", "ops-alerts")
    assert await resolver(sandbox).resolve("#ops-alerts") == "C0LAST"
    pages = sandbox.calls_to("conversations.list")
    assert len(pages) == 3 and not pages[0].params.get("cursor") and all(p.params.get("cursor") for p in pages[1:])


async def test_the_channel_list_is_read_once_for_many_names(sandbox):
    sandbox.add_channel("C0OPS", "ops")
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    channels = resolver(sandbox)
    assert [await channels.resolve(n) for n in ("#ops", "#ops-alerts", "ops", "#ops-alerts")] == [
        "C0OPS", "C0ALERTS", "C0OPS", "C0ALERTS"]
    assert list_calls(sandbox) == 1


async def test_an_unknown_name_is_kept_and_slack_is_asked_again_only_after_a_while(sandbox):
    clock = StoppedClock()
    channels = resolver(sandbox, clock)
    assert await channels.resolve("#new-channel") == "#new-channel"
    assert await channels.resolve("#new-channel") == "#new-channel"
    assert list_calls(sandbox) == 1, "a miss does not hammer conversations.list (Tier 2)"
    sandbox.add_channel("C0NEW", "new-channel")  # created in Slack meanwhile
    clock.now += 11
    assert await channels.resolve("#new-channel") == "C0NEW"
    assert list_calls(sandbox) == 2


async def test_a_renamed_channel_is_picked_up_when_the_cached_list_is_old(sandbox):
    clock = StoppedClock()
    sandbox.add_channel("C0OPS", "ops")
    channels = resolver(sandbox, clock)
    assert await channels.resolve("#ops") == "C0OPS"
    sandbox.state.channels.clear()
    sandbox.add_channel("C0OTHER", "ops")  # #ops is now another channel
    clock.now += 601
    assert await channels.resolve("#ops") == "C0OTHER"


@pytest.mark.parametrize("status, error", [(200, "missing_scope"), (500, "internal_error")])
async def test_when_slack_refuses_the_channel_list_the_name_is_kept_as_given(sandbox, status, error):
    sandbox.add_channel("C0OPS", "ops")
    sandbox.fail_next("conversations.list", status=status, error=error, times=5)
    assert await resolver(sandbox).resolve("#ops") == "#ops"


async def test_without_a_slack_client_every_channel_is_kept_as_given():
    assert await ChannelResolver().resolve("#ops") == "#ops"


# --- where channels are saved ----------------------------------------------------------------------


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    sandbox.add_channel("C0OPS", "ops")
    sandbox.add_channel("C0DEPLOY", "ops-deploy")
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL="#ops-alerts", PULSER_ADMIN_TOKEN=TOKEN,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=30) as client:
        yield client


async def test_slack_channel_is_stored_and_used_as_its_id_from_start(pulser, http):
    assert pulser.settings.slack_channel == "C0ALERTS"
    assert (await pulser.heroku.settings()).channel == "C0ALERTS"
    created = await http.post("/api/applications", json={"name": "cron", "expected_interval": 300}, headers=AUTH)
    assert created.status_code == 201 and created.json()["channel"] == "C0ALERTS"


async def test_an_app_saved_through_the_api_stores_its_channels_id(pulser, http):
    created = await http.post(
        "/api/applications", json={"name": "cron", "expected_interval": 300, "channel": "#ops"}, headers=AUTH
    )
    assert created.status_code == 201 and created.json()["channel"] == "C0OPS"
    edited = await http.put(f"/api/applications/{created.json()['id']}", json={"channel": "ops-deploy"}, headers=AUTH)
    assert edited.status_code == 200
    [app] = await applications.list_applications(pulser.pool)
    assert app.channel == "C0DEPLOY"


async def test_a_name_slack_does_not_know_is_kept_as_given(pulser, http):
    created = await http.post(
        "/api/applications", json={"name": "cron", "expected_interval": 300, "channel": "#not-in-slack"}, headers=AUTH
    )
    assert created.status_code == 201 and created.json()["channel"] == "#not-in-slack"


async def test_a_bad_channel_is_still_refused_with_the_field_named(pulser, http):
    refused = await http.post(
        "/api/applications", json={"name": "cron", "expected_interval": 300, "channel": "ops alerts"}, headers=AUTH
    )
    assert refused.status_code == 400 and "channel" in refused.json()["detail"]
    assert await applications.list_applications(pulser.pool) == []


async def test_a_rule_saved_through_the_api_stores_its_channels_id(pulser, http):
    created = await http.post("/api/rules", json={"name": "api", "channel": "#ops"}, headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["channel"] == "C0OPS"
    edited = await http.put(f"/api/rules/{created.json()['id']}", json={"channel": "#ops-deploy"}, headers=AUTH)
    assert edited.status_code == 200 and edited.json()["channel"] == "C0DEPLOY"


async def test_a_rule_saved_from_slack_stores_its_channels_id(pulser, sandbox):
    view = await open_form(sandbox, ADD)
    ack = await submit(sandbox, view, form(channel="#ops"))
    assert not (ack.get("payload") or {}).get("errors"), ack
    [rule] = await routing_rules.list_rules(pulser.pool)
    assert rule["channel"] == "C0OPS"


async def test_an_event_route_set_from_slack_stores_its_channels_id_and_shows_it_as_a_link(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="events route deploy #ops-deploy", user_id=ADMIN)
    assert await platform_events.list_routes(pulser.pool) == {"deploy": "C0DEPLOY"}
    text = ack["payload"]["text"]
    assert "now go to <#C0DEPLOY>" in str(ack["payload"]["blocks"]) and "deploy → <#C0DEPLOY>" in text


async def test_a_deploy_service_saved_through_the_api_stores_its_channels_id(pulser, http):
    created = await http.post(
        "/api/services",
        json={"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"},
              "channel": "#ops-deploy"},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    [service] = await deploy_store.list_services(pulser.pool)
    assert service.channel == "C0DEPLOY"

