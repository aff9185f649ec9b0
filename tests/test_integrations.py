"""Integrations: each source's status (configured or the missing variable, last delivery, last
error, deliveries in 24 h), and the test button for every source — a signed sample through the
sidecar's real webhook endpoint that must become an incident message in the sandbox — over the
API and from App Home, plus bad input."""

from __future__ import annotations

import json

import httpx
import pytest

from blocks.home import SEND_TEST
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings
from tests.incident_seeds import ALERTS

TOKEN = "t0ken-for-tests"
HEROKU_SECRET = "heroku-webhook-secret"
HEROKU_APP = "acme-web"


def pulser_settings(database_url, sandbox, **secrets):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user("U0BOB", name="bob")
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL=ALERTS, PULSER_ADMIN_TOKEN=TOKEN, **secrets,
    )  # fmt: skip


@pytest.fixture
def settings(database_url, sandbox):
    return pulser_settings(
        database_url, sandbox, HEROKU_WEBHOOK_SECRET=HEROKU_SECRET, MONITORED_APP_NAME=HEROKU_APP, **send.SECRETS_ENV
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{pulser.http_port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as client:
        yield client


def posted_in_slack(sandbox, outcome: dict) -> dict | None:
    message = outcome["message"]
    return sandbox.state.find_message(message["channel"], message["ts"]) if message else None


# --- the test button, over the API ------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["sentry", "alertmanager", "github", "generic"])
async def test_a_test_delivery_becomes_an_incident_message(pulser, sandbox, http, source):
    response = await http.post(f"/api/integrations/{source}/test")
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["delivery"]["status"] == 202, outcome
    assert outcome["became_message"] is True, outcome["detail"]
    message = posted_in_slack(sandbox, outcome)
    assert message is not None and "Pulser integration test" in json.dumps(message, ensure_ascii=False)
    assert outcome["message"]["channel"] == ALERTS


async def test_a_heroku_test_delivery_is_a_crashed_dyno_of_a_monitored_app(pulser, sandbox, http):
    response = await http.post("/api/integrations/heroku/test")
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["delivery"]["status"] == 202
    assert outcome["became_message"] is True, outcome["detail"]
    assert HEROKU_APP in json.dumps(posted_in_slack(sandbox, outcome))


async def test_an_unknown_source_is_a_404_and_a_body_is_a_400(pulser, http):
    unknown = await http.post("/api/integrations/datadog/test")
    assert unknown.status_code == 404 and "sentry" in unknown.json()["detail"]
    with_body = await http.post("/api/integrations/generic/test", json={"title": "x"})
    assert with_body.status_code == 400
    assert await pulser.pool.fetchval("SELECT count(*) FROM envelopes") == 0


# --- status ------------------------------------------------------------------------------------------------


async def test_the_status_counts_deliveries_and_remembers_the_last_refusal(pulser, http):
    assert (await http.post("/api/integrations/generic/test")).json()["became_message"]
    forged = await http.post("/webhooks/sentry", **_raw(send.sentry({"data": {}}, secret="not-the-secret")))
    assert forged.status_code == 401
    by_source = {i["source"]: i for i in (await http.get("/api/integrations")).json()["integrations"]}
    assert list(by_source) == ["sentry", "alertmanager", "github", "generic", "heroku"]
    generic = by_source["generic"]
    assert generic["configured"] and generic["deliveries_24h"] == 1 and generic["last_delivery"] and generic["last_error"] is None
    assert generic["webhook_url"].endswith("/webhooks/generic")
    sentry = by_source["sentry"]
    assert sentry["deliveries_24h"] == 0 and sentry["last_error"]["kind"] == "refused"
    assert "invalid signature" in sentry["last_error"]["error"] and "not-the-secret" not in json.dumps(sentry)


def _raw(headers_and_body) -> dict:
    headers, body = headers_and_body
    return {"headers": headers, "content": body}


class TestUnconfigured:
    """A Pulser with only the generic token: the others say which variable is missing."""

    @pytest.fixture
    def settings(self, database_url, sandbox):
        return pulser_settings(database_url, sandbox, PULSER_WEBHOOK_TOKEN=send.WEBHOOK_TOKEN)

    async def test_each_unconfigured_source_names_its_variable(self, pulser, http):
        by_source = {i["source"]: i for i in (await http.get("/api/integrations")).json()["integrations"]}
        assert by_source["github"]["missing"] == ["GITHUB_WEBHOOK_SECRET"] and not by_source["github"]["testable"]
        assert by_source["sentry"]["missing"] == ["SENTRY_CLIENT_SECRET"]
        assert by_source["heroku"]["missing"] == ["HEROKU_WEBHOOK_SECRET"]
        assert by_source["generic"]["configured"] and by_source["alertmanager"]["configured"]

    async def test_testing_an_unconfigured_source_is_a_409_naming_the_variable(self, pulser, http):
        response = await http.post("/api/integrations/github/test")
        assert response.status_code == 409
        assert response.json() == {"error": "integration not configured", "detail": "set GITHUB_WEBHOOK_SECRET"}
        assert await pulser.pool.fetchval("SELECT count(*) FROM envelopes") == 0


# --- App Home -----------------------------------------------------------------------------------------------


async def test_home_shows_each_integration_and_send_test_reports_in_a_dm(pulser, sandbox):
    await sandbox.send_app_home_opened("U0ALICE")
    home = await eventually(lambda: sandbox.home_views.get("U0ALICE"), timeout=30)
    text = json.dumps(home["blocks"], ensure_ascii=False)
    assert "*Integrations*" in text and "*GitHub* · last delivery never" in text
    buttons = [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"].startswith(SEND_TEST)]
    assert [b["value"] for b in buttons] == ["sentry", "alertmanager", "github", "generic", "heroku"]
    await sandbox.send_block_action(f"{SEND_TEST}:alertmanager", "alertmanager", user_id="U0ALICE", view_id=home["id"])
    dm = await eventually(lambda: sandbox.messages.get("U0ALICE") or sandbox.messages.get("D0ALICE"), timeout=60)
    assert "Alertmanager test delivery* became incident #1" in dm[-1]["text"] and f"<#{ALERTS}>" in dm[-1]["text"]


async def test_send_test_is_for_admins(pulser, sandbox):
    await sandbox.send_app_home_opened("U0BOB")
    home = await eventually(lambda: sandbox.home_views.get("U0BOB"), timeout=30)
    await sandbox.send_block_action(f"{SEND_TEST}:generic", "generic", user_id="U0BOB", view_id=home["id"])
    dm = await eventually(lambda: sandbox.messages.get("U0BOB") or sandbox.messages.get("D0BOB"), timeout=30)
    assert "admin" in dm[-1]["text"].lower()
    assert await pulser.pool.fetchval("SELECT count(*) FROM envelopes WHERE source = 'generic'") == 0
