"""Deploys in the domain and the admin API: service validation, requests and approval, each deploy
action against a local fake (GitHub, a generic receiver, tests/fake_heroku.py), failures, audit,
the "deploy started" event, metrics, and `/api/services` + `/api/deploys`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator

import httpx
import pytest
from aiohttp import web

from alerts.deploys import (
    DeployRefused,
    DeployRequest,
    Deploys,
    ServiceNameTaken,
    UnknownService,
    ValidationError,
    create_service,
    update_service,
    validate_service,
)
from alerts.platform_events import PlatformEvents
from alerts.sources.heroku_api import HerokuClient
from blocks import deploys as blocks
from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import audit
from tests.conftest import make_settings
from tests.fake_heroku import FakeHeroku

GITHUB_TOKEN = "ghp-test-token"
WEBHOOK_SECRET = "deploy-webhook-secret"
ADMIN = "U0ADMIN"
ALICE = "U0ALICE"
BOB = "U0BOB"
PIPELINE = "0f5c9e0a-1b2c-4d3e-8f90-123456789abc"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A local HTTP server that records what it is sent and answers `status` (after `delay` s)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.status = 204
        self.answer: dict | None = None
        self.delay = 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            return web.json_response(self.answer, status=self.status)
        return web.Response(status=self.status)


@pytest.fixture
async def github() -> AsyncIterator[Receiver]:
    fake = Receiver()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    fake = Receiver()
    fake.status = 200
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def heroku() -> AsyncIterator[FakeHeroku]:
    async with FakeHeroku() as fake:
        fake.add_app("shop-staging")
        fake.add_release("shop-staging", 1)
        fake.add_app("shop-production")
        yield fake


@pytest.fixture
async def make_deploys(pool, github):
    made: list[Deploys] = []

    def make(
        *, token: str | None = GITHUB_TOKEN, secret: str | None = WEBHOOK_SECRET, heroku_client=None,
        timeout: float = 5.0, on_deploy=None,
    ) -> Deploys:
        deploys = Deploys(
            pool, PlatformEvents(pool, default_channel="#ops-alerts"), github_token=token, github_api_url=github.url,
            heroku_client=heroku_client, webhook_secret=secret, on_deploy=on_deploy, timeout=timeout,
        )
        made.append(deploys)
        return deploys

    yield make
    for deploys in made:
        await deploys.close()


@pytest.fixture
def deploys(make_deploys) -> Deploys:
    return make_deploys()


def github_service(name: str = "api", **extra) -> dict:
    return {
        "name": name,
        "action_type": "github_workflow",
        "action": {"repo": "acme/api", "workflow": "deploy.yml", **extra.pop("action", {})},
        **extra,
    }


async def add(pool, data: dict):
    return await create_service(pool, data, user=ADMIN)


async def audited(pool, request_id: int) -> list[str]:
    rows = await audit.list_actions(pool, target_type="deploy_request", target_id=request_id)
    return [r["action"] for r in reversed(rows)]


async def started_events(pool) -> list[dict]:
    rows = await pool.fetch(
        "SELECT * FROM platform_events WHERE event_type = 'deploy' AND status = 'started' ORDER BY id"
    )
    return [dict(r) for r in rows]


# --- validating services -------------------------------------------------------------------------


def test_a_github_service_needs_only_repo_and_workflow_and_deploys_main_to_production_by_default():
    spec = validate_service(github_service())
    assert spec.action == {"repo": "acme/api", "workflow": "deploy.yml", "ref": "main"}
    assert (spec.default_env, spec.requires_approval, spec.channel) == ("production", False, None)


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValidationError) as caught:
        validate_service({"name": "my api", "action_type": "ftp", "default_env": "", "requires_approval": "yes",
                          "channel": "ops deploy", "colour": "red"})
    assert set(caught.value.errors) == {"name", "action_type", "default_env", "requires_approval", "channel", "colour"}
    assert "github_workflow, heroku_promotion, webhook" in caught.value.errors["action_type"]


def test_a_github_action_names_its_repository_as_owner_slash_name_and_a_workflow_file_or_id():
    with pytest.raises(ValidationError) as caught:
        validate_service(github_service(action={"repo": "api", "workflow": "deploy", "ref": "a..b"}))
    assert set(caught.value.errors) == {"action.repo", "action.workflow", "action.ref"}
    assert validate_service(github_service(action={"workflow": 161335})).action["workflow"] == "161335"


def test_github_inputs_must_be_named_scalars():
    with pytest.raises(ValidationError) as caught:
        validate_service(github_service(action={"inputs": {"environment": "{env}", "bad name": "x", "list": [1]}}))
    assert "bad name" in caught.value.errors["action.inputs"] and "list" in caught.value.errors["action.inputs"]


def test_a_heroku_promotion_needs_a_pipeline_id_a_source_app_and_target_apps():
    with pytest.raises(ValidationError) as caught:
        validate_service({"name": "shop", "action_type": "heroku_promotion", "action": {"pipeline": "shop", "to_apps": []}})
    assert set(caught.value.errors) == {"action.pipeline", "action.from_app", "action.to_apps"}
    spec = validate_service({
        "name": "shop", "action_type": "heroku_promotion",
        "action": {"pipeline": PIPELINE, "from_app": "shop-staging", "to_apps": "shop-production, shop-eu"},
    })
    assert spec.action["to_apps"] == ["shop-production", "shop-eu"]


def test_a_heroku_promotion_cannot_promote_an_app_to_itself():
    with pytest.raises(ValidationError) as caught:
        validate_service({"name": "shop", "action_type": "heroku_promotion",
                          "action": {"pipeline": PIPELINE, "from_app": "shop-staging", "to_apps": ["shop-staging"]}})
    assert caught.value.errors == {"action.to_apps": "must not include the app promoted from"}


def test_a_webhook_needs_an_http_or_https_url():
    with pytest.raises(ValidationError) as caught:
        validate_service({"name": "worker", "action_type": "webhook", "action": {"url": "ftp://deploy.example"}})
    assert caught.value.errors == {"action.url": "required: an http:// or https:// URL"}


def test_subcommand_words_cannot_be_service_names():
    with pytest.raises(ValidationError) as caught:
        validate_service(github_service(name="services"))
    assert "subcommand" in caught.value.errors["name"]


def test_changing_the_action_type_needs_the_new_action():
    current = validate_service(github_service())
    with pytest.raises(ValidationError) as caught:
        validate_service({"action_type": "webhook"}, current=current)
    assert caught.value.errors == {"action": "required: an object with url"}
    assert validate_service({"requires_approval": True}, current=current).action == current.action


async def test_service_names_are_unique_ignoring_case(pool):
    await add(pool, github_service("api"))
    with pytest.raises(ServiceNameTaken):
        await add(pool, github_service("API"))


async def test_an_update_without_changes_is_not_audited(pool):
    service = await add(pool, github_service())
    await update_service(pool, service.id, {"name": "api"}, user=ADMIN)
    actions = await audit.list_actions(pool, target_type="deploy_service", target_id=service.id)
    assert [a["action"] for a in actions] == ["deploy_service.create"]


# --- requests and approval -----------------------------------------------------------------------


async def test_an_unknown_service_is_refused_with_the_known_ones_listed(pool, deploys):
    await add(pool, github_service("api"))
    await add(pool, github_service("web"))
    with pytest.raises(UnknownService) as caught:
        await deploys.request_deploy("apii", "production", "", "", ALICE)
    assert str(caught.value) == "There is no deploy service called “apii”. Known services: api, web."


async def test_bad_request_fields_are_named(pool, deploys):
    await add(pool, github_service())
    with pytest.raises(ValidationError) as caught:
        await deploys.request_deploy("api", "", "main..evil", "x" * 501, ALICE)
    assert set(caught.value.errors) == {"env", "ref", "reason"}


async def test_a_service_that_requires_approval_waits_and_sends_nothing(pool, deploys, github):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "v1.2.0", "hotfix", ALICE)
    assert request.status == "pending_approval"
    assert github.seen == []


async def test_the_requester_cannot_approve_their_own_deploy(pool, deploys, github):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    with pytest.raises(DeployRefused, match="someone else has to approve it"):
        await deploys.approve(request.id, ALICE)
    assert (await deploys.get_request(request.id)).status == "pending_approval"
    assert github.seen == []
    assert await audited(pool, request.id) == ["deploy.request", "deploy.approve_refused"]


async def test_approval_by_someone_else_starts_the_deploy(pool, deploys, github):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "v1.2.0", "hotfix", ALICE)
    approved = await deploys.approve(request.id, BOB)
    assert (approved.status, approved.decided_by) == ("triggered", BOB)
    assert len(github.seen) == 1
    assert await audited(pool, request.id) == ["deploy.request", "deploy.approve", "deploy.trigger"]


async def test_a_request_is_approved_once_even_when_two_people_click_together(pool, deploys, github):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    results = await asyncio.gather(deploys.approve(request.id, BOB), deploys.approve(request.id, "U0CAROL"),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, DeployRefused)]
    assert len(refused) == 1 and "no longer waiting for approval" in str(refused[0])
    assert len(github.seen) == 1


async def test_a_rejected_request_is_never_sent_and_cannot_be_approved_after(pool, deploys, github):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    rejected = await deploys.reject(request.id, BOB)
    assert (rejected.status, rejected.decided_by) == ("rejected", BOB)
    with pytest.raises(DeployRefused, match=f"rejected by <@{BOB}>"):
        await deploys.approve(request.id, "U0CAROL")
    assert github.seen == []


async def test_the_requester_may_withdraw_their_own_request(pool, deploys):
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    assert (await deploys.reject(request.id, ALICE)).status == "rejected"


async def test_deployments_are_counted_by_service_and_status(pool, make_deploys, github):
    counted: list[tuple[str, str]] = []
    deploys = make_deploys(on_deploy=lambda service, status: counted.append((service, status)))
    await add(pool, github_service(requires_approval=True))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    await deploys.approve(request.id, BOB)
    assert counted == [("api", "pending_approval"), ("api", "approved"), ("api", "triggered")]


# --- GitHub workflow_dispatch ----------------------------------------------------------------------


async def test_github_gets_a_workflow_dispatch_with_the_ref_and_inputs(pool, deploys, github):
    await add(pool, github_service(action={"inputs": {"environment": "{env}", "note": "by {requested_by}", "dry_run": False}}))
    request = await deploys.request_deploy("api", "staging", "v1.2.0", "try it", ALICE)
    assert request.status == "triggered"
    (seen,) = github.seen
    assert (seen.method, seen.path) == ("POST", "/repos/acme/api/actions/workflows/deploy.yml/dispatches")
    assert seen.json() == {"ref": "v1.2.0", "inputs": {"environment": "staging", "note": f"by {ALICE}", "dry_run": False}}
    assert seen.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert seen.headers["Accept"] == "application/vnd.github+json"


async def test_an_empty_ref_deploys_the_services_default_ref(pool, deploys, github):
    await add(pool, github_service(action={"ref": "release"}))
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    assert request.ref == "release"
    assert github.seen[0].json()["ref"] == "release"


async def test_a_github_refusal_leaves_the_request_failed_with_githubs_words(pool, deploys, github):
    github.status, github.answer = 404, {"message": "Not Found", "documentation_url": "https://docs.github.com"}
    await add(pool, github_service())
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    assert request.status == "trigger_failed"
    assert request.trigger_error == (
        "GitHub answered 404: Not Found (check the repository, the workflow file and that GITHUB_TOKEN can see them)"
    )
    assert await started_events(pool) == []


async def test_without_a_github_token_the_request_fails_naming_the_variable(pool, make_deploys, github):
    deploys = make_deploys(token=None)
    await add(pool, github_service())
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    assert request.status == "trigger_failed"
    assert "GITHUB_TOKEN is not set" in request.trigger_error
    assert github.seen == []


async def test_github_not_answering_in_time_is_a_trigger_failure(pool, make_deploys, github):
    deploys = make_deploys(timeout=0.2)
    github.delay = 1.0
    await add(pool, github_service())
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    assert (request.status, request.trigger_error) == ("trigger_failed", "GitHub did not answer within 0.2 s")


async def test_a_trigger_failure_is_audited_with_its_error(pool, deploys, github):
    github.status = 500
    await add(pool, github_service())
    request = await deploys.request_deploy("api", "production", "", "", ALICE)
    (latest, *_) = await audit.list_actions(pool, target_type="deploy_request", target_id=request.id)
    assert latest["action"] == "deploy.trigger"
    assert latest["details"]["outcome"] == "trigger_failed"
    assert latest["details"]["error"] == "GitHub answered 500"


# --- Heroku pipeline promotion ---------------------------------------------------------------------


async def test_a_heroku_promotion_promotes_the_source_app_to_its_targets(pool, make_deploys, heroku):
    client = HerokuClient(heroku.api_key, heroku.base_url, sleep=lambda s: asyncio.sleep(0))
    try:
        deploys = make_deploys(heroku_client=client)
        await add(pool, {"name": "shop", "action_type": "heroku_promotion",
                         "action": {"pipeline": PIPELINE, "from_app": "shop-staging", "to_apps": ["shop-production"]}})
        request = await deploys.request_deploy("shop", "production", "", "", ALICE)
    finally:
        await client.close()
    assert request.status == "triggered"
    (promotion,) = heroku.promotions
    assert promotion["pipeline"] == {"id": PIPELINE}
    assert promotion["targets"] == [{"name": "shop-production"}]
    (sent,) = heroku.requests_to("POST", "/pipeline-promotions")
    assert sent.json["source"] == {"app": {"name": "shop-staging"}}


async def test_a_heroku_refusal_is_shown_as_herokus_message(pool, make_deploys, heroku):
    heroku.fail_next("POST /pipeline-promotions", 403)
    client = HerokuClient(heroku.api_key, heroku.base_url, sleep=lambda s: asyncio.sleep(0))
    try:
        deploys = make_deploys(heroku_client=client)
        await add(pool, {"name": "shop", "action_type": "heroku_promotion",
                         "action": {"pipeline": PIPELINE, "from_app": "shop-staging", "to_apps": ["shop-production"]}})
        request = await deploys.request_deploy("shop", "production", "", "", ALICE)
    finally:
        await client.close()
    assert (request.status, request.trigger_error) == (
        "trigger_failed", "Heroku 403 forbidden: You do not have access to that app."
    )


async def test_without_a_heroku_key_a_promotion_fails_naming_the_variable(pool, make_deploys):
    client = HerokuClient(None)
    try:
        deploys = make_deploys(heroku_client=client)
        await add(pool, {"name": "shop", "action_type": "heroku_promotion",
                         "action": {"pipeline": PIPELINE, "from_app": "shop-staging", "to_apps": ["shop-production"]}})
        request = await deploys.request_deploy("shop", "production", "", "", ALICE)
    finally:
        await client.close()
    assert request.status == "trigger_failed"
    assert "HEROKU_API_KEY is not set" in request.trigger_error


# --- the signed generic webhook --------------------------------------------------------------------


async def test_the_generic_webhook_is_signed_with_an_hmac_of_the_raw_body(pool, deploys, receiver):
    await add(pool, {"name": "worker", "action_type": "webhook", "action": {"url": f"{receiver.url}/hooks/deploy"},
                     "requires_approval": True})
    request = await deploys.request_deploy("worker", "production", "v7", "new queue", ALICE)
    await deploys.approve(request.id, BOB)
    (seen,) = receiver.seen
    assert seen.path == "/hooks/deploy"
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["X-Pulser-Signature"] == expected
    assert seen.json() == {"service": "worker", "env": "production", "ref": "v7", "reason": "new queue",
                           "requested_by": ALICE, "approved_by": BOB, "request_id": request.id}


async def test_without_a_signing_secret_no_webhook_is_sent(pool, make_deploys, receiver):
    deploys = make_deploys(secret=None)
    await add(pool, {"name": "worker", "action_type": "webhook", "action": {"url": receiver.url}})
    request = await deploys.request_deploy("worker", "production", "", "", ALICE)
    assert request.status == "trigger_failed"
    assert "PULSER_DEPLOY_WEBHOOK_SECRET is not set" in request.trigger_error
    assert receiver.seen == []


async def test_a_failing_webhook_is_reported_without_its_url(pool, deploys, receiver):
    receiver.status = 502
    url = f"{receiver.url}/hooks/s3cr3t-path-token"
    await add(pool, {"name": "worker", "action_type": "webhook", "action": {"url": url}})
    request = await deploys.request_deploy("worker", "production", "", "", ALICE)
    assert request.trigger_error == "the deploy webhook answered HTTP 502"
    rows = await pool.fetch("SELECT details::text AS d FROM audit_log")
    assert all("s3cr3t" not in r["d"] for r in rows), "the URL's secret part never reaches the audit log"


# --- the "deploy started" event --------------------------------------------------------------------


async def test_a_started_deploy_is_posted_as_a_deploy_started_event(pool, deploys, github):
    await add(pool, github_service(channel="#ops-deploy"))
    request = await deploys.request_deploy("api", "production", "v1.2.0", "hotfix", ALICE)
    (event,) = await started_events(pool)
    assert event["title"] == "Deploy started: api (v1.2.0) to production"
    assert (event["service"], event["env"], event["actor"]) == ("api", "production", ALICE)
    assert event["slack_channel"] == "#ops-deploy"
    assert event["correlation"] == f"deploy-request-{request.id}"
    assert event["render_due_at"] is not None, "due for posting by the event notifier"
    assert event["details"]["reason"] == "hotfix"


# --- the admin API ---------------------------------------------------------------------------------

API_TOKEN = "api-token-for-tests"


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = Runtime(make_settings(DATABASE_URL=database_url, PULSER_ADMIN_TOKEN=API_TOKEN), "sidecar", metrics=Metrics("test"))
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{runtime.http_port}", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
        ) as client:
            yield client, runtime
    finally:
        await runtime.stop()


async def test_the_api_creates_reads_updates_and_deletes_a_service(http):
    client, runtime = http
    created = await client.post("/api/services", json=github_service(requires_approval=True))
    assert created.status_code == 201, created.text
    service = created.json()
    assert created.headers["Location"] == f"/api/services/{service['id']}"
    assert service["description"] == "GitHub workflow deploy.yml in acme/api"

    listed = (await client.get("/api/services")).json()["services"]
    assert [s["name"] for s in listed] == ["api"]

    service["default_env"] = "staging"  # GET → edit → PUT
    updated = await client.put(f"/api/services/{service['id']}", json=service)
    assert updated.status_code == 200, updated.text
    assert updated.json()["default_env"] == "staging"

    assert (await client.delete(f"/api/services/{service['id']}")).status_code == 204
    assert (await client.get(f"/api/services/{service['id']}")).status_code == 404
    actions = await audit.list_actions(runtime.pool, target_type="deploy_service", target_id=service["id"])
    assert [a["action"] for a in reversed(actions)] == [
        "deploy_service.create", "deploy_service.update", "deploy_service.delete",
    ]


async def test_the_api_names_each_bad_field(http):
    client, _ = http
    response = await client.post("/api/services", json={"name": "api", "action_type": "github_workflow",
                                                         "action": {"repo": "api"}})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid service"
    assert set(response.json()["detail"]) == {"action.repo", "action.workflow"}


async def test_the_api_refuses_a_second_service_with_the_same_name(http):
    client, _ = http
    await client.post("/api/services", json=github_service())
    response = await client.post("/api/services", json=github_service("API"))
    assert response.status_code == 409


async def test_the_api_lists_deploy_requests_newest_first(http):
    client, runtime = http
    await client.post("/api/services", json=github_service(requires_approval=True))
    deploys = Deploys(runtime.pool, runtime.events, github_token=None, github_api_url="http://127.0.0.1:9",
                      heroku_client=None, webhook_secret=None)
    try:
        await deploys.request_deploy("api", "staging", "v1", "first", ALICE)
        await deploys.request_deploy("api", "production", "v2", "second", BOB)
    finally:
        await deploys.close()
    response = await client.get("/api/deploys")
    assert [(d["ref"], d["status"]) for d in response.json()["deploys"]] == [
        ("v2", "pending_approval"), ("v1", "pending_approval"),
    ]


async def test_the_api_needs_the_admin_token(http):
    client, _ = http
    response = await client.get("/api/services", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


# --- the Block Kit (pure) ------------------------------------------------------------------------


def a_request(**changes) -> DeployRequest:
    now = datetime.now(timezone.utc)
    fields = dict(
        id=42, service_id=1, service_name="api", env="production", ref="v1.2.0", reason="hotfix", requested_by=ALICE,
        status="pending_approval", decided_by=None, decided_at=None, trigger_error=None, event_id=None,
        created_at=now, updated_at=now,
    )
    return DeployRequest(**{**fields, **changes})


def block_texts(message: dict) -> str:
    texts = []
    for block in message["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", []) if block["type"] == "context"]
    return "\n".join(texts)


def test_a_pending_request_offers_approve_and_reject_for_that_request():
    message = blocks.request_message(a_request(), action="GitHub workflow deploy.yml in acme/api")
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [(blocks.APPROVE, "42"), (blocks.REJECT, "42")]
    assert f"anyone but <@{ALICE}> can approve" in block_texts(message)


def test_a_decided_request_shows_its_outcome_and_no_buttons():
    message = blocks.request_message(
        a_request(status="trigger_failed", decided_by=BOB, trigger_error="GitHub answered 404: Not Found"), action="x"
    )
    assert all(b["type"] != "actions" for b in message["blocks"])
    assert f":x: *Could not start the deploy* — approved by <@{BOB}>: GitHub answered 404: Not Found" in block_texts(message)


def test_user_text_in_a_request_is_shown_not_obeyed():
    message = blocks.request_message(a_request(reason="<!channel> please"), action="x")
    assert "&lt;!channel&gt; please" in block_texts(message)
    assert "<!channel>" not in block_texts(message)


def test_the_confirmation_form_is_prefilled_and_carries_the_service():
    view = blocks.confirm_modal(service="api", action="GitHub workflow deploy.yml in acme/api", env="staging",
                                ref="main", ref_hint="hint", requires_approval=True, metadata={"service": "api"})
    inputs = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert inputs == {"env": "staging", "ref": "main", "reason": None}
    assert json.loads(view["private_metadata"]) == {"service": "api"}
    assert view["submit"]["text"] == "Request approval"


def test_form_errors_land_on_the_fields_that_show_them():
    assert blocks.form_errors({"env": "required", "ref": "bad", "service": "gone"}) == {
        "env": "required gone", "ref": "bad",
    }
