"""Who may change Pulser from Slack, end to end.

A member who is not an admin (admins are PULSER_ADMINS and the workspace's admins and owners, as
users.info says) tries every admin action there is — by command, by button, and by a crafted
`view_submission` for a form they could never open — against a running `pulser run` (the real
Bolt app over Socket Mode against the sandbox, a real Postgres, a fake Heroku and a fake GitHub).
Each attempt gets a clear no that says who may do it, and nothing changes: every stored row is as
it was (the audit log only gains the record of the refused attempt), Slack shows nothing new but
the refusal, and neither Heroku nor GitHub is called. Absence is asserted only after the envelope's
ledger row is `processed`, i.e. after the listener has returned.

Decision: a refused attempt may be audited (`<action>_refused`, by the member) — that is how an
admin later sees who tried; every other audit entry would be a change and fails the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Callable

import pytest
from aiohttp import web

from alerts.applications import validate_application
from alerts.deploys import create_service
from alerts.heartbeat_writer import HeartbeatEvent
from alerts.normalized import SEVERITIES, SOURCE_NAMES, NormalizedAlert
from alerts.routing import RoutingRule, validate_rule
from blocks import applications as apps_ui
from blocks import deploys as deploys_ui
from blocks import heroku as heroku_ui
from blocks import home as home_ui
from blocks import rules as rules_ui
from blocks import silences as silences_ui
from blocks.incidents import PAUSE_MONITORING, ROLLBACK
from storage import applications, platform_events, routing_rules, silences
from tests.conftest import eventually, handled, make_settings
from tests.fake_heroku import FakeHeroku

ADMIN = "U0ADA"  # a workspace admin, as users.info says
LISTED = "U0ROOT"  # an admin by PULSER_ADMINS only
MEMBER = "U0BOB"  # an ordinary member: every attempt below is theirs
REQUESTER = "U0ALICE"  # an ordinary member who asks for deploys
OPS, ALERTS, DEPLOYS = "C0OPS", "C0ALERTS", "C0DEPLOY"

# Tables whose rows a refused attempt must leave exactly as they were. (The envelope ledger and the
# Slack delivery log record traffic, not state; Heroku's polled state belongs to the poller.)
STATE_TABLES = (
    "applications", "heartbeats", "notifications", "routing_rules", "incidents", "incident_messages",
    "alert_occurrences", "silences", "inhibition_rules", "heroku_settings", "event_routes",
    "deploy_services", "deploy_requests",
)
# Slack calls a refusal may make: Bolt's token check, the admin check, an ephemeral to the member
# and a notice modal (which views.open may only be: checked below).
QUIET_CALLS = {"auth.test", "users.info", "chat.postEphemeral", "views.open"}


class Recorder:
    """Stands in for GitHub's workflow_dispatch and a deploy webhook: answers 204, records each call."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        return web.Response(status=204)


@pytest.fixture
async def github() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    await recorder.start()
    yield recorder
    await recorder.stop()


@pytest.fixture
async def heroku() -> AsyncIterator[FakeHeroku]:
    server = FakeHeroku()
    await server.start()
    server.add_app("shop-api")
    server.add_release("shop-api", 42, description="Deploy 4242424")
    server.add_release("shop-api", 43, description="Deploy 4343434", current=True)
    yield server
    await server.stop()


@pytest.fixture
def settings(database_url, sandbox, github, heroku):
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(LISTED, name="root")
    sandbox.set_user(MEMBER, name="bob")
    sandbox.set_user(REQUESTER, name="alice")
    sandbox.add_channel(OPS, "ops")
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.add_channel(DEPLOYS, "ops-deploy")
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        SLACK_CHANNEL="#ops-alerts",
        PULSER_ADMINS=LISTED,
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        HEROKU_API_KEY=heroku.api_key,
        HEROKU_API_URL=heroku.base_url,
        GITHUB_API_URL=github.url,
        GITHUB_TOKEN="ghp-test-token",
    )


# --- what there is to change ----------------------------------------------------------------------


@dataclass
class World:
    app: applications.Application  # registered and watched
    paused: applications.Application  # registered, monitoring paused
    rules: list[dict]  # two routing rules, in order
    silence_id: int
    service_id: int  # deploy service "api" (GitHub workflow, requires approval)
    request_id: int  # REQUESTER's deploy of "api", waiting for approval
    alert: dict  # the posted message of "nightly-backup"'s heartbeat incident: app_id, slack_channel, slack_ts
    deploy_message: dict  # the posted Heroku deploy message with its Rollback button


async def register_app(pool, name: str) -> applications.Application:
    spec = validate_application({"name": name, "expected_interval": 3600, "channel": "#ops-alerts"}, default_channel="#ops-alerts")
    return await applications.create_application(pool, spec, created_by=ADMIN)


@pytest.fixture
async def world(pulser, sandbox, heroku) -> World:
    pool = pulser.pool
    app = await register_app(pool, "billing-cron")
    paused = await register_app(pool, "old-cron")
    await applications.set_active(pool, paused.id, False)
    rules = [
        await routing_rules.create_rule(pool, validate_rule({"name": name, "services": name, "channel": "#ops-alerts"}).as_row(), created_by=ADMIN)
        for name in ("api", "web")
    ]
    silence = await silences.create_silence(
        pool, matchers=[{"name": "service", "op": "=", "value": "db"}], starts_at=None,
        ends_at=datetime.now(timezone.utc) + timedelta(hours=2), comment="migration", created_by=ADMIN,
    )
    await platform_events.set_route(pool, "ci", "#ops-alerts", updated_by=ADMIN)
    service = await create_service(
        pool,
        {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"},
         "requires_approval": True, "channel": "#ops-deploy"},
        user=ADMIN,
    )
    request = await pulser.deploys.create_request("api", "production", "v2.0.0", "new checkout", REQUESTER)

    backup = await register_app(pool, "nightly-backup")
    await pulser.heartbeat_writer.submit(HeartbeatEvent(backup.uuid, "fail", 1, datetime.now(timezone.utc)))
    alert = await eventually(lambda: _sent_alert(pool, backup), timeout=30)

    v42 = next(r for r in heroku.releases_of("shop-api") if r["version"] == 42)
    await pulser.pipeline.ingest(NormalizedAlert(
        source="heroku", source_event_id="release-43", service="shop-api", env="production", severity="info",
        fingerprint="deploy:shop-api:43", title="shop-api deployed v43", description="",
        occurred_at=datetime.now(timezone.utc),
        tags={"kind": "deploy", "app": "shop-api", "rollback_target_id": v42["id"], "rollback_target_version": "42"},
    ))
    deploy_message = (await eventually(
        lambda: [m for m in sandbox.messages.get(ALERTS, []) if ROLLBACK in json.dumps(m.get("attachments"))], timeout=30
    ))[0]
    await eventually(lambda: _outboxes_drained(pool), timeout=30)
    # The Heroku poller's first tick (a second after start) stores the environment's settings;
    # stored here first, so that row is not taken for the member's doing (MOVED_BY_TIME has the rest).
    await pulser.heroku.settings()
    return World(app, paused, rules, silence["id"], service.id, request.id, alert, deploy_message)


async def _sent_alert(pool, app):
    row = await pool.fetchrow(
        """
        SELECT m.slack_channel, m.slack_ts FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE i.labels->>'heartbeat.app_id' = $1 AND m.slack_ts IS NOT NULL
        """,
        str(app.id),
    )
    return {"app_id": app.id, **dict(row)} if row else None


async def _outboxes_drained(pool) -> bool:
    """Nothing left to post or update: the state is still until someone acts."""
    pending = await pool.fetchval(
        "SELECT (SELECT count(*) FROM notifications WHERE status = 'pending')"
        " + (SELECT count(*) FROM incident_messages WHERE render_due_at IS NOT NULL)"
        " + (SELECT count(*) FROM platform_events WHERE render_due_at IS NOT NULL)"
    )
    return pending == 0


# --- the attempts ---------------------------------------------------------------------------------


def command(text: str, slash: str = "/pulser") -> Callable:
    return lambda sb, w, user: sb.slash_command_envelope(command=slash, text=text, user_id=user, channel_id=OPS)


def click(action_id: str, value: Callable[[World], str] = lambda w: "", channel: str = OPS) -> Callable:
    """A button on an ephemeral list (no stored message: lists are ephemeral)."""
    return lambda sb, w, user: sb.block_action_envelope(action_id, value=value(w), user_id=user, channel_id=channel)


def click_on_alert(sb, w: World, user: str) -> dict:
    return sb.block_action_envelope(
        PAUSE_MONITORING, value=str(w.alert["app_id"]), user_id=user,
        channel_id=w.alert["slack_channel"], message_ts=w.alert["slack_ts"],
    )


def click_rollback(sb, w: World, user: str) -> dict:
    message = w.deploy_message
    for block in [b for a in message.get("attachments") or [] for b in a.get("blocks") or []]:
        for element in block.get("elements") or []:
            if element.get("action_id") == ROLLBACK:
                return sb.block_action_envelope(
                    ROLLBACK, value=element["value"], user_id=user, channel_id=message["channel"],
                    message_ts=message["ts"], block_id=block["block_id"],
                )
    raise AssertionError("no Rollback button on the deploy message")


def click_on_home(action_id: str) -> Callable:
    return lambda sb, w, user: sb.block_action_envelope(action_id, value=action_id, user_id=user, channel_id=None, view_id="VHOME")


def prefilled(view: dict) -> dict:
    """The state Slack would submit for `view` as it opened: each input's initial value."""
    values: dict = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        state: dict = {"type": element["type"]}
        if element["type"] in ("static_select",):
            state["selected_option"] = element.get("initial_option")
        elif element["type"] == "checkboxes":
            state["selected_options"] = element.get("initial_options", [])
        elif element["type"] == "conversations_select":
            state["selected_conversation"] = element.get("initial_conversation")
        else:
            state["value"] = element.get("initial_value")
        values[block["block_id"]] = {element["action_id"]: state}
    return values


def typed(values: dict, **texts: str) -> dict:
    """The form after someone typed `texts` (block id → text) into it."""
    for block, text in texts.items():
        values[block][block]["value"] = text
    return values


def chosen(values: dict, block: str, value: str) -> dict:
    values[block][block]["selected_option"] = {"text": {"type": "plain_text", "text": value}, "value": value}
    return values


def submission(build_view: Callable[[World], dict], fill: Callable[[dict, World], dict]) -> Callable:
    """A crafted submission of the modal `build_view` makes (the form an admin would get), filled
    in by `fill`, sent by `user` — who may never have been shown it."""

    def envelope(sb, w: World, user: str) -> dict:
        view = build_view(w)
        return sb.view_submission_envelope(
            view["callback_id"], fill(prefilled(view), w), user_id=user, private_metadata=view["private_metadata"]
        )

    return envelope


def register_form(w: World) -> dict:
    return apps_ui.register_modal(default_channel="#ops-alerts", metadata={"channel_id": OPS}, name="forged-app")


def app_edit_form(w: World) -> dict:
    return apps_ui.edit_modal(app=w.app, metadata={"app_id": w.app.id, "channel_id": OPS})


def rule_form(w: World, rule: dict | None = None) -> dict:
    metadata = {"channel_id": OPS, **({"rule_id": rule["id"]} if rule else {})}
    return rules_ui.rule_modal(
        metadata=metadata, severities=SEVERITIES, source_names=SOURCE_NAMES,
        rule=RoutingRule.from_row(rule) if rule else None,
    )


def heroku_form(w: World) -> dict:
    return heroku_ui.config_modal(apps=["shop-api"], channel="#ops-alerts", interval_minutes=5, metadata={"channel_id": OPS})


def service_form(w: World, service_id: int | None = None) -> dict:
    service = None
    if service_id is not None:
        service = {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"},
                   "default_env": "production", "requires_approval": True, "channel": "#ops-deploy"}
    return deploys_ui.service_modal(service=service, metadata={"service_id": service_id, "channel_id": OPS})


def new_service(values: dict, w: World) -> dict:
    values = typed(values, service_name="forged", github_repo="acme/forged", github_workflow="deploy.yml")
    return chosen(values, "action_type", "github_workflow")


COMMANDS = [
    ("register an app", command("register")),
    ("create a silence", command("silence service=api 1h maintenance")),
    ("expire a silence", lambda sb, w, user: command(f"silence expire {w.silence_id}")(sb, w, user)),
    ("route an event type", command("events route deploy #ops-deploy")),
    ("reset an event route", command("events route ci default")),
    ("add a deploy service", command("deploy add forged")),
    ("edit a deploy service", command("deploy edit api")),
    ("remove a deploy service", command("deploy remove api")),
    ("open the Heroku settings", command("config", slash="/heroku-status")),
]
BUTTONS = [
    ("pause an app", click(apps_ui.PAUSE, lambda w: str(w.app.id))),
    ("resume an app", click(apps_ui.RESUME, lambda w: str(w.paused.id))),
    ("open an app's edit form", click(apps_ui.EDIT, lambda w: str(w.app.id))),
    ("delete an app", click(apps_ui.DELETE, lambda w: str(w.app.id))),
    ("pause monitoring from an alert", click_on_alert),
    ("open the add-rule form", click(rules_ui.ADD, lambda w: "add")),
    ("open a rule's edit form", click(rules_ui.EDIT, lambda w: str(w.rules[0]["id"]))),
    ("delete a rule", click(rules_ui.DELETE, lambda w: str(w.rules[0]["id"]))),
    ("move a rule up", click(rules_ui.MOVE_UP, lambda w: str(w.rules[1]["id"]))),
    ("move a rule down", click(rules_ui.MOVE_DOWN, lambda w: str(w.rules[0]["id"]))),
    ("expire a silence", click(silences_ui.EXPIRE, lambda w: str(w.silence_id))),
    ("roll back a Heroku deploy", click_rollback),
    ("approve a deploy", click(deploys_ui.APPROVE, lambda w: str(w.request_id), channel=DEPLOYS)),
    ("reject a deploy", click(deploys_ui.REJECT, lambda w: str(w.request_id), channel=DEPLOYS)),
    ("open the add-service form", click(deploys_ui.ADD_SERVICE, lambda w: "add")),
    ("open a service's edit form", click(deploys_ui.EDIT_SERVICE, lambda w: str(w.service_id))),
    ("register an app from Home", click_on_home(home_ui.REGISTER_APP)),
    ("open the Heroku settings from Home", click_on_home(home_ui.HEROKU_SETTINGS)),
]
SUBMISSIONS = [
    ("register an app", submission(register_form, lambda v, w: typed(v, interval="5m"))),
    ("edit an app", submission(app_edit_form, lambda v, w: typed(v, name="renamed-by-bob"))),
    ("add a rule", submission(rule_form, lambda v, w: typed(v, name="forged", channel="#forged"))),
    ("edit a rule", submission(lambda w: rule_form(w, w.rules[0]), lambda v, w: typed(v, channel="#forged"))),
    ("change the Heroku settings", submission(heroku_form, lambda v, w: typed(v, apps="shop-api\nforged-app"))),
    ("add a deploy service", submission(service_form, new_service)),
    ("edit a deploy service", submission(lambda w: service_form(w, w.service_id), lambda v, w: typed(v, github_workflow="forged.yml"))),
]
ATTEMPTS = (
    [pytest.param(build, id=f"command: {name}") for name, build in COMMANDS]
    + [pytest.param(build, id=f"button: {name}") for name, build in BUTTONS]
    + [pytest.param(build, id=f"modal: {name}") for name, build in SUBMISSIONS]
)


# --- watching what changed ------------------------------------------------------------------------


# Columns Pulser's own timers change whatever anyone clicks (the Heroku poller's first cycle runs a
# second after start, maybe between the two snapshots of a test).
MOVED_BY_TIME = {"heroku_settings": ("last_cycle_at",)}


async def stored_state(pool) -> dict[str, list]:
    """Every row of every table a change would touch, plus the audit log and its action events."""
    state = {}
    for table in STATE_TABLES:
        ignored = "".join(f" - '{column}'" for column in MOVED_BY_TIME.get(table, ()))
        rows = await pool.fetch(f"SELECT (to_jsonb(t){ignored})::text AS row FROM {table} t ORDER BY 1")
        state[table] = [r["row"] for r in rows]
    state["audit_log"] = [dict(r) for r in await pool.fetch("SELECT id, actor, action FROM audit_log ORDER BY id")]
    events = await pool.fetch("SELECT to_jsonb(t)::text AS row FROM platform_events t WHERE event_type <> 'action' ORDER BY 1")
    state["platform_events"] = [r["row"] for r in events]
    return state


@dataclass
class Snapshot:
    state: dict
    calls: int
    response_posts: int
    views: set
    heroku_requests: int
    github_requests: int


async def snapshot(pulser, sandbox, heroku, github) -> Snapshot:
    return Snapshot(
        await stored_state(pulser.pool), len(sandbox.calls), len(sandbox.response_url_posts), set(sandbox.views),
        len(heroku.requests), len(github.requests),
    )


def answer_text(ack: dict, sandbox, before: Snapshot) -> str:
    """What the member was told: the ack (commands, inline modal errors), a response_url post or an
    ephemeral (clicks), or a notice modal (clicks on Home, which has nowhere else to answer)."""
    payload = ack.get("payload") or {}
    parts = [json.dumps(payload, ensure_ascii=False)]
    parts += [json.dumps(body, ensure_ascii=False) for _, body in sandbox.response_url_posts[before.response_posts:]]
    parts += [json.dumps(e, ensure_ascii=False) for e in sandbox.ephemerals if e.get("user") == MEMBER]
    parts += [json.dumps(v, ensure_ascii=False) for k, v in sandbox.views.items() if k not in before.views]
    return "\n".join(parts)


def told_no(text: str) -> bool:
    return "Only Pulser admins can" in text and "PULSER_ADMINS" in text


async def attempt(pulser, sandbox, heroku, github, world: World, build, user: str = MEMBER) -> tuple[dict, Snapshot]:
    """Send `user`'s attempt; returns the ack and the snapshot taken just before it."""
    envelope = build(sandbox, world, user)
    before = await snapshot(pulser, sandbox, heroku, github)
    ack = await sandbox.send_envelope(envelope, timeout=10)
    # The refusal comes in the ack or right after it; then the listener returns and its row is processed.
    await eventually(lambda: told_no(answer_text(ack, sandbox, before)), timeout=30)
    await handled(pulser.pool, envelope)
    return ack, before


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", ATTEMPTS)
async def test_a_member_is_told_only_admins_may_and_nothing_changes(pulser, sandbox, heroku, github, world, build):
    ack, before = await attempt(pulser, sandbox, heroku, github, world, build)
    after = await snapshot(pulser, sandbox, heroku, github)

    refusals = after.state["audit_log"][len(before.state["audit_log"]):]
    assert all(entry["actor"] == MEMBER and entry["action"].endswith("_refused") for entry in refusals), refusals
    assert {k: v for k, v in after.state.items() if k != "audit_log"} == {
        k: v for k, v in before.state.items() if k != "audit_log"
    }, "a stored row changed"
    assert after.state["audit_log"][: len(before.state["audit_log"])] == before.state["audit_log"]

    new_calls = sandbox.calls[before.calls:]
    assert {c.method for c in new_calls} <= QUIET_CALLS, [c.method for c in new_calls]
    assert all(c.params.get("user") == MEMBER for c in new_calls if c.method == "chat.postEphemeral")
    opened = [sandbox.views[k] for k in set(sandbox.views) - before.views]
    assert all(v.get("callback_id") == home_ui.NOTICE_CALLBACK for v in opened), "no admin form opened"
    posts = [body for _, body in sandbox.response_url_posts[before.response_posts:]]
    assert all(body.get("replace_original") is not True for body in posts), "the clicked list stays as it was"
    payload = ack.get("payload") or {}
    if payload.get("response_action") is not None:
        assert payload["response_action"] == "errors", "the modal stays open, saying why"

    assert heroku.requests[before.heroku_requests:] == [] and github.requests[before.github_requests:] == []


@pytest.mark.parametrize("build", [pytest.param(build, id=name) for name, build in SUBMISSIONS])
async def test_the_same_crafted_submission_from_an_admin_is_saved(pulser, sandbox, heroku, github, world, build):
    """The forged forms above are valid: from an admin each one changes something."""
    before = await stored_state(pulser.pool)
    envelope = build(sandbox, world, LISTED)
    ack = await sandbox.send_envelope(envelope, timeout=10)
    assert (ack.get("payload") or {}).get("response_action") is None, ack
    await handled(pulser.pool, envelope)
    assert await stored_state(pulser.pool) != before


async def test_a_requester_cannot_approve_their_own_deploy_even_as_an_admin(pulser, sandbox, heroku, github, world):
    request = await pulser.deploys.create_request("api", "production", "v2.1.0", "hotfix", LISTED)
    before = await snapshot(pulser, sandbox, heroku, github)
    envelope = sandbox.block_action_envelope(deploys_ui.APPROVE, value=str(request.id), user_id=LISTED, channel_id=DEPLOYS)
    await sandbox.send_envelope(envelope, timeout=10)
    told = await eventually(lambda: sandbox.response_url_posts[before.response_posts:], timeout=30)
    assert "someone else has to approve it" in json.dumps(told[0][1])
    await handled(pulser.pool, envelope)
    assert (await pulser.deploys.get_request(request.id)).status == "pending_approval"
    assert github.requests[before.github_requests:] == []
    assert [(e["actor"], e["action"]) for e in (await stored_state(pulser.pool))["audit_log"][len(before.state["audit_log"]):]] == [
        (LISTED, "deploy.approve_refused"),
    ]


async def test_another_admin_approves_the_deploy_and_it_starts(pulser, sandbox, heroku, github, world):
    envelope = sandbox.block_action_envelope(deploys_ui.APPROVE, value=str(world.request_id), user_id=ADMIN, channel_id=DEPLOYS)
    await sandbox.send_envelope(envelope, timeout=10)
    await handled(pulser.pool, envelope)
    assert (await pulser.deploys.get_request(world.request_id)).status == "triggered"
    assert github.requests == [("POST", "/repos/acme/api/actions/workflows/deploy.yml/dispatches")]


async def test_a_requester_who_is_not_an_admin_may_still_withdraw_their_own_request(pulser, sandbox, world):
    envelope = sandbox.block_action_envelope(deploys_ui.REJECT, value=str(world.request_id), user_id=REQUESTER, channel_id=DEPLOYS)
    await sandbox.send_envelope(envelope, timeout=10)
    await handled(pulser.pool, envelope)
    assert (await pulser.deploys.get_request(world.request_id)).status == "rejected"
