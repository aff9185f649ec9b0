"""``SlackSandbox``: one aiohttp server that plays Slack for the real slack-bolt + slack_sdk.

Point the bot at it with
``AsyncApp(client=AsyncWebClient(token="xoxb-...", base_url=sb.api_url))`` and
``AsyncSocketModeHandler(app, app_token="xapp-...")``; nothing in the bot needs to know it is
not talking to Slack. The class is the facade tests use: it records what the bot did, injects
envelopes and faults, and waits for things to happen. It enforces Slack's published rate limits
unless started with ``rate_limits=False`` (see ``rate_limits``), so nothing that runs against it
can post faster than Slack would let it. The protocol work lives in
``web_api`` (HTTP methods), ``socket_mode`` (the WebSocket) and ``payloads`` (envelope shapes).

Routes:
  /api/<method>       Slack Web API
  /link/?ticket=...   Socket Mode WebSocket (URLs issued by apps.connections.open)
  /hooks/<id>         response_url targets
  /                   the page people use (``?c=<channel>|home``, ``&thread=<ts>``); /sandbox/state
                      is the workspace as JSON, /sandbox/stream tells open pages when it changed
  /sandbox/command    inject a slash command (POST JSON or form); /sandbox/event likewise
  /sandbox/ui/...     the page's forms (command, action, submit, close, user, home, dismiss):
                      inject, then 303 back to the page they were sent from
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from . import payloads
from .page import (
    HOME,
    MULTI_SELECTS,
    SINGLE_SELECTS,
    TEXT_INPUTS,
    PageRequest,
    dm_channel_of,
    dm_owner,
    field_name,
    input_fields,
    options_of,
    render_page,
)
from .rate_limits import RateLimiter, disabled_snapshot
from .socket_mode import SocketModeHub
from .state import ApiCall, FailureRule, WorkspaceState
from .web_api import SlackError, WebApi

log = logging.getLogger("sandbox")

STATIC = Path(__file__).with_name("static")
STATIC_TYPES = {"page.js": "text/javascript", "page.css": "text/css"}
DEFAULT_USER = "U0ALICE"
DEFAULT_CHANNEL = "C0OPS"


class SlackSandbox:
    """A local Slack workspace with one app installed. All state lives in memory."""

    BOT_TOKEN = "xoxb-sandbox-bot-token"
    APP_TOKEN = "xapp-sandbox-app-token"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T0SANDBOX",
        team_domain: str = "sandbox",
        app_id: str = "A0SANDBOX",
        bot_user_id: str = "U0PULSERBOT",
        bot_id: str = "B0PULSER",
        rate_limits: bool | RateLimiter = True,
    ) -> None:
        """``rate_limits``: True (Slack's limits, the real clock), False (no limits: only for
        what measures something else, e.g. a throughput benchmark), or a ``RateLimiter`` of
        your own (an injected clock, other figures)."""
        self.host = host
        self.port = port
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.state = WorkspaceState(
            team_id=team_id, team_domain=team_domain, app_id=app_id, bot_user_id=bot_user_id, bot_id=bot_id
        )
        self.hub = SocketModeHub(app_id=app_id, notifier=self.state.changed)
        self.connections_open_calls = 0
        if isinstance(rate_limits, RateLimiter):
            self.rate_limiter: RateLimiter | None = rate_limits
        else:
            self.rate_limiter = RateLimiter() if rate_limits else None
        self._web_api = WebApi(
            self.state,
            issue_ws_url=lambda request: self.hub.issue_url(request.host or f"{self._url_host}:{self.port}"),
            base_url=lambda: self.base_url,
            on_connections_open=self._count_connections_open,
            rate_limiter=self.rate_limiter,
        )
        self._runner: web.AppRunner | None = None
        self._closing = False  # set by stop(): open page streams end instead of holding it up
        # PULSER_ADMINS of the bot using this sandbox: the page's user switcher says who is one.
        self.listed_admins: tuple[str, ...] = ()

    # ---- lifecycle --------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._web_api.handle)
        app.router.add_get("/link/", self.hub.handle_link)
        app.router.add_get("/link", self.hub.handle_link)
        app.router.add_post("/hooks/{hook_id:.+}", self._handle_hook)
        app.router.add_get("/", self._handle_page)
        app.router.add_get("/sandbox/stream", self._handle_stream)
        app.router.add_get("/sandbox/static/{name}", self._handle_static)
        app.router.add_get("/archives/{channel}/{message}", self._handle_permalink)
        app.router.add_get("/sandbox/state", self._handle_state)
        app.router.add_post("/sandbox/command", self._handle_command)
        app.router.add_post("/sandbox/event", self._handle_event)
        app.router.add_post("/sandbox/ui/command", self._handle_ui_command)
        app.router.add_post("/sandbox/ui/action", self._handle_ui_action)
        app.router.add_post("/sandbox/ui/submit", self._handle_ui_submit)
        app.router.add_post("/sandbox/ui/close", self._handle_ui_close)
        app.router.add_post("/sandbox/ui/user", self._handle_ui_user)
        app.router.add_post("/sandbox/ui/home", self._handle_ui_home)
        app.router.add_post("/sandbox/ui/dismiss", self._handle_ui_dismiss)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        self.hub.reopen()
        self._closing = False
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        log.info("Slack sandbox listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close every socket and the listener. ``start()`` again rebinds the same port, which
        simulates a Slack outage; earlier tickets and all recordings survive."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        self._closing = True
        self.state.changed.notify()  # wakes the page streams, which then end
        await self.hub.shutdown()
        await runner.cleanup()

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def _url_host(self) -> str:
        if self.host in ("0.0.0.0", ""):
            return "127.0.0.1"
        if self.host == "::":
            return "[::1]"
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def base_url(self) -> str:
        return f"http://{self._url_host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def _count_connections_open(self) -> None:
        self.connections_open_calls += 1

    # ---- recordings -------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        return self.state.calls

    def calls_to(self, method: str) -> list[ApiCall]:
        return self.state.calls_to(method)

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        await self.state.changed.wait_until(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)

    @property
    def messages(self) -> dict[str, list[dict[str, Any]]]:
        return self.state.messages

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        return self.state.ephemerals

    @property
    def response_url_posts(self) -> list[tuple[str, Any]]:
        return self.state.response_url_posts

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        return self.state.views

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        return self.state.home_views

    @property
    def acks(self) -> list[dict[str, Any]]:
        return self.hub.acks

    @property
    def stray_acks(self) -> list[dict[str, Any]]:
        return self.hub.stray_acks

    @property
    def envelopes_sent(self) -> list[dict[str, Any]]:
        return self.hub.envelopes_sent

    def reset(self) -> None:
        """Clear recordings and pending ``fail_next`` rules; keep users, channels, sockets, counters
        and the rate-limit buckets (Slack does not forget what was just sent either)."""
        self.state.reset()
        self.hub.acks.clear()
        self.hub.stray_acks.clear()
        self.hub.envelopes_sent.clear()
        self.hub.other_frames.clear()

    # ---- directory --------------------------------------------------------------------

    def set_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        tz: str = "UTC",
        **extra: Any,
    ) -> dict[str, Any]:
        return self.state.set_user(
            user_id, name=name, real_name=real_name, is_admin=is_admin, is_owner=is_owner, tz=tz, **extra
        )

    def add_channel(self, channel_id: str, name: str, is_private: bool = False) -> None:
        self.state.add_channel(channel_id, name, is_private=is_private)

    def add_try_out_workspace(self, alerts_channel: str = "ops-alerts", admins: tuple[str, ...] = ()) -> None:
        """People and channels for trying the bot by hand: alice, a workspace admin (Pulser lets
        her register apps and change monitoring), bob, a member (Pulser refuses him that), #ops
        and the alert channel. ``admins`` is the bot's PULSER_ADMINS, shown on the page."""
        self.set_user("U0ALICE", name="alice", real_name="Alice Example", is_admin=True)
        self.set_user("U0BOB", name="bob", real_name="Bob Example")
        self.add_channel("C0OPS", "ops")
        self.add_channel("C0ALERTS", alerts_channel.lstrip("#") or "ops-alerts")
        self.listed_admins = tuple(admins)

    # ---- Socket Mode ------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self.hub.open_connections())

    @property
    def connections_opened(self) -> int:
        return self.hub.connections_opened

    async def wait_for_connection(self, timeout: float = 5.0, newer_than: int | None = None) -> int:
        """Wait for a usable socket (not one told to disconnect); returns ``connections_opened``.

        With ``newer_than=n``, wait until a handshake after the n-th one has succeeded and that
        socket is usable, i.e. the bot reconnected.
        """

        def ready() -> bool:
            if newer_than is not None and self.hub.connections_opened <= newer_than:
                return False
            return bool(self.hub.usable_connections())

        await self.state.changed.wait_until(ready, timeout)
        return self.hub.connections_opened

    async def send_envelope(self, envelope: dict[str, Any], timeout: float = 3.0) -> dict[str, Any]:
        return await self.hub.send_envelope(envelope, timeout)

    async def send_frame(self, frame: Any, timeout: float = 3.0) -> dict[str, Any] | None:
        """Send a frame as it is, malformed or not; returns its ack (None when it has no envelope_id)."""
        return await self.hub.send_frame(frame, timeout)

    def _new_hook(self, **info: Any) -> str:
        hook_id = f"{self.team_id}/{uuid.uuid4().hex[:12]}"
        self.state.hooks[hook_id] = info
        return f"{self.base_url}/hooks/{hook_id}"

    def slash_command_envelope(
        self,
        command: str = "/pulser",
        text: str = "help",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0OPS",
        channel_name: str = "ops",
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        payload = payloads.slash_command(
            command=command,
            text=text,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            channel_name=channel_name,
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
            response_url=self._new_hook(kind="command", channel_id=channel_id, user_id=user_id),
        )
        self.state.remember_trigger(payload["trigger_id"], user_id)
        return payloads.envelope("slash_commands", payload, accepts_response_payload=True, envelope_id=envelope_id)

    async def send_slash_command(
        self,
        command: str = "/pulser",
        text: str = "help",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0OPS",
        channel_name: str = "ops",
        envelope_id: str | None = None,
        timeout: float = 3.0,
    ) -> dict[str, Any]:
        env = self.slash_command_envelope(command, text, user_id, user_name, channel_id, channel_name, envelope_id)
        return await self.send_envelope(env, timeout)

    def block_action_envelope(
        self,
        action_id: str,
        value: str = "",
        user_id: str = "U0ALICE",
        channel_id: str | None = "C0OPS",
        message_ts: str | None = None,
        block_id: str = "b",
        envelope_id: str | None = None,
        *,
        view_id: str | None = None,
        action_type: str = "button",
        ephemeral_id: str | None = None,
        option_text: str | None = None,
        button_text: str | None = None,
    ) -> dict[str, Any]:
        """A button click. ``message_ts`` names a message in ``sb.messages`` (its body is included);
        ``view_id`` makes it a click inside a stored view (Home tab/modal) instead;
        ``ephemeral_id`` a click in an ephemeral of ``sb.ephemerals`` (no message body is sent,
        and the response_url's ``replace_original``/``delete_original`` act on that ephemeral)."""
        view = None
        if view_id is not None:
            view = self.state.views.get(view_id) or {"id": view_id, "type": "home", "blocks": []}
        message = None
        hook: dict[str, Any] = {"kind": "action", "channel_id": channel_id, "user_id": user_id}
        if view is None and ephemeral_id is not None:
            eph = self.state.find_ephemeral(ephemeral_id) or {}
            channel_id = str(eph.get("channel") or channel_id or "")
            message_ts = str(eph.get("message_ts") or ephemeral_id)
            hook.update(channel_id=channel_id, ephemeral_id=ephemeral_id)
        elif view is None and channel_id is not None and message_ts is not None:
            hook["message_ts"] = message_ts
            stored = self.state.find_message(channel_id, message_ts)
            message = {k: v for k, v in (stored or {}).items() if k not in ("edits", "channel")} or {
                "type": "message",
                "ts": message_ts,
                "text": "",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
            }
        payload = payloads.block_actions(
            action_id=action_id,
            value=value,
            block_id=block_id,
            user_id=user_id,
            user_name=self.state.user_name(user_id),
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
            channel_id=channel_id,
            channel_name=self.state.channel_name(channel_id) if channel_id else None,
            message=message,
            message_ts=message_ts or (None if view is not None else self.state.next_ts()),
            response_url=None if view is not None else self._new_hook(**hook),
            view=view,
            action_type=action_type,
            option_text=option_text,
            button_text=button_text,
        )
        self.state.remember_trigger(payload["trigger_id"], user_id)
        return payloads.envelope("interactive", payload, accepts_response_payload=False, envelope_id=envelope_id)

    async def send_block_action(
        self,
        action_id: str,
        value: str = "",
        user_id: str = "U0ALICE",
        channel_id: str | None = "C0OPS",
        message_ts: str | None = None,
        block_id: str = "b",
        envelope_id: str | None = None,
        timeout: float = 3.0,
        *,
        view_id: str | None = None,
        action_type: str = "button",
    ) -> dict[str, Any]:
        env = self.block_action_envelope(
            action_id, value, user_id, channel_id, message_ts, block_id, envelope_id, view_id=view_id, action_type=action_type
        )
        return await self.send_envelope(env, timeout)

    def view_submission_envelope(
        self,
        callback_id: str,
        values: dict[str, Any],
        user_id: str = "U0ALICE",
        private_metadata: str = "",
        view_id: str | None = None,
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        """A modal submit. With ``view_id`` of a modal the bot opened, that view is the base
        (blocks, hash, ...); ``callback_id``/``private_metadata`` given here still win when set."""
        stored = self.state.views.get(view_id) if view_id else None
        if stored is not None:
            view = dict(stored)
            view["callback_id"] = callback_id or stored.get("callback_id", "")
            view["private_metadata"] = private_metadata or stored.get("private_metadata", "")
        else:
            new_id = view_id or self.state.next_view_id()
            view = {
                "id": new_id,
                "team_id": self.team_id,
                "type": "modal",
                "blocks": [],
                "private_metadata": private_metadata,
                "callback_id": callback_id,
                "state": {"values": {}},
                "hash": f"{new_id}.hash",
                "title": {"type": "plain_text", "text": "Sandbox"},
                "clear_on_close": False,
                "notify_on_close": False,
                "close": None,
                "submit": {"type": "plain_text", "text": "Submit"},
                "previous_view_id": None,
                "root_view_id": new_id,
                "app_id": self.app_id,
                "external_id": "",
                "app_installed_team_id": self.team_id,
                "bot_id": self.bot_id,
            }
        payload = payloads.view_submission(
            view=view,
            values=values,
            user_id=user_id,
            user_name=self.state.user_name(user_id),
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
        )
        self.state.remember_trigger(payload["trigger_id"], user_id)
        return payloads.envelope("interactive", payload, accepts_response_payload=True, envelope_id=envelope_id)

    async def send_view_submission(
        self,
        callback_id: str,
        values: dict[str, Any],
        user_id: str = "U0ALICE",
        private_metadata: str = "",
        view_id: str | None = None,
        envelope_id: str | None = None,
        timeout: float = 3.0,
    ) -> dict[str, Any]:
        env = self.view_submission_envelope(callback_id, values, user_id, private_metadata, view_id, envelope_id)
        return await self.send_envelope(env, timeout)

    def event_envelope(
        self,
        event: dict[str, Any],
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        payload = payloads.event_callback(
            event, team_id=self.team_id, api_app_id=self.app_id, bot_user_id=self.bot_user_id, event_id=event_id
        )
        return payloads.events_envelope(
            payload, retry_attempt=retry_attempt, retry_reason=retry_reason, envelope_id=envelope_id
        )

    async def send_event(
        self,
        event: dict[str, Any],
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
        timeout: float = 3.0,
    ) -> dict[str, Any]:
        env = self.event_envelope(event, event_id, retry_attempt, retry_reason, envelope_id)
        return await self.send_envelope(env, timeout)

    def app_home_opened_event(self, user_id: str = "U0ALICE", tab: str = "home") -> dict[str, Any]:
        """An ``app_home_opened`` event carrying the user's published Home view, if any."""
        return payloads.app_home_opened(
            user_id=user_id, channel_id="D" + user_id[1:], tab=tab, view=self.state.home_views.get(user_id)
        )

    async def send_app_home_opened(self, user_id: str = "U0ALICE", tab: str = "home", timeout: float = 3.0) -> dict[str, Any]:
        return await self.send_event(self.app_home_opened_event(user_id, tab), timeout=timeout)

    # ---- fault injection --------------------------------------------------------------

    async def drop_connections(self, mode: str = "close", reason: str = "refresh_requested") -> None:
        """``close``: close frame; ``reset``: TCP abort, no close frame; ``disconnect``: Slack's
        ``disconnect`` frame, then a close ~1 s later if the client has not closed first."""
        await self.hub.drop(mode, reason)

    def kill_issued_urls(self) -> None:
        """Burn every WSS URL issued so far (handshakes answer 401) and reset open sockets."""
        self.hub.kill_issued_urls()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        error: str | None = None,
        retry_after: int | None = 1,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead of running it.
        Comes before the rate limits: an injected answer costs the call no token.

        ``error`` defaults by status: 429 → ``ratelimited``, 5xx → ``internal_error``, anything
        else → ``fatal_error``. 429 answers carry ``Retry-After: retry_after``.
        """
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error" if status >= 500 else "fatal_error"
        self.state.add_failure(method, FailureRule(status=status, error=error, retry_after=retry_after, times=times))

    # ---- HTTP handlers other than the API ---------------------------------------------

    async def _handle_hook(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self.state.response_url_posts.append((hook_id, raw.decode("utf-8", "replace")))
            self.state.changed.notify()
            return web.Response(status=400, text="invalid_payload")
        self.state.response_url_posts.append((hook_id, body))
        if isinstance(body, dict):
            self._apply_response(hook_id, body)
        self.state.changed.notify()
        return web.Response(text="ok")

    def _apply_response(self, hook_id: str, body: dict[str, Any]) -> None:
        """What Slack shows after a response_url post: ``delete_original`` removes the message or
        ephemeral the hook belongs to, ``replace_original`` replaces it, anything else is a new
        ephemeral for the user (and later replaces through the same hook act on that one)."""
        info = self.state.hooks.setdefault(hook_id, {})
        channel_id, message_ts, eph_id = info.get("channel_id"), info.get("message_ts"), info.get("ephemeral_id")
        eph = self.state.find_ephemeral(eph_id) if eph_id else None
        msg = self.state.find_message(channel_id, message_ts) if channel_id and message_ts else None
        content = {k: body[k] for k in ("text", "blocks", "attachments") if k in body}
        if body.get("delete_original") in (True, "true"):
            if eph is not None:
                self.state.ephemerals.remove(eph)
            elif msg is not None:
                self.state.messages[channel_id].remove(msg)
            return
        if body.get("replace_original") in (True, "true"):
            if eph is not None:
                eph.update({"text": "", "blocks": None, **content})
                return
            if msg is not None:
                msg.update({"text": "", **content})
                msg["edits"] = msg.get("edits", 0) + 1
                return
        if content:
            entry = self.state.add_ephemeral(
                channel=str(channel_id or ""), user=str(info.get("user_id") or ""), body=body, origin="response_url"
            )
            if eph is None and msg is None:
                info["ephemeral_id"] = entry["id"]

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-able data (also served at /sandbox/state)."""
        channel_ids = list(dict.fromkeys([*self.state.messages.keys()]))
        listed = set(self.listed_admins)
        rooms = [
            {"id": cid, "name": self.state.channel_name(cid)}
            for cid in dict.fromkeys([*self.state.channels, *self.state.messages])
            if dm_owner(cid) is None
        ]
        return {
            "base_url": self.base_url,
            "team": {"id": self.team_id, "domain": self.team_domain, "app_id": self.app_id, "bot_user_id": self.bot_user_id},
            "connections": {
                "open": self.connection_count,
                "opened": self.connections_opened,
                "open_calls": self.connections_open_calls,
            },
            "call_count": len(self.calls),
            "rate_limits": self.rate_limiter.snapshot() if self.rate_limiter is not None else disabled_snapshot(),
            "recent_calls": [
                {"method": c.method, "params": c.params, "at": c.at} for c in self.calls[-50:]
            ],
            "channels": {
                cid: {"name": self.state.channel_name(cid), "messages": self.state.messages.get(cid, [])}
                for cid in channel_ids
            },
            "ephemerals": self.state.ephemerals,
            "commands": self.state.commands,
            "response_url_posts": [{"hook_id": h, "body": b} for h, b in self.state.response_url_posts],
            "views": self.state.views,
            "home_views": self.state.home_views,
            "acks": self.hub.acks[-50:],
            "directory": {
                "users": {
                    uid: {
                        "id": uid, "name": u["name"], "display_name": u["profile"].get("display_name") or u["name"],
                        "tz": u.get("tz", "UTC"), "is_bot": u.get("is_bot", False), "is_admin": u.get("is_admin", False),
                        "is_owner": u.get("is_owner", False), "pulser_admin": uid in listed,
                    }
                    for uid, u in self.state.users.items()
                },
                "channels": rooms,
            },
            "ui": {
                "user": DEFAULT_USER,
                "channel": DEFAULT_CHANNEL,
                "command": "/pulser",
                "users": [
                    {"id": uid, "name": u["name"]} for uid, u in self.state.users.items() if not u.get("is_bot")
                ],
                "channels": rooms,
                "modal_stack": list(self.state.modal_stack),
                "view_owners": self.state.view_owners,
                "view_errors": self.state.view_errors,
                "view_drafts": self.state.view_drafts,
                "notice": self.state.notice,
                "unread": {},
            },
        }

    # ---- the page -----------------------------------------------------------------------

    def _page_request(self, request: web.Request) -> PageRequest:
        """Who is looking (the switcher's cookie) and at what (the query, else the last channel)."""
        user = request.cookies.get("sandbox_user") or DEFAULT_USER
        channel = request.query.get("c") or request.cookies.get("sandbox_channel") or DEFAULT_CHANNEL
        tab = request.query.get("tab") or "home"
        if tab not in ("home", "messages", "about"):
            tab = "home"
        return PageRequest(user=user, channel=channel, thread=request.query.get("thread", ""), tab=tab)

    async def _handle_page(self, request: web.Request) -> web.Response:
        page = self._page_request(request)
        if page.channel == HOME:
            if page.tab == "messages":
                self.state.mark_read(page.user, [dm_channel_of(page.user), page.user])
        else:
            self.state.mark_read(page.user, [page.channel])
        snap = self.snapshot()
        snap["ui"]["user"] = page.user
        snap["ui"]["channel"] = page.channel
        snap["ui"]["unread"] = self.state.unread_counts(page.user)
        snap["version"] = self.state.changed.version
        resp = web.Response(text=render_page(snap, page), content_type="text/html", charset="utf-8")
        resp.headers["Cache-Control"] = "no-store"
        if request.query.get("c") and page.channel != HOME and dm_owner(page.channel) is None:
            resp.set_cookie("sandbox_channel", page.channel, path="/", samesite="Lax")
        return resp

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events for open pages: one event after each burst of changes (a storm of
        calls becomes one refresh), a comment every 15 s so proxies keep the stream open."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        changed = self.state.changed
        try:  # the version the page was rendered at: what changed since is sent at once
            seen = int(request.query.get("since", ""))
        except ValueError:
            seen = changed.version
        try:
            await resp.write(b"retry: 1000\n\n")
            while not self._closing:
                try:
                    await changed.wait_until(lambda: changed.version != seen or self._closing, 15)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if self._closing:
                    break
                await asyncio.sleep(0.05)  # let the rest of the burst land first
                seen = changed.version
                await resp.write(f"data: {seen}\n\n".encode())
        except (ConnectionResetError, RuntimeError):
            pass  # the page was closed or reloaded
        return resp

    async def _handle_static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_TYPES:
            raise web.HTTPNotFound()
        return web.Response(
            text=(STATIC / name).read_text(encoding="utf-8"), content_type=STATIC_TYPES[name], charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _handle_permalink(self, request: web.Request) -> web.Response:
        """``chat.getPermalink`` links (``/archives/C…/p1700000000000100``) open the message."""
        channel, message = request.match_info["channel"], request.match_info["message"]
        digits = message[1:] if message.startswith("p") else message
        anchor = f"#m{digits[:-6]}-{digits[-6:]}" if digits.isdigit() and len(digits) > 6 else ""
        raise web.HTTPSeeOther(f"/?c={quote(channel, safe='')}{anchor}")

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot(), dumps=lambda o: json.dumps(o, default=str))

    @staticmethod
    async def _read_fields(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise web.HTTPBadRequest(text=json.dumps({"error": "invalid json"}), content_type="application/json")
            if not isinstance(data, dict):
                raise web.HTTPBadRequest(text=json.dumps({"error": "expected an object"}), content_type="application/json")
            return data
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}

    async def _inject(self, envelope: dict[str, Any]) -> web.Response:
        try:
            ack = await self.send_envelope(envelope, timeout=3.0)
        except RuntimeError:
            return web.json_response({"error": "no bot connected"}, status=503)
        except asyncio.TimeoutError:
            return web.json_response({"error": "no ack within 3 s", "envelope_id": envelope["envelope_id"]}, status=504)
        return web.json_response({"ack": ack, "envelope_id": envelope["envelope_id"]})

    def _show_ack(self, envelope: dict[str, Any], ack: dict[str, Any] | None) -> None:
        """What Slack shows the person who ran a command: the ack's text/blocks, only to them,
        in the channel they ran it in; later response_url posts replace it through its hook."""
        payload = (ack or {}).get("payload")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return
        command = envelope["payload"]
        entry = self.state.add_ephemeral(
            channel=command["channel_id"], user=command["user_id"], body=payload, origin=f"{command['command']} ack"
        )
        hook_id = command["response_url"].split("/hooks/", 1)[1]
        self.state.hooks.get(hook_id, {}).setdefault("ephemeral_id", entry["id"])

    async def _handle_command(self, request: web.Request) -> web.Response:
        """``POST /sandbox/command`` (a shell's way in): the command and its answer also appear
        on the page, as they would in Slack for the person who ran it."""
        fields = await self._read_fields(request)
        user_id = str(fields.get("user_id", DEFAULT_USER))
        channel_id = str(fields.get("channel_id", DEFAULT_CHANNEL))
        command = str(fields.get("command", "/pulser"))
        text = str(fields.get("text", ""))
        envelope = self.slash_command_envelope(
            command=command,
            text=text,
            user_id=user_id,
            user_name=str(fields.get("user_name") or self.state.user_name(user_id)),
            channel_id=channel_id,
            channel_name=str(fields.get("channel_name") or self.state.channel_name(channel_id)),
        )
        self.state.record_command(channel=channel_id, user=user_id, command=command, text=text)
        response = await self._inject(envelope)
        if response.status == 200:
            self._show_ack(envelope, json.loads(response.text)["ack"])
        return response

    async def _handle_event(self, request: web.Request) -> web.Response:
        fields = await self._read_fields(request)
        event = fields.get("event")
        if not isinstance(event, dict) or not event.get("type"):
            return web.json_response({"error": "expected {\"event\": {\"type\": ...}}"}, status=400)
        return await self._inject(self.event_envelope(event))

    # ---- the page's forms: POST, inject, 303 back to the page they came from --------------

    def _back(self, request: web.Request, **cookies: str) -> web.Response:
        """303 to the page the form was on (its Referer, when it is this sandbox's page)."""
        location = "/"
        referer = urlsplit(request.headers.get("Referer", ""))
        if referer.path == "/" and referer.netloc == request.host:
            location = "/" + (f"?{referer.query}" if referer.query else "")
        resp = web.Response(status=303, headers={"Location": location})
        for key, value in cookies.items():
            if value:
                resp.set_cookie(f"sandbox_{key}", value, path="/", samesite="Lax")
        return resp

    async def _ui_send(self, envelope: dict[str, Any], what: str) -> dict[str, Any] | None:
        """Send for a page form; failures become the page's notice instead of an error page."""
        try:
            ack = await self.send_envelope(envelope, timeout=3.0)
        except RuntimeError:
            self.state.notice = f"{what}: no bot connected"
            return None
        except asyncio.TimeoutError:
            self.state.notice = f"{what}: no ack within 3 s"
            return None
        self.state.notice = ""
        return ack

    async def _settle(self, quiet: float = 0.15, limit: float = 2.0) -> None:
        """Give the bot a moment to finish what the ack started (chat.update, respond, ...)
        so the page the browser is redirected to already shows it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while loop.time() < deadline:
            now = len(self.state.calls) + len(self.state.response_url_posts)
            if now == seen:
                return
            seen = now
            await asyncio.sleep(quiet)

    async def _handle_ui_command(self, request: web.Request) -> web.Response:
        """The message box: ``/command text`` runs a slash command (``command`` + ``text``
        fields work too); anything else is not sent, and the notice says why."""
        form = await request.post()
        user_id = str(form.get("user_id") or DEFAULT_USER)
        channel_id = str(form.get("channel_id") or DEFAULT_CHANNEL)
        if "message" in form:
            message = str(form.get("message") or "").strip()
            if not message.startswith("/"):
                self.state.notice = (
                    "Only slash commands reach the bot from here (it reads no channel messages): try /pulser help"
                    if message else ""
                )
                self.state.changed.notify()
                return self._back(request, user=user_id)
            command, _, text = message.partition(" ")
            text = text.strip()
        else:
            command = str(form.get("command") or "/pulser").strip()
            text = str(form.get("text") or "")
        if not command.startswith("/"):
            command = "/" + command
        envelope = self.slash_command_envelope(
            command=command,
            text=text,
            user_id=user_id,
            user_name=self.state.user_name(user_id),
            channel_id=channel_id,
            channel_name=self.state.channel_name(channel_id),
        )
        self.state.record_command(channel=channel_id, user=user_id, command=command, text=text)
        ack = await self._ui_send(envelope, f"{command} {text}".strip())
        self._show_ack(envelope, ack)
        if ack is not None:
            await self._settle()
        return self._back(request, user=user_id)

    async def _handle_ui_user(self, request: web.Request) -> web.Response:
        """The user switcher: the page is now seen, and clicked, as this person."""
        form = await request.post()
        user_id = str(form.get("user_id") or DEFAULT_USER)
        if user_id not in self.state.users or self.state.users[user_id].get("is_bot"):
            self.state.notice = f"no such person: {user_id}"
            return self._back(request)
        return self._back(request, user=user_id)

    async def _handle_ui_home(self, request: web.Request) -> web.Response:
        """Opening the app from the sidebar: Slack sends ``app_home_opened``, the bot publishes."""
        form = await request.post()
        user_id = str(form.get("user_id") or request.cookies.get("sandbox_user") or DEFAULT_USER)
        ack = await self._ui_send(self.event_envelope(self.app_home_opened_event(user_id)), "opening Pulser's Home")
        if ack is not None:
            await self._settle()
        return web.Response(status=303, headers={"Location": "/?c=home"})

    async def _handle_ui_dismiss(self, request: web.Request) -> web.Response:
        form = await request.post()
        eph = self.state.find_ephemeral(str(form.get("ephemeral_id") or ""))
        if eph is not None:
            self.state.ephemerals.remove(eph)
            self.state.changed.notify()
        return self._back(request)

    async def _handle_ui_action(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        user_id = form.get("user_id") or "U0ALICE"
        action_type = form.get("action_type") or "button"
        envelope = self.block_action_envelope(
            action_id=form.get("action_id", ""),
            value=form.get("value", ""),
            user_id=user_id,
            channel_id=form.get("channel_id") or None,
            message_ts=form.get("message_ts") or None,
            block_id=form.get("block_id") or "b",
            view_id=form.get("view_id") or None,
            action_type=action_type,
            ephemeral_id=form.get("ephemeral_id") or None,
            option_text=form.get("option_text"),
            button_text=form.get("button_text"),
        )
        label = form.get("option_text") or form.get("button_text") or form.get("action_id", "")
        if await self._ui_send(envelope, f"clicked {label!r} ({form.get('action_id', '')})") is not None:
            await self._settle()
        return self._back(request)

    @staticmethod
    def _state_values(view: dict[str, Any], form: Any) -> dict[str, Any]:
        """``view.state.values`` in Slack's shapes from the submitted form fields."""
        values: dict[str, Any] = {}
        for block_id, action_id, element in input_fields(view):
            kind = str(element.get("type"))
            got = [str(v) for v in form.getall(field_name(block_id, action_id), []) if isinstance(v, str)]
            first = got[0] if got else ""
            options = {str(o.get("value", "")): o for o in options_of(element)}
            entry: dict[str, Any] = {"type": kind}
            if kind in TEXT_INPUTS:
                entry["value"] = first or None
            elif kind == "datepicker":
                entry["selected_date"] = first or None
            elif kind == "timepicker":
                entry["selected_time"] = first or None
            elif kind in ("static_select", "radio_buttons"):
                opt = options.get(first)
                entry["selected_option"] = (
                    {"text": opt.get("text"), "value": first} if opt is not None else ({"text": {"type": "plain_text", "text": first}, "value": first} if first else None)
                )
            elif kind in SINGLE_SELECTS:
                entry[SINGLE_SELECTS[kind]] = first or None
            elif kind in ("checkboxes", "multi_static_select"):
                entry["selected_options"] = [
                    {"text": options[v].get("text"), "value": v} for v in got if v in options
                ]
            elif kind in MULTI_SELECTS:
                entry[MULTI_SELECTS[kind]] = [v for v in got if v]
            else:
                entry["value"] = first or None
            values.setdefault(block_id, {})[action_id] = entry
        return values

    async def _handle_ui_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        view_id = str(form.get("view_id") or "")
        user_id = str(form.get("user_id") or "U0ALICE")
        view = self.state.views.get(view_id)
        if view is None:
            self.state.notice = f"submit: view {view_id} is not open"
            return self._back(request)
        values = self._state_values(view, form)
        draft = {
            field_name(b, a): [str(v) for v in form.getall(field_name(b, a), []) if isinstance(v, str)]
            for b, a, _ in input_fields(view)
        }
        envelope = self.view_submission_envelope(
            callback_id=str(view.get("callback_id", "")),
            values=values,
            user_id=user_id,
            private_metadata=str(view.get("private_metadata", "")),
            view_id=view_id,
        )
        ack = await self._ui_send(envelope, f"submitted {view.get('callback_id', '')!r}")
        if ack is None:
            self.state.view_drafts[view_id] = draft
            return self._back(request)
        payload = ack.get("payload") if isinstance(ack.get("payload"), dict) else {}
        action = payload.get("response_action")
        try:
            if action == "errors":
                self.state.view_errors[view_id] = {str(k): str(v) for k, v in (payload.get("errors") or {}).items()}
                self.state.view_drafts[view_id] = draft
            elif action == "update":
                current = self.state.views.get(view_id, view)
                new = self._web_api._materialize(
                    payload.get("view") or {}, view_id=view_id, root_view_id=current.get("root_view_id", view_id),
                    previous_view_id=current.get("previous_view_id"), expected_type=("modal",),
                )
                self.state.views[view_id] = new
                self.state.view_errors.pop(view_id, None)
                self.state.view_drafts.pop(view_id, None)
            elif action == "push":
                new_id = self.state.next_view_id()
                new = self._web_api._materialize(
                    payload.get("view") or {}, view_id=new_id, root_view_id=view.get("root_view_id", view_id),
                    previous_view_id=view_id, expected_type=("modal",),
                )
                self.state.views[new_id] = new
                self.state.view_drafts[view_id] = draft
                self.state.modal_stack.append(new_id)
                self.state.view_owners[new_id] = user_id
            elif action == "clear":
                for vid in list(self.state.modal_stack):
                    self.state.close_modal(vid)
            else:
                self.state.close_modal(view_id)
        except SlackError as err:
            self.state.notice = f"submitted {view.get('callback_id', '')!r}: bad response_action view ({err})"
        self.state.changed.notify()
        await self._settle()
        return self._back(request)

    async def _handle_ui_close(self, request: web.Request) -> web.Response:
        form = await request.post()
        view_id = str(form.get("view_id") or "")
        user_id = str(form.get("user_id") or "U0ALICE")
        view = self.state.views.get(view_id)
        self.state.close_modal(view_id)
        if view is not None and view.get("notify_on_close"):
            payload = payloads.view_closed(
                view=view, user_id=user_id, user_name=self.state.user_name(user_id), team_id=self.team_id,
                team_domain=self.team_domain, api_app_id=self.app_id,
            )
            await self._ui_send(payloads.envelope("interactive", payload, accepts_response_payload=False), f"closed {view_id}")
        return self._back(request)
