"""The Slack sandbox against the real slack_sdk AsyncWebClient and slack-bolt AsyncApp.

No mocks: every test runs the actual SDK/Bolt code over loopback, because the point of the
sandbox is that the bot cannot tell it from Slack. One behaviour per test.
"""

from __future__ import annotations

import asyncio
import json
from html.parser import HTMLParser
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SlackSandbox

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

BOT_TOKEN = SlackSandbox.BOT_TOKEN
APP_TOKEN = SlackSandbox.APP_TOKEN
# Small ping interval: the SDK only notices a reset socket on its next monitor tick.
PING_INTERVAL = 1

Connect = Callable[[AsyncApp], Awaitable[AsyncSocketModeHandler]]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk picks up proxy variables (and ignores NO_PROXY); the sandbox is on loopback."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "")


@pytest_asyncio.fixture
async def sb() -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def web(sb: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=sb.api_url)


@pytest_asyncio.fixture
async def app(web: AsyncWebClient) -> AsyncApp:
    return AsyncApp(client=web)


@pytest_asyncio.fixture
async def connect(sb: SlackSandbox) -> AsyncIterator[Connect]:
    """Connect a Bolt app over Socket Mode; every handler is closed after the test."""
    handlers: list[AsyncSocketModeHandler] = []

    async def _connect(bolt_app: AsyncApp) -> AsyncSocketModeHandler:
        handler = AsyncSocketModeHandler(bolt_app, APP_TOKEN, ping_interval=PING_INTERVAL)
        handlers.append(handler)
        await handler.connect_async()
        await sb.wait_for_connection(timeout=30)
        return handler

    yield _connect
    for handler in handlers:
        await handler.close_async()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def pulser_command(bolt_app: AsyncApp) -> list[dict]:
    """Register a /pulser handler that acks ephemerally; returns the list of bodies it saw."""
    seen: list[dict] = []

    @bolt_app.command("/pulser")
    async def _pulser(ack, body):
        seen.append(body)
        await ack(text=f"Pulser is up ({body['text']})", response_type="ephemeral")

    return seen


def answering(bolt_app: AsyncApp, text: str) -> AsyncApp:
    """Register a /pulser handler that acks with a fixed text."""

    @bolt_app.command("/pulser")
    async def _pulser(ack):
        await ack(text=text)

    return bolt_app


# ---- Web API ---------------------------------------------------------------------------


async def test_post_message_then_update_edits_it_in_place(sb: SlackSandbox, web: AsyncWebClient) -> None:
    posted = await web.chat_postMessage(channel="C0OPS", text="deploying", blocks=[{"type": "divider"}])
    updated = await web.chat_update(channel="C0OPS", ts=posted["ts"], text="deployed")

    assert posted["message"]["bot_id"] == sb.bot_id and posted["message"]["user"] == sb.bot_user_id
    assert updated["ts"] == posted["ts"] and updated["text"] == "deployed"
    [msg] = sb.messages["C0OPS"]
    assert (msg["text"], msg["edits"], msg["blocks"]) == ("deployed", 1, [{"type": "divider"}])


async def test_message_timestamps_are_unique_and_increasing(web: AsyncWebClient) -> None:
    # Five channels: one channel takes a burst of four posts before Slack's 1/s limit holds it.
    stamps = [(await web.chat_postMessage(channel=f"C0CH{i}", text=str(i)))["ts"] for i in range(5)]

    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5


async def test_post_message_without_channel_is_channel_not_found(web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web.api_call("chat.postMessage", json={"text": "hi"})

    assert err.value.response["error"] == "channel_not_found"


async def test_post_message_without_text_or_blocks_is_no_text(web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web.api_call("chat.postMessage", json={"channel": "C0OPS"})

    assert err.value.response["error"] == "no_text"


async def test_update_of_unknown_ts_is_message_not_found(web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web.chat_update(channel="C0OPS", ts="1.000100", text="x")

    assert err.value.response["error"] == "message_not_found"


async def test_app_token_on_a_bot_method_is_invalid_auth(sb: SlackSandbox) -> None:
    wrong = AsyncWebClient(token=APP_TOKEN, base_url=sb.api_url)

    with pytest.raises(SlackApiError) as err:
        await wrong.auth_test()

    assert err.value.response["error"] == "invalid_auth"


async def test_bot_token_cannot_open_a_socket_mode_connection(web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web.apps_connections_open(app_token=BOT_TOKEN)

    assert err.value.response["error"] == "invalid_auth"


async def test_missing_token_is_not_authed(sb: SlackSandbox) -> None:
    anonymous = AsyncWebClient(base_url=sb.api_url)

    with pytest.raises(SlackApiError) as err:
        await anonymous.auth_test()

    assert err.value.response["error"] == "not_authed"


async def test_auth_test_describes_the_bot_and_sends_scopes(sb: SlackSandbox, web: AsyncWebClient) -> None:
    resp = await web.auth_test()

    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == (sb.bot_user_id, sb.bot_id, sb.team_id)
    assert "chat:write" in resp.headers["x-oauth-scopes"]


async def test_calls_are_recorded_with_params_and_token(sb: SlackSandbox, web: AsyncWebClient) -> None:
    await web.chat_postMessage(channel="C0OPS", text="hello")

    [call] = await sb.wait_for_call("chat.postMessage")
    assert call.params == {"channel": "C0OPS", "text": "hello"} and call.token == BOT_TOKEN


async def test_unknown_method_is_reported(web: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web.api_call("pulser.nonsense")

    assert err.value.response["error"] == "unknown_method"


async def test_bad_json_body_is_invalid_json(sb: SlackSandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(
        sb.api_url + "chat.postMessage",
        data=b"{not json",
        headers={"Authorization": f"Bearer {BOT_TOKEN}", "Content-Type": "application/json"},
    ) as resp:
        body = await resp.json()

    assert resp.status == 200 and body == {"ok": False, "error": "invalid_json"}


async def test_users_info_knows_registered_users_only(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.set_user("U0BOB", name="bob", real_name="Bob B", is_admin=True, tz="Europe/Paris")

    bob = (await web.users_info(user="U0BOB"))["user"]
    with pytest.raises(SlackApiError) as err:
        await web.users_info(user="U0NOBODY")

    assert (bob["name"], bob["is_admin"], bob["tz"]) == ("bob", True, "Europe/Paris")
    assert err.value.response["error"] == "user_not_found"


async def test_conversations_info_uses_registered_names(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.add_channel("C0OPS", "ops-alerts")

    named = (await web.conversations_info(channel="C0OPS"))["channel"]
    unnamed = (await web.conversations_info(channel="C0XYZ"))["channel"]

    assert named["name"] == "ops-alerts" and unnamed["name"] == "c0xyz" and unnamed["is_channel"]


async def test_views_open_without_trigger_id_is_invalid_arguments(web: AsyncWebClient) -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Silence"}, "blocks": []}

    with pytest.raises(SlackApiError) as err:
        await web.api_call("views.open", json={"view": modal})

    assert err.value.response["error"] == "invalid_arguments"


async def test_views_open_then_update_by_view_id(sb: SlackSandbox, web: AsyncWebClient) -> None:
    modal = {"type": "modal", "callback_id": "silence", "title": {"type": "plain_text", "text": "Silence"}, "blocks": []}

    opened = (await web.views_open(trigger_id="1.2.abc", view=modal))["view"]
    updated = (await web.views_update(view_id=opened["id"], view={**modal, "private_metadata": "v2"}))["view"]

    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert sb.views[opened["id"]]["private_metadata"] == "v2"


async def test_views_publish_records_the_home_tab_per_user(sb: SlackSandbox, web: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "All quiet"}}]}

    view = (await web.views_publish(user_id="U0ALICE", view=home))["view"]

    assert sb.home_views["U0ALICE"]["id"] == view["id"] and sb.views[view["id"]]["type"] == "home"


async def test_reset_clears_recordings(sb: SlackSandbox, web: AsyncWebClient) -> None:
    await web.chat_postMessage(channel="C0OPS", text="hello")

    sb.reset()

    assert sb.calls == [] and sb.messages == {}


# ---- Fault injection on the Web API ----------------------------------------------------


async def test_fail_next_429_raises_with_retry_after_then_recovers(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.fail_next("chat.postMessage", status=429, retry_after=1)

    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C0OPS", text="hi")
    await web.chat_postMessage(channel="C0OPS", text="hi")

    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "1"
    assert len(sb.messages["C0OPS"]) == 1


async def test_fail_next_500_is_internal_error(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.fail_next("chat.postMessage", status=500)

    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel="C0OPS", text="hi")

    assert (err.value.response.status_code, err.value.response["error"]) == (500, "internal_error")


async def test_fail_next_at_http_200_is_a_plain_slack_error(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.fail_next("chat.postMessage", status=200, error="channel_not_found", times=2)

    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await web.chat_postMessage(channel="C0OPS", text="hi")
        assert (err.value.response.status_code, err.value.response["error"]) == (200, "channel_not_found")
    assert (await web.chat_postMessage(channel="C0OPS", text="hi"))["ok"]


# ---- Socket Mode with a real Bolt app --------------------------------------------------


async def test_slash_command_ack_payload_comes_back(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    pulser_command(app)
    await connect(app)

    ack = await sb.send_slash_command(text="status")

    assert ack["payload"] == {"text": "Pulser is up (status)", "response_type": "ephemeral"}


async def test_slash_command_payload_has_the_documented_fields(
    sb: SlackSandbox, app: AsyncApp, connect: Connect
) -> None:
    seen = pulser_command(app)
    await connect(app)

    await sb.send_slash_command(text="help", user_id="U0ALICE", channel_id="C0OPS")

    [body] = seen
    assert body["team_id"] == sb.team_id and body["api_app_id"] == sb.app_id
    assert body["is_enterprise_install"] == "false" and body["trigger_id"]
    assert body["response_url"].startswith(sb.base_url + "/hooks/")


async def test_respond_posts_to_the_sandbox_response_url(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    @app.command("/pulser")
    async def _pulser(ack, respond):
        await ack()
        await respond(text="done", response_type="in_channel")

    await connect(app)
    await sb.send_slash_command()
    await sb.state.changed.wait_until(lambda: bool(sb.response_url_posts), timeout=3)

    [(hook_id, body)] = sb.response_url_posts
    assert body == {"text": "done", "response_type": "in_channel"}


async def test_same_envelope_twice_gets_two_acks(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    seen = pulser_command(app)
    await connect(app)
    envelope = sb.slash_command_envelope(text="status")

    acks = await asyncio.gather(sb.send_envelope(envelope), sb.send_envelope(envelope))

    assert [a["envelope_id"] for a in acks] == [envelope["envelope_id"]] * 2
    assert len(seen) == 2  # the sandbox does not dedupe; that is the bot's job


async def test_view_submission_errors_ack(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    @app.view("silence")
    async def _silence(ack, view):
        minutes = view["state"]["values"]["dur"]["minutes"]["value"]
        if not minutes.isdigit():
            await ack(response_action="errors", errors={"dur": "Minutes must be a number"})
        else:
            await ack()

    await connect(app)
    values = {"dur": {"minutes": {"type": "plain_text_input", "value": "soon"}}}

    ack = await sb.send_view_submission(callback_id="silence", values=values)

    assert ack["payload"] == {"response_action": "errors", "errors": {"dur": "Minutes must be a number"}}


async def test_view_submission_reuses_the_view_the_bot_opened(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect
) -> None:
    modal = {"type": "modal", "callback_id": "silence", "private_metadata": "C0OPS", "title": {"type": "plain_text", "text": "Silence"}}
    opened = (await web.views_open(trigger_id="1.2.abc", view=modal))["view"]
    seen: list[dict] = []

    @app.view("silence")
    async def _silence(ack, view):
        seen.append(view)
        await ack()

    await connect(app)
    await sb.send_view_submission(callback_id="silence", values={}, view_id=opened["id"])

    assert seen[0]["id"] == opened["id"] and seen[0]["private_metadata"] == "C0OPS"


async def test_block_action_carries_the_stored_message(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect
) -> None:
    posted = await web.chat_postMessage(channel="C0OPS", text="Alert firing")
    clicks: list[dict] = []

    @app.action("ack_alert")
    async def _ack_alert(ack, body):
        clicks.append(body)
        await ack()

    await connect(app)
    ack = await sb.send_block_action(action_id="ack_alert", value="alert-1", channel_id="C0OPS", message_ts=posted["ts"])

    assert ack == {"envelope_id": ack["envelope_id"]}
    [body] = clicks
    assert body["message"]["text"] == "Alert firing" and body["actions"][0]["value"] == "alert-1"
    assert body["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C0OPS", "is_ephemeral": False}


async def test_block_action_in_the_home_tab_carries_the_view(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect
) -> None:
    home = {"type": "home", "blocks": [{"type": "actions", "elements": [{"type": "button", "action_id": "refresh", "text": {"type": "plain_text", "text": "Refresh"}}]}]}
    published = (await web.views_publish(user_id="U0ALICE", view=home))["view"]
    clicks: list[dict] = []

    @app.action("refresh")
    async def _refresh(ack, body):
        clicks.append(body)
        await ack()

    await connect(app)
    await sb.send_block_action(action_id="refresh", user_id="U0ALICE", view_id=published["id"])

    assert clicks[0]["container"] == {"type": "view", "view_id": published["id"]}
    assert clicks[0]["view"]["blocks"] == home["blocks"]


async def test_app_home_opened_event_reaches_the_listener(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    opened = asyncio.Event()
    seen: list[dict] = []

    @app.event("app_home_opened")
    async def _home(event):
        seen.append(event)
        opened.set()

    await connect(app)
    ack = await sb.send_event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home"})
    await asyncio.wait_for(opened.wait(), timeout=3)

    assert "payload" not in ack
    assert seen[0]["user"] == "U0ALICE"


async def test_event_retry_attempt_reaches_bolt_as_a_header(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    retries: asyncio.Queue = asyncio.Queue()

    @app.event("app_mention")
    async def _mention(request):
        retries.put_nowait(request.headers.get("x-slack-retry-num"))

    await connect(app)
    event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0OPS", "text": "hi"}
    await sb.send_event(event, retry_attempt=1, retry_reason="timeout")

    assert await asyncio.wait_for(retries.get(), timeout=3) == ["1"]


@pytest.mark.parametrize("mode", ["close", "reset", "disconnect"])
async def test_dropped_connection_is_reopened(sb: SlackSandbox, app: AsyncApp, connect: Connect, mode: str) -> None:
    pulser_command(app)
    await connect(app)
    opened, open_calls = sb.connections_opened, sb.connections_open_calls

    await sb.drop_connections(mode=mode)
    await sb.wait_for_connection(timeout=5, newer_than=opened)
    ack = await sb.send_slash_command(text="after")

    assert sb.connections_opened > opened and sb.connections_open_calls > open_calls
    assert ack["payload"]["text"] == "Pulser is up (after)"


async def test_killed_url_answers_401_and_a_new_url_works(sb: SlackSandbox, http: aiohttp.ClientSession) -> None:
    app_client = AsyncWebClient(token=APP_TOKEN, base_url=sb.api_url)
    old_url = (await app_client.apps_connections_open(app_token=APP_TOKEN))["url"]

    sb.kill_issued_urls()
    new_url = (await app_client.apps_connections_open(app_token=APP_TOKEN))["url"]

    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await http.ws_connect(old_url)
    assert err.value.status == 401
    async with http.ws_connect(new_url) as ws:
        hello = json.loads((await ws.receive()).data)
    assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == sb.app_id


async def test_bolt_recovers_after_its_url_is_killed(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    pulser_command(app)
    await connect(app)
    opened = sb.connections_opened

    sb.kill_issued_urls()
    await sb.wait_for_connection(timeout=5, newer_than=opened)

    assert (await sb.send_slash_command())["payload"]["text"].startswith("Pulser is up")


async def test_bolt_reconnects_after_the_sandbox_restarts(sb: SlackSandbox, app: AsyncApp, connect: Connect) -> None:
    pulser_command(app)
    await connect(app)
    opened = sb.connections_opened

    await sb.stop()
    await sb.start()  # same port
    await sb.wait_for_connection(timeout=5, newer_than=opened)

    assert (await sb.send_slash_command())["payload"]["text"].startswith("Pulser is up")


async def test_envelopes_alternate_between_two_connections(sb: SlackSandbox, web: AsyncWebClient, connect: Connect) -> None:
    for name in ("first", "second"):
        await connect(answering(AsyncApp(client=web), name))
    await sb.state.changed.wait_until(lambda: sb.connection_count == 2, timeout=5)

    texts = [(await sb.send_slash_command())["payload"]["text"] for _ in range(4)]

    assert sorted(texts) == ["first", "first", "second", "second"]


async def test_disconnect_frame_is_followed_by_a_close_if_the_client_stays(
    sb: SlackSandbox, http: aiohttp.ClientSession
) -> None:
    app_client = AsyncWebClient(token=APP_TOKEN, base_url=sb.api_url)
    url = (await app_client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with http.ws_connect(url) as ws:
        await ws.receive()  # hello
        await sb.wait_for_connection()

        await sb.drop_connections(mode="disconnect", reason="refresh_requested")
        frame = json.loads((await ws.receive()).data)
        closing = await asyncio.wait_for(ws.receive(), timeout=3)

    assert frame == {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "sandbox"}}
    assert closing.type == aiohttp.WSMsgType.CLOSE


async def test_send_envelope_without_a_connection_raises(sb: SlackSandbox) -> None:
    with pytest.raises(RuntimeError):
        await sb.send_slash_command()


async def test_missing_ack_times_out_and_a_late_ack_is_stray(sb: SlackSandbox, http: aiohttp.ClientSession) -> None:
    app_client = AsyncWebClient(token=APP_TOKEN, base_url=sb.api_url)
    url = (await app_client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with http.ws_connect(url) as ws:
        await ws.receive()  # hello
        await sb.wait_for_connection()
        envelope = sb.slash_command_envelope()

        with pytest.raises(asyncio.TimeoutError):
            await sb.send_envelope(envelope, timeout=0.2)
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"]}))
        await sb.state.changed.wait_until(lambda: bool(sb.stray_acks), timeout=2)

    assert sb.stray_acks == [{"envelope_id": envelope["envelope_id"]}]


# ---- The page and the injection endpoint ----------------------------------------------


async def test_page_escapes_message_text(sb: SlackSandbox, web: AsyncWebClient, http: aiohttp.ClientSession) -> None:
    # Escaped as Slack asks (&lt; &gt;): shown as typed. Raw: Slack reads <...> as a control
    # sequence; either way nothing becomes markup on the page.
    await web.chat_postMessage(channel="C0OPS", text="&lt;script&gt;alert(1)&lt;/script&gt;")
    await web.chat_postMessage(channel="C0OPS", text="<script>alert(2)</script>")

    async with http.get(sb.base_url + "/") as resp:
        page = await resp.text()

    assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(2)" not in page and "alert(2)" in page


async def test_state_endpoint_lists_messages(sb: SlackSandbox, web: AsyncWebClient, http: aiohttp.ClientSession) -> None:
    await web.chat_postMessage(channel="C0OPS", text="hello")

    async with http.get(sb.base_url + "/sandbox/state") as resp:
        state = await resp.json()

    assert state["channels"]["C0OPS"]["messages"][0]["text"] == "hello"


async def test_command_endpoint_returns_the_ack(
    sb: SlackSandbox, app: AsyncApp, connect: Connect, http: aiohttp.ClientSession
) -> None:
    pulser_command(app)
    await connect(app)

    async with http.post(sb.base_url + "/sandbox/command", json={"command": "/pulser", "text": "help", "user_id": "U0ALICE"}) as resp:
        body = await resp.json()

    assert resp.status == 200 and body["ack"]["payload"]["text"] == "Pulser is up (help)"
    async with http.get(sb.base_url + "/") as resp:  # the person who ran it sees it, as in Slack
        page = await resp.text()
    assert "/pulser help" in page and "Pulser is up (help)" in page


async def test_command_endpoint_without_a_bot_is_503(sb: SlackSandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(sb.base_url + "/sandbox/command", json={"text": "help"}) as resp:
        body = await resp.json()

    assert (resp.status, body) == (503, {"error": "no bot connected"})


# ---- The interactive page: forms a person clicks, driven like a browser ---------------


class _FormScraper(HTMLParser):
    """Every <form> of the page: its action, id, fields (hidden inputs) and button labels."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.buttons: list[dict] = []
        self._form: dict | None = None
        self._button: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action"), "id": a.get("id"), "fields": {}, "buttons": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button = {"attrs": a, "label": "", "form": self._form}
            self.buttons.append(self._button)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["label"] += data


def scrape(page: str) -> _FormScraper:
    scraper = _FormScraper()
    scraper.feed(page)
    return scraper


def action_form(page: str, label: str) -> dict:
    """The hidden fields a click on the button labelled ``label`` posts to /sandbox/ui/action."""
    scraper = scrape(page)
    for button in scraper.buttons:
        if button["label"] == label:
            target = button["attrs"].get("form")
            form = next(f for f in scraper.forms if f["id"] == target) if target else button["form"]
            assert form["action"] == "/sandbox/ui/action"
            confirm = button["attrs"].get("data-confirm")
            return {**form["fields"], "_confirm": json.loads(confirm) if confirm else None}
    raise AssertionError(f"no button {label!r} on the page")


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A session that keeps the page's cookies (loopback IPs need an unsafe cookie jar)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def post_form(browser: aiohttp.ClientSession, sb: SlackSandbox, path: str, data) -> str:
    """POST like a browser: 303 back to / and the page it then shows."""
    async with browser.post(sb.base_url + path, data=data) as resp:
        assert [r.status for r in resp.history] == [303] and resp.url.path == "/"
        return await resp.text()


async def get_page(browser: aiohttp.ClientSession, sb: SlackSandbox, path: str = "/") -> str:
    async with browser.get(sb.base_url + path) as resp:
        return await resp.text()


def _button(action_id: str, label: str, value: str = "", **extra) -> dict:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}, "value": value, **extra}


async def test_page_command_form_shows_the_ack_as_an_ephemeral(
    sb: SlackSandbox, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    sb.set_user("U0BOB", name="bob")
    seen = pulser_command(app)
    await connect(app)

    page = await post_form(browser, sb, "/sandbox/ui/command", {"user_id": "U0BOB", "channel_id": "C0OPS", "message": "/pulser status <now>"})

    assert (seen[0]["user_id"], seen[0]["user_name"], seen[0]["text"]) == ("U0BOB", "bob", "status <now>")
    # The command as typed, then the ack (mrkdwn: the unescaped <now> is a control sequence).
    assert "/pulser status &lt;now&gt;" in page and "Pulser is up (status now)" in page
    assert "Only visible to you" in page
    assert '<option value="U0BOB" selected>' in page  # the page remembers who you are


async def test_page_command_form_without_a_bot_says_so(sb: SlackSandbox, browser: aiohttp.ClientSession) -> None:
    page = await post_form(browser, sb, "/sandbox/ui/command", {"text": "help"})

    assert "no bot connected" in page


async def test_page_button_on_a_message_runs_the_listener(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    confirm = {"title": {"type": "plain_text", "text": "Sure?"}, "text": {"type": "plain_text", "text": "Ack <b>it</b> 'now'"}}
    blocks = [{"type": "actions", "block_id": "alert", "elements": [_button("ack_alert", "Ack", "alert-1", confirm=confirm)]}]
    posted = await web.chat_postMessage(channel="C0OPS", text="Alert firing", blocks=blocks)
    clicks: list[dict] = []

    @app.action("ack_alert")
    async def _ack_alert(ack, body, client):
        clicks.append(body)
        await ack()
        await client.chat_update(channel=body["channel"]["id"], ts=body["container"]["message_ts"], text=f"acked by {body['user']['id']}", blocks=[])

    await connect(app)
    raw = await get_page(browser, sb)
    fields = action_form(raw, "Ack")
    confirm = fields.pop("_confirm")

    assert "Ack <b>it</b>" not in raw
    assert confirm == {"title": "Sure?", "text": "Ack &lt;b&gt;it&lt;/b&gt; &#x27;now&#x27;", "confirm": "Yes", "deny": "Cancel", "style": ""}
    page = await post_form(browser, sb, "/sandbox/ui/action", fields)

    [body] = clicks
    assert body["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C0OPS", "is_ephemeral": False}
    assert (body["actions"][0]["action_id"], body["actions"][0]["value"], body["actions"][0]["block_id"]) == ("ack_alert", "alert-1", "alert")
    assert "acked by U0ALICE" in page and sb.messages["C0OPS"][0]["text"] == "acked by U0ALICE"


async def test_page_button_in_an_ephemeral_is_replaced_by_respond(
    sb: SlackSandbox, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    overflow = {"type": "overflow", "action_id": "more", "options": [
        {"text": {"type": "plain_text", "text": "Snooze 1h"}, "value": "1h"},
        {"text": {"type": "plain_text", "text": "Delete"}, "value": "delete"},
    ]}
    blocks = [{"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "3 alerts"}, "accessory": overflow}]
    clicks: list[dict] = []

    @app.command("/pulser")
    async def _pulser(ack):
        await ack(text="3 alerts", blocks=blocks)

    @app.action("more")
    async def _more(ack, body, respond):
        clicks.append(body)
        await ack()
        if body["actions"][0]["selected_option"]["value"] == "delete":
            await respond(delete_original=True)
        else:
            await respond(replace_original=True, text=f"snoozed {body['actions'][0]['selected_option']['value']}")

    await connect(app)
    page = await post_form(browser, sb, "/sandbox/ui/command", {"text": "alerts"})
    page = await post_form(browser, sb, "/sandbox/ui/action", {k: v for k, v in action_form(page, "Snooze 1h").items() if k != "_confirm"})

    container, action = clicks[0]["container"], clicks[0]["actions"][0]
    assert container["is_ephemeral"] is True and "message" not in clicks[0] and clicks[0]["response_url"]
    assert action["type"] == "overflow" and action["selected_option"] == {"text": {"type": "plain_text", "text": "Snooze 1h", "emoji": True}, "value": "1h"}
    assert "snoozed 1h" in page and "3 alerts" not in page.split("<h2>Response URL posts</h2>")[0]
    assert [e["text"] for e in sb.ephemerals] == ["snoozed 1h"]


async def test_page_modal_shows_errors_then_closes_with_slack_shaped_values(
    sb: SlackSandbox, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    modal = {
        "type": "modal",
        "callback_id": "silence",
        "private_metadata": "meta-1",
        "title": {"type": "plain_text", "text": "Silence <alerts>"},
        "submit": {"type": "plain_text", "text": "Silence"},
        "blocks": [
            {"type": "input", "block_id": "dur", "label": {"type": "plain_text", "text": "Minutes"},
             "element": {"type": "plain_text_input", "action_id": "minutes", "initial_value": "30"}},
            {"type": "input", "block_id": "sev", "label": {"type": "plain_text", "text": "Severity"},
             "element": {"type": "static_select", "action_id": "level", "options": [
                 {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                 {"text": {"type": "plain_text", "text": "Low"}, "value": "low"}]}},
            {"type": "input", "block_id": "who", "label": {"type": "plain_text", "text": "Owner"},
             "element": {"type": "users_select", "action_id": "user"}},
            {"type": "input", "block_id": "where", "optional": True, "label": {"type": "plain_text", "text": "Channel"},
             "element": {"type": "conversations_select", "action_id": "conv"}},
        ],
    }
    submitted: list[dict] = []

    @app.command("/pulser")
    async def _pulser(ack, body, client):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=modal)

    @app.view("silence")
    async def _silence(ack, view):
        submitted.append(view)
        if not view["state"]["values"]["dur"]["minutes"]["value"].isdigit():
            await ack(response_action="errors", errors={"dur": "Minutes must be a <number>"})
        else:
            await ack()

    sb.set_user("U0ALICE", name="alice")
    sb.add_channel("C0OPS", "ops")
    await connect(app)
    await post_form(browser, sb, "/sandbox/ui/command", {"text": "silence"})
    page = await get_page(browser, sb)
    [form] = [f for f in scrape(page).forms if f["action"] == "/sandbox/ui/submit"]

    assert "Silence &lt;alerts&gt;" in page and 'name="dur::minutes" value="30"' in page
    assert '<option value="U0ALICE">alice</option>' in page and '<option value="C0OPS">#ops</option>' in page
    bad = {**form["fields"], "dur::minutes": "soon", "sev::level": "high", "who::user": "U0ALICE", "where::conv": ""}
    page = await post_form(browser, sb, "/sandbox/ui/submit", bad)

    assert "Minutes must be a &lt;number&gt;" in page and 'name="dur::minutes" value="soon"' in page
    page = await post_form(browser, sb, "/sandbox/ui/submit", {**bad, "dur::minutes": "15"})

    assert "/sandbox/ui/submit" not in page and sb.state.modal_stack == []
    view = submitted[-1]
    assert (view["callback_id"], view["private_metadata"]) == ("silence", "meta-1")
    assert view["state"]["values"] == {
        "dur": {"minutes": {"type": "plain_text_input", "value": "15"}},
        "sev": {"level": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "High"}, "value": "high"}}},
        "who": {"user": {"type": "users_select", "selected_user": "U0ALICE"}},
        "where": {"conv": {"type": "conversations_select", "selected_conversation": None}},
    }


async def test_page_modal_update_ack_and_cancel(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    step = {"type": "modal", "callback_id": "wizard", "notify_on_close": True, "title": {"type": "plain_text", "text": "Step 1"},
            "blocks": [{"type": "input", "block_id": "n", "label": {"type": "plain_text", "text": "Name"},
                        "element": {"type": "plain_text_input", "action_id": "v"}}]}
    closed = asyncio.Event()

    @app.view("wizard")
    async def _wizard(ack):
        await ack(response_action="update", view={**step, "title": {"type": "plain_text", "text": "Step 2"}})

    @app.view_closed("wizard")
    async def _closed(ack):
        await ack()
        closed.set()

    await connect(app)
    opened = (await web.views_open(trigger_id="1.2.abc", view=step))["view"]
    page = await post_form(browser, sb, "/sandbox/ui/submit", {"view_id": opened["id"], "user_id": "U0ALICE", "n::v": "x"})

    assert "Step 2" in page and sb.state.modal_stack == [opened["id"]]
    page = await post_form(browser, sb, "/sandbox/ui/close", {"view_id": opened["id"], "user_id": "U0ALICE"})
    await asyncio.wait_for(closed.wait(), timeout=3)
    assert "Step 2" not in page and sb.state.modal_stack == []


async def test_page_home_tab_button_has_a_view_container(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    home = {"type": "home", "blocks": [{"type": "actions", "block_id": "h", "elements": [_button("refresh", "Refresh <all>")]}]}
    published = (await web.views_publish(user_id="U0BOB", view=home))["view"]
    clicks: list[dict] = []

    @app.action("refresh")
    async def _refresh(ack, body, client):
        clicks.append(body)
        await ack()
        await client.views_publish(user_id=body["user"]["id"], view={"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Refreshed"}}]})

    await connect(app)
    sb.set_user("U0BOB", name="bob")
    await post_form(browser, sb, "/sandbox/ui/user", {"user_id": "U0BOB"})
    home = await get_page(browser, sb, "/?c=home")
    fields = {k: v for k, v in action_form(home, "Refresh <all>").items() if k != "_confirm"}
    async with browser.post(sb.base_url + "/sandbox/ui/action", data=fields, headers={"Referer": sb.base_url + "/?c=home"}) as resp:
        page = await resp.text()  # back to the Home tab it was clicked in

    assert clicks[0]["container"] == {"type": "view", "view_id": published["id"]} and clicks[0]["user"]["id"] == "U0BOB"
    assert "Refreshed" in page


async def test_page_buttons_inside_message_attachments_work(
    sb: SlackSandbox, web: AsyncWebClient, app: AsyncApp, connect: Connect, browser: aiohttp.ClientSession
) -> None:
    blocks = [{"type": "actions", "block_id": "alert_actions", "elements": [_button("ack_alert", "Ack", "7")]}]
    await web.chat_postMessage(channel="C0OPS", text="Alert firing", attachments=[{"color": "#d62828", "blocks": blocks}])
    clicks: list[dict] = []

    @app.action("ack_alert")
    async def _ack_alert(ack, body):
        clicks.append(body)
        await ack()

    await connect(app)
    raw = await get_page(browser, sb)
    assert "border-left-color: #d62828" in raw
    await post_form(browser, sb, "/sandbox/ui/action", {k: v for k, v in action_form(raw, "Ack").items() if k != "_confirm"})
    assert [c["actions"][0]["value"] for c in clicks] == ["7"]
