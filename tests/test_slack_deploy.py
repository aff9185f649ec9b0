"""`/pulser deploy` end to end: the real Bolt app over Socket Mode against the Slack sandbox, a
real Postgres, and a local fake GitHub for the workflow_dispatch the deploys send."""

from __future__ import annotations

import json
from typing import AsyncIterator

import pytest
from aiohttp import web

from alerts.deploys import create_service
from blocks.deploys import ADD_SERVICE, APPROVE, CONFIRM_CALLBACK, EDIT_SERVICE, REJECT, SERVICE_CALLBACK
from storage import audit
from storage import deploys as store
from tests.conftest import eventually, handled, make_settings

ALICE = "U0ALICE"  # asks for deploys
BOB = "U0BOB"  # an ordinary member
ADMIN = "U0ADA"  # approves them
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
    envelope = sandbox.slash_command_envelope(text="deploy apii")
    ack = await sandbox.send_envelope(envelope)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "There is no deploy service called `apii`. Known services: `api`, `web`." in shown(ack["payload"])
    await handled(pulser.pool, envelope)
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
    await click(sandbox, APPROVE, message, ADMIN)
    await eventually(lambda: "Deploy started" in shown(the_request(sandbox)))
    updated = the_request(sandbox)
    assert f"approved by <@{ADMIN}>" in shown(updated)
    assert buttons(updated) == [], "no buttons once decided"
    assert [d[1]["ref"] for d in github.dispatches] == ["v2.0.0"]
    (request,) = await store.list_requests(pulser.pool)
    actions = await audit.list_actions(pulser.pool, target_type="deploy_request", target_id=request.id)
    assert [(a["actor"], a["action"]) for a in reversed(actions)] == [
        (ALICE, "deploy.request"), (ADMIN, "deploy.approve"), (ADMIN, "deploy.trigger"),
    ]


async def test_the_requester_cannot_approve_their_own_deploy(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, APPROVE, message, ALICE)
    # Alice is no admin, so that answers first; an admin requester is told someone else must approve
    # (tests/test_authorization_e2e.py).
    refusal = await ephemeral_for(sandbox, ALICE, "Only Pulser admins can approve deploys")
    assert refusal["origin"] == "response_url"
    assert buttons(the_request(sandbox)) == [APPROVE, REJECT], "still waiting"
    assert github.dispatches == []
    (request,) = await store.list_requests(pulser.pool)
    actions = await audit.list_actions(pulser.pool, target_type="deploy_request", target_id=request.id)
    assert actions[0]["action"] == "deploy.approve_refused" and actions[0]["actor"] == ALICE


async def test_rejecting_sends_nothing_and_says_who_rejected(pulser, sandbox, github):
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, REJECT, message, ADMIN)
    await eventually(lambda: "Rejected" in shown(the_request(sandbox)))
    assert f"<@{ADMIN}>" in shown(the_request(sandbox))
    assert github.dispatches == []


async def test_a_failing_trigger_after_approval_shows_on_the_message(pulser, sandbox, github):
    github.status = 404
    message = await request_with_approval(pulser, sandbox)
    await click(sandbox, APPROVE, message, ADMIN)
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


# --- adding and editing services from Slack ------------------------------------------------------------


def prefilled(view: dict) -> dict:
    """The state Slack would submit for the form as it opened: each input's initial value."""
    values: dict = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        state: dict = {"type": element["type"]}
        if element["type"] == "plain_text_input":
            state["value"] = element.get("initial_value")
        elif element["type"] == "static_select":
            state["selected_option"] = element.get("initial_option")
        elif element["type"] == "checkboxes":
            state["selected_options"] = element.get("initial_options", [])
        values[block["block_id"]] = {element["action_id"]: state}
    return values


def typed(view: dict, **changes) -> dict:
    """The form after a person typed `changes` (block id → text) into it."""
    values = prefilled(view)
    for block, text in changes.items():
        values[block][block]["value"] = text or None
    return values


def chose_type(values: dict, action_type: str) -> dict:
    values["action_type"]["action_type"]["selected_option"] = {"text": {"type": "plain_text", "text": action_type},
                                                                "value": action_type}
    return values


def ticked_approval(values: dict, ticked: bool = True) -> dict:
    option = {"text": {"type": "plain_text", "text": "approval"}, "value": "requires_approval"}
    values["requires_approval"]["requires_approval"]["selected_options"] = [option] if ticked else []
    return values


async def submit_service(sandbox, view: dict, values: dict, user: str = ADMIN) -> dict:
    return await sandbox.send_view_submission(SERVICE_CALLBACK, values, user_id=user, view_id=view["id"])


def initial_values(view: dict) -> dict:
    return {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]
            if b["type"] == "input" and b["element"]["type"] == "plain_text_input"}


async def test_bad_service_fields_are_shown_in_the_form_and_nothing_is_stored(pulser, sandbox):
    view = await open_modal(sandbox, "deploy add", user=ADMIN)
    values = chose_type(typed(view, service_name="api", github_repo="not a repo"), "github_workflow")
    ack = await submit_service(sandbox, view, values)
    assert ack["payload"]["response_action"] == "errors"
    assert set(ack["payload"]["errors"]) == {"github_repo", "github_workflow"}
    assert "owner/name" in ack["payload"]["errors"]["github_repo"]
    assert await store.list_services(pulser.pool) == []


async def test_an_admin_adds_a_github_service_through_the_form(pulser, sandbox):
    view = await open_modal(sandbox, "deploy add", user=ADMIN)
    assert view["callback_id"] == SERVICE_CALLBACK
    first = chose_type(typed(view, service_name="api"), "github_workflow")
    assert (await submit_service(sandbox, view, first))["payload"]["response_action"] == "errors"

    fixed = ticked_approval(chose_type(typed(
        view, service_name="api", github_repo="acme/api", github_workflow="deploy.yml",
        github_inputs="environment={env}\nnotify=yes", channel="#ops-deploy",
    ), "github_workflow"))
    ack = await submit_service(sandbox, view, fixed)
    assert not ack.get("payload"), "a bare ack closes the form"
    (service,) = await store.list_services(pulser.pool)
    assert (service.name, service.action_type, service.requires_approval, service.channel) == (
        "api", "github_workflow", True, DEPLOY_CHANNEL)  # #ops-deploy, saved as its ID
    assert service.action == {"repo": "acme/api", "workflow": "deploy.yml", "ref": "main",
                              "inputs": {"environment": "{env}", "notify": "yes"}}
    confirmed = await ephemeral_for(sandbox, ADMIN, "Added deploy service")
    assert "GitHub workflow deploy.yml in acme/api" in shown(confirmed)
    listed = await sandbox.send_slash_command(text="deploy services")
    assert "*api* — GitHub workflow deploy.yml in acme/api" in shown(listed["payload"])


async def test_the_service_form_keeps_only_the_chosen_types_fields(pulser, sandbox):
    view = await open_modal(sandbox, "deploy add hooks", user=ADMIN)
    assert initial_values(view)["service_name"] == "hooks", "the name given after add is prefilled"
    url = "https://deploy.example.com/hook?t=s3cret"
    values = chose_type(typed(view, github_repo="acme/left-over", webhook_url=url), "webhook")
    await submit_service(sandbox, view, values)
    (service,) = await store.list_services(pulser.pool)
    assert (service.action_type, service.action) == ("webhook", {"url": "https://deploy.example.com/hook?t=s3cret"})
    confirmed = await ephemeral_for(sandbox, ADMIN, "Added deploy service")
    assert "s3cret" not in shown(confirmed), "the webhook URL may hold a token"


async def test_editing_a_service_changes_whether_it_requires_approval(pulser, sandbox):
    service = await add_service(pulser, requires_approval=False)
    view = await open_modal(sandbox, "deploy edit api", user=ADMIN)
    assert initial_values(view)["github_repo"] == "acme/api"
    ack = await submit_service(sandbox, view, ticked_approval(prefilled(view)))
    assert not ack.get("payload")
    assert (await store.get_service(pulser.pool, service.id)).requires_approval is True
    actions = await audit.list_actions(pulser.pool, target_type="deploy_service", target_id=service.id)
    assert (actions[0]["actor"], actions[0]["action"]) == (ADMIN, "deploy_service.update")
    # add_service stored the name as typed; saving the form stores the channel's ID as well.
    assert actions[0]["details"]["changes"] == {
        "requires_approval": {"from": False, "to": True}, "channel": {"from": "#ops-deploy", "to": DEPLOY_CHANNEL},
    }
    await ephemeral_for(sandbox, ADMIN, "Saved deploy service")


async def test_saving_the_edit_form_unchanged_changes_nothing(pulser, sandbox):
    service = await create_service(
        pulser.pool,
        {"name": "api", "action_type": "github_workflow",
         "action": {"repo": "acme/api", "workflow": "deploy.yml", "inputs": {"dry_run": True, "env": "{env}"}}},
        user=ADMIN,
    )
    view = await open_modal(sandbox, "deploy edit api", user=ADMIN)
    assert set(initial_values(view)["github_inputs"].splitlines()) == {"dry_run=true", "env={env}"}
    await submit_service(sandbox, view, prefilled(view))
    await ephemeral_for(sandbox, ADMIN, "Saved deploy service")
    assert (await store.get_service(pulser.pool, service.id)).action == service.action
    actions = await audit.list_actions(pulser.pool, target_type="deploy_service", target_id=service.id)
    assert [a["action"] for a in actions] == ["deploy_service.create"]


async def test_a_member_cannot_add_or_edit_services(pulser, sandbox):
    await add_service(pulser)
    for text, words in (("deploy add", "add deploy services"), ("deploy edit api", "edit deploy services")):
        envelope = sandbox.slash_command_envelope(text=text, user_id=BOB)
        ack = await sandbox.send_envelope(envelope)
        assert f"Only Pulser admins can {words}" in shown(ack["payload"])
        await handled(pulser.pool, envelope)
    assert sandbox.calls_to("views.open") == []


async def test_editing_an_unknown_service_names_the_known_ones(pulser, sandbox):
    await add_service(pulser)
    ack = await sandbox.send_slash_command(text="deploy edit apii", user_id=ADMIN)
    assert "There is no deploy service called `apii`. Known services: `api`." in shown(ack["payload"])


async def test_the_services_list_has_edit_buttons_and_an_add_button(pulser, sandbox):
    service = await add_service(pulser)
    ack = await sandbox.send_slash_command(text="deploy services", user_id=BOB)
    blocks = ack["payload"]["blocks"]
    edits = [b["accessory"] for b in blocks if b.get("accessory", {}).get("action_id") == EDIT_SERVICE]
    assert [e["value"] for e in edits] == [str(service.id)]
    assert ADD_SERVICE in buttons(ack["payload"])


async def test_the_edit_button_opens_the_prefilled_form_for_admins(pulser, sandbox):
    service = await add_service(pulser, requires_approval=True)
    await sandbox.send_block_action(EDIT_SERVICE, value=str(service.id), user_id=ADMIN)
    await sandbox.wait_for_call("views.open")
    view = sandbox.views[max(sandbox.views)]
    assert initial_values(view)["service_name"] == "api"
    assert initial_values(view)["github_workflow"] == "deploy.yml"
    assert initial_values(view)["channel"] == "#ops-deploy"
    approval = next(b for b in view["blocks"] if b.get("block_id") == "requires_approval")
    assert approval["element"]["initial_options"], "approval is ticked"
    assert json.loads(view["private_metadata"])["service_id"] == service.id


async def test_a_member_clicking_edit_is_refused(pulser, sandbox):
    service = await add_service(pulser)
    await sandbox.send_block_action(EDIT_SERVICE, value=str(service.id), user_id=BOB)
    refusal = await ephemeral_for(sandbox, BOB, "Only Pulser admins can edit deploy services")
    assert refusal["origin"] == "response_url"
    assert sandbox.calls_to("views.open") == []


async def test_the_add_button_opens_an_empty_form_for_admins(pulser, sandbox):
    await sandbox.send_block_action(ADD_SERVICE, value="add", user_id=ADMIN)
    await sandbox.wait_for_call("views.open")
    view = sandbox.views[max(sandbox.views)]
    assert initial_values(view)["service_name"] is None
    assert json.loads(view["private_metadata"])["service_id"] is None
