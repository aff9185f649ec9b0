"""The Web API half of the emulator: ``/api/<method>`` as slack_sdk's AsyncWebClient sees it.

slack_sdk only accepts an answer with HTTP 200, ``Content-Type: application/json`` and
``"ok": true``; everything else becomes ``SlackApiError``. So every path here, including bad
input, ends in a JSON body, and errors use the exact error strings real Slack returns, because
the bot's code branches on them (``channel_not_found``, ``ratelimited``, ...).

With a ``RateLimiter`` (the default in ``SlackSandbox``), a call beyond Slack's published rate
limits is refused as Slack refuses it: HTTP 429, ``ratelimited`` and ``Retry-After`` (see
``rate_limits``). An injected ``fail_next`` answer comes first and costs no token.

Params may arrive as a query string (GET users.info), a form (auth.test,
apps.connections.open) or JSON (chat.*, views.*); they are merged, and unknown ones are ignored
because Bolt adds ``team_id`` to every call.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .rate_limits import POST_MESSAGE, RateLimiter
from .state import ApiCall, WorkspaceState

log = logging.getLogger("sandbox.web_api")

Params = dict[str, Any]

BOT_SCOPES = "app_mentions:read,channels:history,channels:read,chat:write,commands,groups:read,im:write,users:read"

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000
MAX_SECTION_TEXT = 3000
MAX_MODAL_TITLE = 24


class SlackError(Exception):
    """An ``ok: false`` answer. ``status`` stays 200 for ordinary Slack errors."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.messages = messages or []

    def response(self) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return web.json_response(body, status=self.status, headers=self.headers)


class _BadBody(Exception):
    """The request body could not be decoded; ``error`` is Slack's name for that."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def read_params(request: web.Request) -> Params:
    """Merge query string and body (form or JSON). Raises ``_BadBody`` on undecodable JSON."""
    params: Params = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _BadBody("invalid_json") from exc
            if not isinstance(body, dict):
                raise _BadBody("invalid_json")
            params.update(body)
    else:
        try:
            form = await request.post()
        except Exception as exc:  # undecodable form or malformed multipart
            raise _BadBody("invalid_form_data") from exc
        for key in form:
            value = form.get(key)
            if isinstance(value, str):
                params[key] = value
    return params


def token_from(request: web.Request, params: Params) -> str | None:
    """Bearer header first (what the SDK sends), else a ``token`` param; never kept in params."""
    param_token = params.pop("token", None)
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    return param_token if isinstance(param_token, str) and param_token else None


def _decode_json_field(value: Any, error: str) -> Any:
    """Form-encoded callers send ``blocks``/``view`` as JSON strings; JSON callers send objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackError(error) from exc
    return value


def _check_blocks(blocks: Any, limit: int) -> list[dict[str, Any]]:
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks):
        raise SlackError("invalid_blocks", messages=["[ERROR] blocks must be a list of objects with a type"])
    if len(blocks) > limit:
        raise SlackError("invalid_blocks", messages=[f"[ERROR] no more than {limit} items allowed"])
    for block in blocks:
        text = block.get("text")
        if block["type"] == "section" and isinstance(text, dict):
            if len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
                raise SlackError(
                    "invalid_blocks", messages=[f"[ERROR] must be less than {MAX_SECTION_TEXT + 1} characters"]
                )
    return blocks


def _message_body(params: Params) -> dict[str, Any]:
    """The visible parts of a chat.* call, validated the way Slack does."""
    out: dict[str, Any] = {}
    if "text" in params and params["text"] is not None:
        out["text"] = str(params["text"])
    if "blocks" in params and params["blocks"] is not None:
        out["blocks"] = _check_blocks(_decode_json_field(params["blocks"], "invalid_blocks"), MAX_MESSAGE_BLOCKS)
    if "attachments" in params and params["attachments"] is not None:
        out["attachments"] = _decode_json_field(params["attachments"], "invalid_attachments")
    if len(out.get("text", "")) > MAX_TEXT_CHARS:
        raise SlackError("msg_too_long")
    return out


def _cursor_for(channel_id: str) -> str:
    """Slack's cursors are opaque base64 (``dGVhbTpDMDYxRkE1UEI=`` is ``team:C061FA5PB``): the
    first channel of the next page."""
    return base64.b64encode(f"team:{channel_id}".encode()).decode()


def _cursor_offset(cursor: str, channels: list[dict[str, Any]]) -> int:
    try:
        channel_id = base64.b64decode(cursor.encode(), validate=True).decode().removeprefix("team:")
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    for index, channel in enumerate(channels):
        if channel["id"] == channel_id:
            return index
    raise SlackError("invalid_cursor")


def _has_content(body: dict[str, Any]) -> bool:
    return bool(body.get("text") or body.get("blocks") or body.get("attachments"))


class WebApi:
    """Method handlers over a ``WorkspaceState``; ``handle`` is the aiohttp entry point."""

    def __init__(
        self,
        state: WorkspaceState,
        *,
        issue_ws_url: Callable[[web.Request], str],
        base_url: Callable[[], str],
        on_connections_open: Callable[[], None],
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.state = state
        self.rate_limiter = rate_limiter
        self._issue_ws_url = issue_ws_url
        self._base_url = base_url
        self._on_connections_open = on_connections_open
        self.methods: dict[str, Callable[[Params, web.Request], dict[str, Any]]] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "apps.connections.open": self.apps_connections_open,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "users.info": self.users_info,
            "users.lookupByEmail": self.users_lookup_by_email,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.list": self.conversations_list,
            "conversations.open": self.conversations_open,
        }

    # ---- entry point ------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await read_params(request)
            bad_body: str | None = None
        except _BadBody as exc:
            params, bad_body = dict(request.query), exc.error
        token = token_from(request, params)
        self.state.record_call(ApiCall(method=method, params=params, token=token, at=time.time()))
        if method == "apps.connections.open":
            self._on_connections_open()
        try:
            if bad_body:
                raise SlackError(bad_body)
            handler = self.methods.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            self._inject_failure(method)
            self._authenticate(method, token)
            self._enforce_rate_limit(method, params)
            body = handler(params, request)
        except SlackError as err:
            return err.response()
        except Exception:  # never let bad input take the server down
            log.exception("sandbox: %s crashed on %r", method, params)
            return SlackError("internal_error", status=500).response()
        headers = {"x-oauth-scopes": BOT_SCOPES} if method == "auth.test" else None
        return web.json_response({"ok": True, **body}, headers=headers)

    def _inject_failure(self, method: str) -> None:
        rule = self.state.take_failure(method)
        if rule is None:
            return
        headers = {"Retry-After": str(rule.retry_after)} if rule.status == 429 and rule.retry_after is not None else {}
        raise SlackError(rule.error, status=rule.status, headers=headers)

    def _enforce_rate_limit(self, method: str, params: Params) -> None:
        """Slack's answer to a call over its limit: 429 ``ratelimited`` with ``Retry-After``.
        chat.postMessage is limited per channel, so ``#name`` and the channel's ID share one."""
        if self.rate_limiter is None:
            return
        channel = params.get("channel") if method == POST_MESSAGE else None
        if isinstance(channel, str) and channel:
            channel = self.state.resolve_channel(channel)
        retry_after = self.rate_limiter.check(method, channel if isinstance(channel, str) else None)
        if retry_after:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})

    @staticmethod
    def _authenticate(method: str, token: str | None) -> None:
        if method == "api.test":
            return
        if not token:
            raise SlackError("not_authed")
        wanted = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if not token.startswith(wanted):
            raise SlackError("invalid_auth")

    # ---- auth / connections -----------------------------------------------------------

    def api_test(self, params: Params, request: web.Request) -> dict[str, Any]:
        return {"args": {k: v for k, v in params.items() if isinstance(v, str)}}

    def auth_test(self, params: Params, request: web.Request) -> dict[str, Any]:
        st = self.state
        return {
            "url": f"https://{st.team_domain}.slack.com/",
            "team": st.team_domain.capitalize(),
            "user": st.user_name(st.bot_user_id),
            "team_id": st.team_id,
            "user_id": st.bot_user_id,
            "bot_id": st.bot_id,
            "app_id": st.app_id,
            "is_enterprise_install": False,
        }

    def apps_connections_open(self, params: Params, request: web.Request) -> dict[str, Any]:
        return {"url": self._issue_ws_url(request)}

    # ---- chat -------------------------------------------------------------------------

    def _channel(self, params: Params) -> str:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise SlackError("channel_not_found")
        return self.state.resolve_channel(channel)

    def _public_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        """What Slack returns as ``message``: the stored message minus sandbox bookkeeping."""
        out = {k: v for k, v in msg.items() if k not in ("edits", "channel")}
        if not out.get("thread_ts"):
            out.pop("thread_ts", None)
        return out

    def chat_post_message(self, params: Params, request: web.Request) -> dict[str, Any]:
        channel = self._channel(params)
        body = _message_body(params)
        if not _has_content(body):
            raise SlackError("no_text")
        st = self.state
        ts = st.next_ts()
        thread_ts = params.get("thread_ts") or None
        msg: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "text": body.get("text", ""),
            "blocks": body.get("blocks", []),
            "user": st.bot_user_id,
            "bot_id": st.bot_id,
            "app_id": st.app_id,
            "team": st.team_id,
            "thread_ts": str(thread_ts) if thread_ts else None,
            "edits": 0,
        }
        if "attachments" in body:
            msg["attachments"] = body["attachments"]
        if thread_ts and params.get("reply_broadcast") in (True, "true", "1", 1):
            msg["reply_broadcast"] = True
        if params.get("metadata") is not None:
            msg["metadata"] = _decode_json_field(params["metadata"], "invalid_metadata_format")
        st.messages.setdefault(channel, []).append(msg)
        st.changed.notify()
        return {"channel": channel, "ts": ts, "message": self._public_message(msg)}

    def chat_update(self, params: Params, request: web.Request) -> dict[str, Any]:
        channel = self._channel(params)
        ts = params.get("ts")
        msg = self.state.find_message(channel, str(ts)) if ts else None
        if msg is None:
            raise SlackError("message_not_found")
        body = _message_body(params)
        if not _has_content(body):
            raise SlackError("no_text")
        msg.update(body)
        if params.get("metadata") is not None:
            msg["metadata"] = _decode_json_field(params["metadata"], "invalid_metadata_format")
        msg["edits"] += 1
        msg["edited"] = {"user": self.state.bot_user_id, "ts": self.state.next_ts()}
        self.state.changed.notify()
        return {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": self._public_message(msg)}

    def chat_delete(self, params: Params, request: web.Request) -> dict[str, Any]:
        channel = self._channel(params)
        ts = params.get("ts")
        msg = self.state.find_message(channel, str(ts)) if ts else None
        if msg is None:
            raise SlackError("message_not_found")
        self.state.messages[channel].remove(msg)
        self.state.changed.notify()
        return {"channel": channel, "ts": msg["ts"]}

    def chat_post_ephemeral(self, params: Params, request: web.Request) -> dict[str, Any]:
        channel = self._channel(params)
        if not params.get("user"):
            raise SlackError("user_not_in_channel")
        body = _message_body(params)
        if not _has_content(body):
            raise SlackError("no_text")
        message_ts = self.state.next_ts()
        self.state.ephemerals.append({**params, **body, "channel": channel, "message_ts": message_ts, "id": message_ts})
        self.state.changed.notify()
        return {"message_ts": message_ts}

    def chat_get_permalink(self, params: Params, request: web.Request) -> dict[str, Any]:
        channel = self._channel(params)
        ts = params.get("message_ts")
        if not ts or self.state.find_message(channel, str(ts)) is None:
            raise SlackError("message_not_found")
        return {"channel": channel, "permalink": f"{self._base_url()}/archives/{channel}/p{str(ts).replace('.', '')}"}

    # ---- views ------------------------------------------------------------------------

    def _view_spec(self, params: Params) -> dict[str, Any]:
        view = _decode_json_field(params.get("view"), "invalid_arguments")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: view"])
        return view

    def _materialize(
        self,
        spec: dict[str, Any],
        *,
        view_id: str,
        root_view_id: str,
        previous_view_id: str | None,
        expected_type: tuple[str, ...],
    ) -> dict[str, Any]:
        vtype = spec.get("type")
        if vtype not in expected_type:
            raise SlackError("invalid_arguments", messages=[f"[ERROR] must be one of {list(expected_type)} [json-pointer:/view/type]"])
        if vtype == "modal":
            title = spec.get("title")
            if not isinstance(title, dict) or not title.get("text"):
                raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: title [json-pointer:/view]"])
            if len(str(title["text"])) > MAX_MODAL_TITLE:
                raise SlackError(
                    "invalid_arguments",
                    messages=[f"[ERROR] must be less than {MAX_MODAL_TITLE + 1} characters [json-pointer:/view/title/text]"],
                )
        blocks = _check_blocks(spec.get("blocks", []), MAX_VIEW_BLOCKS)
        st = self.state
        return {
            "id": view_id,
            "team_id": st.team_id,
            "type": vtype,
            "blocks": blocks,
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": spec.get("title"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": spec.get("close"),
            "submit": spec.get("submit"),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id,
            "app_id": st.app_id,
            "external_id": spec.get("external_id", ""),
            "app_installed_team_id": st.team_id,
            "bot_id": st.bot_id,
        }

    def _store_view(self, view: dict[str, Any]) -> dict[str, Any]:
        self.state.views[view["id"]] = view
        self.state.changed.notify()
        return {"view": view}

    def views_open(self, params: Params, request: web.Request) -> dict[str, Any]:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: trigger_id"])
        spec = self._view_spec(params)
        view_id = self.state.next_view_id()
        view = self._materialize(spec, view_id=view_id, root_view_id=view_id, previous_view_id=None, expected_type=("modal",))
        self.state.modal_stack[:] = [view_id]
        self.state.claim_view(view_id, params.get("trigger_id"))
        return self._store_view(view)

    def views_push(self, params: Params, request: web.Request) -> dict[str, Any]:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: trigger_id"])
        spec = self._view_spec(params)
        view_id = self.state.next_view_id()
        view = self._materialize(spec, view_id=view_id, root_view_id=view_id, previous_view_id=None, expected_type=("modal",))
        self.state.modal_stack.append(view_id)
        self.state.claim_view(view_id, params.get("trigger_id"))
        return self._store_view(view)

    def _find_view(self, params: Params) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", messages=["[ERROR] either view_id or external_id is required"])
        for view in self.state.views.values():
            if (view_id and view["id"] == view_id) or (external_id and view.get("external_id") == external_id):
                return view
        raise SlackError("not_found")

    def views_update(self, params: Params, request: web.Request) -> dict[str, Any]:
        current = self._find_view(params)
        if params.get("hash") and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        spec = self._view_spec(params)
        view = self._materialize(
            spec,
            view_id=current["id"],
            root_view_id=current["root_view_id"],
            previous_view_id=current.get("previous_view_id"),
            expected_type=(current["type"],),
        )
        if not spec.get("external_id") and current.get("external_id"):
            view["external_id"] = current["external_id"]
        self.state.view_errors.pop(view["id"], None)
        self.state.view_drafts.pop(view["id"], None)
        for user_id, home in self.state.home_views.items():
            if home["id"] == view["id"]:
                self.state.home_views[user_id] = view
        return self._store_view(view)

    def views_publish(self, params: Params, request: web.Request) -> dict[str, Any]:
        user_id = params.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: user_id"])
        current = self.state.home_views.get(user_id)
        if current and params.get("hash") and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        spec = self._view_spec(params)
        view_id = current["id"] if current else self.state.next_view_id()
        view = self._materialize(spec, view_id=view_id, root_view_id=view_id, previous_view_id=None, expected_type=("home",))
        self.state.home_views[user_id] = view
        return self._store_view(view)

    # ---- directory --------------------------------------------------------------------

    def users_info(self, params: Params, request: web.Request) -> dict[str, Any]:
        user = self.state.users.get(str(params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def users_lookup_by_email(self, params: Params, request: web.Request) -> dict[str, Any]:
        """As Slack: the active user whose profile has this address (any case), else users_not_found."""
        email = str(params.get("email", "")).strip().lower()
        for user in self.state.users.values():
            if email and not user.get("deleted") and str((user.get("profile") or {}).get("email", "")).lower() == email:
                return {"user": user}
        raise SlackError("users_not_found")

    def conversations_history(self, params: Params, request: web.Request) -> dict[str, Any]:
        """A channel's messages, newest first, without thread replies (as Slack's method): what a
        bot reads to find out whether a post it may have made before a crash landed. Message
        `metadata` is included only with ``include_all_metadata``, as in Slack."""
        raw = params.get("channel")
        channel_id = self.state.resolve_channel(raw) if isinstance(raw, str) and raw else ""
        if not channel_id or channel_id not in self.state.channels:
            raise SlackError("channel_not_found")
        try:
            oldest = float(params.get("oldest") or 0)
            latest = float(params.get("latest") or "inf")
            limit = max(1, min(999, int(params.get("limit") or 100)))
            start = int(params.get("cursor") or 0)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("true", "1")
        found = [
            m for m in reversed(self.state.messages.get(channel_id, []))
            if (not m.get("thread_ts") or m.get("thread_ts") == m["ts"] or m.get("reply_broadcast"))
            and oldest <= float(m["ts"]) <= latest
        ]
        page = found[start : start + limit]
        shown = []
        for message in page:
            public = self._public_message(message)
            if not with_metadata:
                public.pop("metadata", None)
            shown.append(public)
        more = start + limit < len(found)
        return {
            "messages": shown,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def conversations_info(self, params: Params, request: web.Request) -> dict[str, Any]:
        raw = params.get("channel")
        channel_id = self.state.resolve_channel(raw) if isinstance(raw, str) and raw else ""
        if not channel_id or channel_id[0] not in "CGD":
            raise SlackError("channel_not_found")
        info = self.state.channels.get(channel_id, {})
        kind = channel_id[0]
        is_private = bool(info.get("is_private", kind == "G"))
        return {
            "channel": {
                "id": channel_id,
                "name": self.state.channel_name(channel_id),
                "is_channel": kind == "C",
                "is_group": kind == "G",
                "is_im": kind == "D",
                "is_private": is_private or kind == "D",
                "is_archived": False,
                "is_general": False,
                "is_member": True,
                "created": 1700000000,
                "context_team_id": self.state.team_id,
            }
        }

    def conversations_list(self, params: Params, request: web.Request) -> dict[str, Any]:
        """Cursor-paged like Slack: ``limit`` (default 100, at most 1000), ``cursor`` from the last
        page's ``response_metadata.next_cursor`` (``""`` on the last page), ``types`` (default
        ``public_channel``), ``exclude_archived``."""
        try:
            limit = int(params.get("limit") or 100)
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        if not 1 <= limit <= 1000:
            raise SlackError("invalid_limit")
        wanted = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
        if not wanted <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")
        exclude_archived = str(params.get("exclude_archived", "")).lower() in ("true", "1")
        listed = [
            c for c in self.state.channels.values()
            if ("private_channel" if c.get("is_private") else "public_channel") in wanted
            and not (exclude_archived and c.get("is_archived"))
        ]
        start = 0
        if params.get("cursor"):
            start = _cursor_offset(str(params["cursor"]), listed)
        page = listed[start : start + limit]
        rest = listed[start + limit :]
        next_cursor = _cursor_for(rest[0]["id"]) if rest else ""
        return {
            "channels": [self._channel_object(c) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _channel_object(self, channel: dict[str, Any]) -> dict[str, Any]:
        """A channel as conversations.list returns it (Slack's documented example, trimmed to real
        values for this workspace)."""
        private = bool(channel.get("is_private"))
        name = channel["name"]
        return {
            "id": channel["id"],
            "name": name,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "created": 1700000000,
            "is_archived": bool(channel.get("is_archived")),
            "is_general": name == "general",
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.state.team_id,
            "updated": 1700000000000,
            "parent_conversation": None,
            "creator": self.state.bot_user_id,
            "is_ext_shared": False,
            "shared_team_ids": [self.state.team_id],
            "pending_connected_team_ids": [],
            "is_member": True,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": len(self.state.users),
        }

    def conversations_open(self, params: Params, request: web.Request) -> dict[str, Any]:
        users = params.get("users")
        if isinstance(users, str) and users:
            first = users.split(",")[0].strip()
            return {"channel": {"id": "D" + first[1:], "is_im": True, "user": first}}
        channel = params.get("channel")
        if isinstance(channel, str) and channel:
            return {"channel": {"id": channel}}
        raise SlackError("users_list_not_supplied")
