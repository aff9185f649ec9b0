"""`/pulser deploy` end to end: the real Bolt app over Socket Mode against the Slack sandbox, a
real Postgres, and a local fake GitHub for the workflow_dispatch the deploys send."""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

import pytest
from aiohttp import web

from alerts.deploys import create_service
from blocks.deploys import APPROVE, CONFIRM_CALLBACK, REJECT
from storage import audit
from storage import deploys as store
from tests.conftest import eventually, make_settings

ALICE = "U0ALICE"  # asks for deploys
BOB = "U0BOB"  # approves them
ADMIN = "U0ADA"
DEPLOY_CHANNEL = "C0DEPLOY"


class FakeGitHub:
    """Answers workflow_dispatch with `status` (204 by default) and records each call."""

    def __init__(self) -> None:
        self.dispatches: list[tuple[str, dict]] = []
        self.status = 204
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.Response:
        self.dispatches.append((request.path, await request.json()))
        if self.status == 204:
            return web.Response(status=204)
        return web.json_response({"message": "Not Found"}, status=self.status)


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def settings(database_url, sandbox, github):
    """The usual sandbox settings, with deploys pointed at the fake GitHub."""
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        GITHUB_API_URL=github.url,
        GITHUB_TOKEN="ghp-test-token",
    )


@pytest.fixture(autouse=True)
def workspace(sandbox):
    sandbox.set_user(ALICE, name="alice")
    sandbox.set_user(BOB, name="bob")
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.add_channel("C0OPS", "ops")
    sandbox.add_channel(DEPLOY_CHANNEL, "ops-deploy")


async def add_service(pulser, name: str = "api", *, requires_approval: bool = False):
    return await create_service(
        pulser.pool,
        {"name": name, "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"},
         "requires_approval": requires_approval, "channel": "#ops-deploy"},
        user=ADMIN,
    )


def shown(payload: dict) -> str:
    """Every text a person sees in a message or ack payload."""
    parts = [payload.get("text") or ""]
    attached = [b for a in payload.get("attachments") or [] for b in a.get("blocks") or []]
    for block in [*(payload.get("blocks") or []), *attached]:
        if block.get("text"):
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e.get("text", "") for e in block.get("elements", []) if block["type"] == "context"]
    return "\n".join(parts)


def buttons(message: dict) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


async def open_modal(sandbox, text: str = "deploy api", user: str = ALICE) -> dict:
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_slash_command(text=text, user_id=user)
    await sandbox.wait_for_call("views.open", count=before + 1)
    return sandbox.views[max(sandbox.views)]


def form(env: str = "production", ref: str = "", reason: str = "") -> dict:
    def text(block: str, value: str) -> dict:
        return {block: {block: {"type": "plain_text_input", "value": value or None}}}

    return {**text("env", env), **text("ref", ref), **text("reason", reason)}


async def submit(sandbox, view: dict, values: dict, user: str = ALICE) -> dict:
    return await sandbox.send_view_submission(CONFIRM_CALLBACK, values, user_id=user, view_id=view["id"])


async def ephemeral_for(sandbox, user: str, containing: str) -> dict:
    return await eventually(
        lambda: next((e for e in sandbox.ephemerals if e.get("user") == user and containing in shown(e)), None)
    )


def the_request(sandbox) -> dict | None:
    """The request message in the deploy channel (the "deploy started" event is another one)."""
    return next((m for m in sandbox.messages.get(DEPLOY_CHANNEL, []) if m["text"].startswith("Deploy request")), None)


async def request_message(sandbox) -> dict:
    return await eventually(lambda: the_request(sandbox))


async def click(sandbox, action_id: str, message: dict, user: str) -> None:
    (value,) = {e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}
    await sandbox.send_block_action(action_id, value=value, user_id=user, channel_id=DEPLOY_CHANNEL, message_ts=message["ts"])


# --- the command ------------------------------------------------------------------------------------


async def test_deploy_without_a_service_explains_how(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="deploy")
    text = shown(ack["payload"])
    assert "/pulser deploy <service> [ref]" in text
    assert "POST /api/services" in text, "says where services are added"


async def test_an_unknown_service_is_answered_with_the_known_ones(pulser, sandbox):
    await add_service(pulser, "api")
    await add_service(pulser, "web")
    ack = await sandbox.send_slash_command(text="deploy apii")
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "There is no deploy service called `apii`. Known services: `api`, `web`." in shown(ack["payload"])
    await asyncio.sleep(0.1)
    assert sandbox.calls_to("views.open") == []


async def test_deploy_opens_the_confirmation_form_prefilled(pulser, sandbox):
    await add_service(pulser)
    view = await open_modal(sandbox, "deploy api v1.2.0")
    inputs = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert inputs == {"env": "production", "ref": "v1.2.0", "reason": None}
    assert "GitHub workflow deploy.yml in acme/api" in shown(view)
    assert json.loads(view["private_metadata"])["service"] == "api"


async def test_bad_fields_are_shown_in_the_form_and_nothing_is_requested(pulser, sandbox, github):
    await add_service(pulser)
    view = await open_modal(sandbox)
    ack = await submit(sandbox, view, form(env="prod uction", ref="a..b"))
    assert ack["payload"]["response_action"] == "errors"
    assert set(ack["payload"]["errors"]) == {"env", "ref"}
    assert await store.list_requests(pulser.pool) == []
    assert github.dispatches == []


# --- without approval ---------------------------------------------------------------------------------


async def test_submitting_starts_the_deploy_at_once_and_tells_the_requester(pulser, sandbox, github):
    await add_service(pulser)
    view = await open_modal(sandbox, "deploy api v1.2.0")
    ack = await submit(sandbox, view, form(ref="v1.2.0", reason="hotfix"))
    assert not ack.get("payload"), "a bare ack closes the form"
    notice = await ephemeral_for(sandbox, ALICE, "started")
    assert "Deploy of `api` `v1.2.0` to *production* started" in shown(notice)
    assert github.dispatches == [("/repos/acme/api/actions/workflows/deploy.yml/dispatches", {"ref": "v1.2.0", "inputs": {}})]


async def test_a_started_deploy_is_announced_in_the_deploy_channel(pulser, sandbox, github):
    await add_service(pulser)
    view = await open_modal(sandbox, "deploy api v1.2.0")
    await submit(sandbox, view, form(ref="v1.2.0", reason="hotfix"))
    announced = await eventually(
        lambda: next((m for m in sandbox.messages.get(DEPLOY_CHANNEL, []) if "Deploy started" in shown(m)), None)
    )
    assert "api (v1.2.0) to production" in shown(announced)
    assert "hotfix" in shown(announced)


async def test_a_failing_trigger_tells_the_requester_why(pulser, sandbox, github):
    github.status = 404
    await add_service(pulser)
    view = await open_modal(sandbox)
    await submit(sandbox, view, form())
    notice = await ephemeral_for(sandbox, ALICE, "could not be started")
    assert "GitHub answered 404: Not Found" in shown(notice)
    assert "Traceback" not in shown(notice)
    (request,) = await store.list_requests(pulser.pool)
    assert request.status == "trigger_failed"


# --- with approval ------------------------------------------------------------------------------------


async def request_with_approval(pulser, sandbox) -> dict:
    await add_service(pulser, requires_approval=True)
    view = await open_modal(sandbox, "deploy api v2.0.0")
    await submit(sandbox, view, form(ref="v2.0.0", reason="new checkout"))
    return await request_message(sandbox)


async def test_a_service_requiring_approval_posts_the_request_with_approve_and_reject(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    text = shown(message)
    assert "api" in text and "production" in text and "v2.0.0" in text and "new checkout" in text
    assert f"<@{ALICE}>" in text
    assert buttons(message) == [APPROVE, REJECT]
    notice = await ephemeral_for(sandbox, ALICE, "waiting for approval")
    assert f"<#{DEPLOY_CHANNEL}>" in shown(notice) or "#ops-deploy" in shown(notice)
    assert github.dispatches == []


async def test_approval_by_someone_else_starts_the_deploy_and_updates_the_message(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, APPROVE, message, BOB)
    await eventually(lambda: "Deploy started" in shown(the_request(sandbox)))
    updated = the_request(sandbox)
    assert f"approved by <@{BOB}>" in shown(updated)
    assert buttons(updated) == [], "no buttons once decided"
    assert [d[1]["ref"] for d in github.dispatches] == ["v2.0.0"]
    (request,) = await store.list_requests(pulser.pool)
    actions = await audit.list_actions(pulser.pool, target_type="deploy_request", target_id=request.id)
    assert [(a["actor"], a["action"]) for a in reversed(actions)] == [
        (ALICE, "deploy.request"), (BOB, "deploy.approve"), (BOB, "deploy.trigger"),
    ]


async def test_the_requester_cannot_approve_their_own_deploy(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, APPROVE, message, ALICE)
    refusal = await ephemeral_for(sandbox, ALICE, "someone else has to approve it")
    assert refusal["origin"] == "response_url"
    assert buttons(the_request(sandbox)) == [APPROVE, REJECT], "still waiting"
    assert github.dispatches == []
    (request,) = await store.list_requests(pulser.pool)
    actions = await audit.list_actions(pulser.pool, target_type="deploy_request", target_id=request.id)
    assert actions[0]["action"] == "deploy.approve_refused" and actions[0]["actor"] == ALICE


async def test_rejecting_sends_nothing_and_says_who_rejected(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, REJECT, message, BOB)
    await eventually(lambda: "Rejected" in shown(the_request(sandbox)))
    assert f"<@{BOB}>" in shown(the_request(sandbox))
    assert github.dispatches == []


async def test_a_failing_trigger_after_approval_shows_on_the_message(pulser, sandbox, github):
    github.status = 404
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, APPROVE, message, BOB)
    await eventually(lambda: "Could not start the deploy" in shown(the_request(sandbox)))
    assert "GitHub answered 404: Not Found" in shown(the_request(sandbox))


# --- services ---------------------------------------------------------------------------------------


async def test_deploy_services_lists_each_service_and_how_it_deploys(pulser, sandbox):
    await add_service(pulser, requires_approval=True)
    ack = await sandbox.send_slash_command(text="deploy services")
    text = shown(ack["payload"])
    assert "*api* — GitHub workflow deploy.yml in acme/api" in text
    assert "approval required" in text


async def test_a_member_cannot_remove_a_service(pulser, sandbox):
    await add_service(pulser)
    ack = await sandbox.send_slash_command(text="deploy remove api", user_id=BOB)
    assert "Only Pulser admins can remove deploy services" in shown(ack["payload"])
    assert [s.name for s in await store.list_services(pulser.pool)] == ["api"]


async def test_an_admin_removes_a_service(pulser, sandbox):
    service = await add_service(pulser)
    ack = await sandbox.send_slash_command(text="deploy remove api", user_id=ADMIN)
    assert "Removed deploy service *api*" in shown(ack["payload"])
    assert await store.list_services(pulser.pool) == []
    actions = await audit.list_actions(pulser.pool, target_type="deploy_service", target_id=service.id)
    assert (actions[0]["actor"], actions[0]["action"]) == (ADMIN, "deploy_service.delete")
