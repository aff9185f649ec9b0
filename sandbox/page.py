"""The page at ``/``: a small Slack client for one workspace, rendered on the server.

Laid out as Slack is: a sidebar (who you are, channels with unread counts, the app, a status
line), the open channel with a message box, a thread beside it, modals over it, and the App
Home. Every control is a plain ``<form method=post>`` to ``/sandbox/ui/...`` that answers 303
back to the page it came from, so the page works without script; ``/sandbox/static/page.js``
only adds live updates (it swaps the regions marked ``data-live`` when the server says something
changed), confirmation dialogs and auto-submitting menus. Text is rendered by ``mrkdwn`` and
``blockkit``, which escape everything the bot or a person sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from .blockkit import (
    MULTI_SELECTS,
    SINGLE_SELECTS,
    TEXT_INPUTS,
    Controls,
    block_html,
    blocks_html,
    field_name,
    hidden_inputs,
    input_fields,
    message_body_html,
    options_of,
)
from .mrkdwn import Viewer, plain_html, text_object_html, text_of

__all__ = [
    "HOME", "MULTI_SELECTS", "SINGLE_SELECTS", "TEXT_INPUTS", "PageRequest", "dm_channel_of", "dm_owner",
    "field_name", "input_fields", "options_of", "render_page",
]

HOME = "home"


@dataclass(frozen=True)
class PageRequest:
    """What the browser asked to see: as whom, which channel (or ``home``), which thread."""

    user: str
    channel: str
    thread: str = ""
    tab: str = "home"  # the App Home's tab: home | messages | about


def dm_channel_of(user_id: str) -> str:
    """The id of the app's direct-message channel with a user (as ``conversations.open`` gives)."""
    return "D" + user_id[1:]


def dm_owner(channel_id: str) -> str | None:
    """The person a DM channel (``D…``, or a user id the bot posted to directly) belongs to."""
    if channel_id[:1] == "D":
        return "U" + channel_id[1:]
    if channel_id[:1] in ("U", "W"):
        return channel_id
    return None


def _ts_key(ts: Any) -> float:
    try:
        return float(ts)
    except (TypeError, ValueError):
        return 0.0


def _zone(name: Any) -> tzinfo:
    try:
        return ZoneInfo(str(name))
    except Exception:
        return timezone.utc


def _clock(ts: Any, tz: tzinfo) -> str:
    when = datetime.fromtimestamp(_ts_key(ts), timezone.utc).astimezone(tz)
    return f"{when.hour % 12 or 12}:{when:%M %p}"


def _live(region_id: str, html: str, tag: str = "div", css: str = "") -> str:
    """A region the page's script may swap; ``data-live`` changes only when its content does."""
    digest = hashlib.blake2s(html.encode(), digest_size=6).hexdigest()
    cls = f' class="{css}"' if css else ""
    return f'<{tag} id="{region_id}"{cls} data-live="{digest}">{html}</{tag}>'


class _Page:
    """One rendering of the page for one person: who they are and what the workspace holds."""

    def __init__(self, snapshot: dict[str, Any], request: PageRequest) -> None:
        self.snap = snapshot
        self.req = request
        self.users: dict[str, dict[str, Any]] = snapshot["directory"]["users"]
        self.me = self.users.get(request.user) or {"id": request.user, "name": request.user.lower(), "tz": "UTC"}
        self.tz = _zone(self.me.get("tz"))
        self.viewer = Viewer(
            users={uid: u.get("display_name") or u["name"] for uid, u in self.users.items()},
            channels={c["id"]: c["name"] for c in snapshot["directory"]["channels"]},
            tz=self.tz,
        )
        self.people = [(uid, u["name"]) for uid, u in self.users.items() if not u.get("is_bot")]
        self.rooms = [(c["id"], c["name"]) for c in snapshot["directory"]["channels"]]
        self._threads: dict[str, dict[Any, list[dict[str, Any]]]] = {}

    def controls(self, ctx: dict[str, Any], detached: bool = False) -> Controls:
        return Controls(ctx={**ctx, "user_id": self.req.user}, viewer=self.viewer, people=self.people,
                        rooms=self.rooms, detached=detached)

    # ---- names ----------------------------------------------------------------------------

    def channel_label(self, channel_id: str) -> str:
        owner = dm_owner(channel_id)
        if owner is not None:
            return "Pulser" if owner == self.req.user else f"DM {self.viewer.users.get(owner, owner)}"
        return "#" + self.viewer.channels.get(channel_id, channel_id.lower())

    def is_mine(self, channel_id: str) -> bool:
        owner = dm_owner(channel_id)
        return owner is None or owner == self.req.user

    def dm_messages(self) -> list[dict[str, Any]]:
        """The app's DM with me, whichever id the bot posted it to (``D…`` or my user id)."""
        channels = self.snap["channels"]
        msgs = []
        for cid in (dm_channel_of(self.req.user), self.req.user):
            msgs += channels.get(cid, {}).get("messages", [])
        return sorted(msgs, key=lambda m: _ts_key(m.get("ts")))

    # ---- sidebar --------------------------------------------------------------------------

    def sidebar(self) -> str:
        team = self.snap["team"]
        unread = self.snap["ui"]["unread"]
        links = []
        for cid, name in self.rooms:
            count = unread.get(cid, 0)
            css = "chan" + (" active" if cid == self.req.channel else "") + (" unread" if count else "")
            badge = f'<span class="badge">{count}</span>' if count else ""
            links.append(f'<a class="{css}" href="/?c={escape(cid)}"><span class="hash">#</span>{escape(name)}{badge}</a>')
        dm_unread = sum(unread.get(cid, 0) for cid in (dm_channel_of(self.req.user), self.req.user))
        home_css = "chan app" + (" active" if self.req.channel == HOME else "") + (" unread" if dm_unread else "")
        dm_badge = f'<span class="badge">{dm_unread}</span>' if dm_unread else ""
        app_link = (
            '<form method="post" action="/sandbox/ui/home" class="inline">'
            f'{hidden_inputs({"user_id": self.req.user})}'
            f'<button type="submit" class="{home_css}"><span class="app-icon">P</span>Pulser{dm_badge}</button></form>'
        )
        return (
            f'<div class="team">{escape(team["domain"].capitalize())} <span class="muted">sandbox</span></div>'
            f"{self.user_switcher()}"
            f'<div class="section-title">Channels</div>{"".join(links) or "<span class=muted>none yet</span>"}'
            f'<div class="section-title">Apps</div>{app_link}'
            f"{self.status_line()}"
        )

    def user_switcher(self) -> str:
        options = []
        for uid, user in self.users.items():
            if user.get("is_bot"):
                continue
            selected = " selected" if uid == self.req.user else ""
            options.append(f'<option value="{escape(uid)}"{selected}>{escape(user["name"])} — {escape(role_of(user))}</option>')
        if self.req.user not in self.users:
            options.insert(0, f'<option value="{escape(self.req.user)}" selected>{escape(self.req.user)}</option>')
        return (
            '<form class="switcher" method="post" action="/sandbox/ui/user">'
            f'<label>You are <select name="user_id" data-autosubmit>{"".join(options)}</select></label>'
            '<noscript><button type="submit">Switch</button></noscript></form>'
        )

    def status_line(self) -> str:
        conn = self.snap["connections"]
        if conn["open"]:
            socket = f'<div><span class="dot on"></span>Socket Mode connected ({conn["open"]} socket{"s" if conn["open"] != 1 else ""})</div>'
        else:
            socket = '<div><span class="dot off"></span>Socket Mode: no bot connected</div>'
        calls = f'<div class="muted">Web API calls: {self.snap["call_count"]}</div>'
        return f'<div class="status" id="status">{socket}{rate_limits_html(self.snap["rate_limits"])}{calls}</div>'

    # ---- messages -------------------------------------------------------------------------

    def author(self, user_id: str) -> tuple[str, str, bool]:
        """(name, avatar letter, is an app) of whoever posted."""
        user = self.users.get(user_id) or {}
        if user.get("is_bot") or user_id == self.snap["team"]["bot_user_id"]:
            return "Pulser", "P", True
        name = user.get("name") or user_id
        return name, name[:1].upper(), False

    def message(self, msg: dict[str, Any], channel_id: str, *, in_thread: bool = False) -> str:
        ctx = {"channel_id": channel_id, "message_ts": msg.get("ts", "")}
        body = message_body_html(msg, self.controls(ctx))
        name, letter, app = self.author(str(msg.get("user") or self.snap["team"]["bot_user_id"]))
        edited = ' <span class="muted">(edited)</span>' if msg.get("edits") else ""
        replies = "" if in_thread else self.thread_summary(msg, channel_id)
        return self._frame(f'm{msg.get("ts", "")}', name, letter, app, msg.get("ts"), body + replies, edited)

    def _frame(self, anchor: str, name: str, letter: str, app: bool, ts: Any, body: str, after_time: str = "",
               css: str = "msg", note: str = "") -> str:
        badge = '<span class="app-badge">APP</span>' if app else ""
        avatar = f'<div class="avatar{" app" if app else ""}">{escape(letter)}</div>'
        clock = f'<time class="muted">{escape(_clock(ts, self.tz))}</time>' if ts else ""
        head = f'<div class="msg-head"><b class="who">{escape(name)}</b>{badge}{clock}{after_time}</div>'
        return f'<div class="{css}" id="{escape(anchor.replace(".", "-"))}">{avatar}<div class="msg-main">{note}{head}{body}</div></div>'

    def thread_summary(self, msg: dict[str, Any], channel_id: str) -> str:
        replies = self.replies(msg, channel_id)
        if not replies:
            return ""
        count = len(replies)
        last = _clock(replies[-1].get("ts") or replies[-1].get("message_ts"), self.tz)
        href = f"/?c={escape(channel_id)}&amp;thread={escape(str(msg.get('ts', '')))}"
        return (
            f'<a class="replies" href="{href}">{count} {"reply" if count == 1 else "replies"}</a>'
            f' <span class="muted">Last reply {escape(last)}</span>'
        )

    def replies(self, parent: dict[str, Any], channel_id: str) -> list[dict[str, Any]]:
        """A message's thread replies, oldest first (indexed once per channel and rendering)."""
        if channel_id not in self._threads:
            threads: dict[Any, list[dict[str, Any]]] = {}
            for m in self.snap["channels"].get(channel_id, {}).get("messages", []):
                if m.get("thread_ts") and m.get("thread_ts") != m.get("ts"):
                    threads.setdefault(m["thread_ts"], []).append(m)
            self._threads[channel_id] = threads
        return self._threads[channel_id].get(parent.get("ts"), [])

    def ephemeral(self, eph: dict[str, Any]) -> str:
        ctx = {"ephemeral_id": eph.get("id") or eph.get("message_ts", ""), "channel_id": eph.get("channel", "")}
        body = message_body_html(eph, self.controls(ctx))
        dismiss = (
            '<form class="inline" method="post" action="/sandbox/ui/dismiss">'
            f'{hidden_inputs({"ephemeral_id": ctx["ephemeral_id"]})}<button class="link" type="submit">Dismiss</button></form>'
        )
        note = f'<div class="eph-note">👁 Only visible to you · {dismiss}</div>'
        return self._frame(f'e{eph.get("message_ts", "")}', "Pulser", "P", True, eph.get("message_ts"), body,
                           css="msg eph", note=note)

    def command_echo(self, cmd: dict[str, Any]) -> str:
        name, letter, _ = self.author(cmd["user"])
        line = f'{cmd["command"]} {cmd["text"]}'.strip()
        body = f'<div class="text"><span class="slash">{escape(line)}</span></div>'
        note = '<div class="eph-note">👁 Only visible to you</div>'
        return self._frame(f'c{cmd["ts"]}', name, letter, False, cmd["ts"], body, css="msg eph cmd", note=note)

    def timeline(self, channel_ids: list[str], messages: list[dict[str, Any]], thread: str = "") -> str:
        """Messages, my ephemerals and my slash commands of these channels, oldest first."""
        me = self.req.user
        items: list[tuple[float, str]] = []
        for msg in messages:
            cid = str(msg.get("channel") or channel_ids[0])
            top = not msg.get("thread_ts") or msg.get("thread_ts") == msg.get("ts") or msg.get("reply_broadcast")
            if thread:
                if msg.get("ts") == thread or msg.get("thread_ts") == thread:
                    items.append((_ts_key(msg.get("ts")), self.message(msg, cid, in_thread=True)))
            elif top:
                items.append((_ts_key(msg.get("ts")), self.message(msg, cid)))
        for eph in self.snap["ephemerals"]:
            if eph.get("user") != me or eph.get("channel") not in channel_ids:
                continue
            if (eph.get("thread_ts") or "") == thread:
                items.append((_ts_key(eph.get("message_ts")), self.ephemeral(eph)))
        if not thread:
            for cmd in self.snap["commands"]:
                if cmd["user"] == me and cmd["channel"] in channel_ids:
                    items.append((_ts_key(cmd["ts"]), self.command_echo(cmd)))
        items.sort(key=lambda item: item[0])
        return "".join(html for _, html in items)

    # ---- panes ----------------------------------------------------------------------------

    def channel_pane(self) -> str:
        cid = self.req.channel
        info = self.snap["channels"].get(cid, {})
        label = self.channel_label(cid)
        body = self.timeline([cid], info.get("messages", []))
        if not body:
            body = f'<div class="empty">This is the very beginning of <b>{escape(label)}</b>. Try <span class="slash">/pulser help</span> below.</div>'
        return f'<header class="chan-head"><h1>{escape(label)}</h1></header><div class="messages" id="messages">{body}</div>'

    def home_pane(self) -> str:
        tabs = []
        for tab, title in (("home", "Home"), ("messages", "Messages"), ("about", "About")):
            css = "tab active" if tab == self.req.tab else "tab"
            tabs.append(f'<a class="{css}" href="/?c=home&amp;tab={tab}">{title}</a>')
        head = (
            '<header class="chan-head"><h1><span class="app-icon big">P</span>Pulser '
            f'<span class="app-badge">APP</span></h1><nav class="tabs">{"".join(tabs)}</nav></header>'
        )
        if self.req.tab == "messages":
            dm = dm_channel_of(self.req.user)
            body = self.timeline([dm, self.req.user], self.dm_messages())
            body = body or '<div class="empty">No messages from Pulser yet.</div>'
            return f'{head}<div class="messages" id="messages">{body}</div>'
        if self.req.tab == "about":
            about = ("Pulser watches heartbeats, Heroku apps and alert sources, and posts what needs a person here. "
                     "Type <span class=\"slash\">/pulser help</span> in any channel to see what it can do.")
            return f'{head}<div class="home"><p>{about}</p></div>'
        view = self.snap["home_views"].get(self.req.user)
        if not view:
            body = '<div class="empty">Pulser has not published a Home tab for you yet.</div>'
        else:
            controls = self.controls({"view_id": view.get("id", "")})
            body = blocks_html(view.get("blocks"), controls)
        return f'{head}<div class="home">{body}</div>'

    def thread_pane(self) -> str:
        if not self.req.thread or self.req.channel == HOME:
            return ""
        cid = self.req.channel
        messages = self.snap["channels"].get(cid, {}).get("messages", [])
        body = self.timeline([cid], messages, thread=self.req.thread) or '<div class="empty">This thread is gone.</div>'
        close = f'<a class="close" href="/?c={escape(cid)}" title="Close">×</a>'
        return (
            f'<header class="chan-head"><h2>Thread <span class="muted">{escape(self.channel_label(cid))}</span></h2>{close}</header>'
            f'<div class="messages">{body}</div>'
        )

    def composer(self) -> str:
        if self.req.channel == HOME:
            if self.req.tab != "messages":
                return ""
            channel, label = dm_channel_of(self.req.user), "Pulser"
        else:
            channel, label = self.req.channel, self.channel_label(self.req.channel)
        return (
            '<form id="composer" class="composer" method="post" action="/sandbox/ui/command">'
            f'{hidden_inputs({"user_id": self.req.user, "channel_id": channel})}'
            f'<input name="message" placeholder="Message {escape(label)} — try /pulser help" autocomplete="off" autofocus>'
            '<button type="submit" class="btn primary">Send</button></form>'
        )

    def notice(self) -> str:
        text = self.snap["ui"]["notice"]
        return f'<div class="notice">{escape(text)}</div>' if text else ""

    def modal(self) -> str:
        ui = self.snap["ui"]
        owners = ui.get("view_owners", {})
        stack = [
            self.snap["views"][v] for v in ui["modal_stack"]
            if v in self.snap["views"] and owners.get(v, self.req.user) == self.req.user
        ]
        if not stack:
            return ""
        return f'<div class="overlay">{modal_html(stack[-1], self, len(stack))}</div>'


def role_of(user: dict[str, Any]) -> str:
    """How Pulser sees this person: an admin (workspace admin/owner, or listed in PULSER_ADMINS)
    may register apps and change monitoring; a member may not."""
    if user.get("is_owner") or user.get("is_primary_owner"):
        return "workspace owner"
    if user.get("is_admin"):
        return "workspace admin"
    if user.get("pulser_admin"):
        return "Pulser admin (PULSER_ADMINS)"
    return "member"


def rate_limits_html(limits: dict[str, Any]) -> str:
    """One line: are Slack's rate limits on, and which calls were refused with a 429."""
    if not limits["enabled"]:
        return '<div class="muted">Rate limits: <b>off</b> (every call is served)</div>'
    if not limits["refused_total"]:
        return "<div>Rate limits: on · refused (429): none</div>"
    by_channel = limits["refused_by_channel"]
    parts = []
    for method, count in limits["refused"].items():
        text = f"{method} {count}"
        if method == "chat.postMessage" and by_channel:
            text += " (" + ", ".join(f"{channel} {n}" for channel, n in by_channel.items()) + ")"
        parts.append(escape(text))
    return f'<div class="warn">Rate limits: on · refused (429): <b>{limits["refused_total"]}</b> — {" · ".join(parts)}</div>'


# ---- modals -----------------------------------------------------------------------------------


def _initial(element: dict[str, Any]) -> list[str]:
    """The element's initial value(s) as strings (what the form field should start with)."""
    for key in ("initial_value", "initial_user", "initial_conversation", "initial_channel", "initial_date", "initial_time"):
        if element.get(key) not in (None, ""):
            return [str(element[key])]
    if isinstance(element.get("initial_option"), dict):
        return [str(element["initial_option"].get("value", ""))]
    for key in ("initial_options", "initial_users", "initial_conversations", "initial_channels"):
        if isinstance(element.get(key), list):
            return [str(o.get("value", "")) if isinstance(o, dict) else str(o) for o in element[key]]
    return []


def _options_html(pairs: list[tuple[str, str]], selected: set[str], empty: str | None) -> str:
    out = [f'<option value="">{escape(empty)}</option>'] if empty is not None else []
    for value, label in pairs:
        sel = " selected" if value in selected else ""
        out.append(f'<option value="{escape(value)}"{sel}>{escape(label)}</option>')
    return "".join(out)


def _field_html(element: dict[str, Any], name: str, current: list[str], page: _Page, invalid: bool) -> str:
    kind = element.get("type")
    nm = escape(name)
    bad = f' id="{escape(field_id(name))}"' + (' class="invalid" aria-invalid="true"' if invalid else "")
    placeholder = escape(text_of(element.get("placeholder")))
    if kind in TEXT_INPUTS or kind in ("datepicker", "timepicker"):
        value = escape(current[0]) if current else ""
        if kind == "plain_text_input" and element.get("multiline"):
            return f'<textarea name="{nm}" rows="3" placeholder="{placeholder}"{bad}>{value}</textarea>'
        html_type = {"datepicker": "date", "timepicker": "time", "number_input": "text", "email_text_input": "email",
                     "url_text_input": "url"}.get(str(kind), "text")
        return f'<input type="{html_type}" name="{nm}" value="{value}" placeholder="{placeholder}"{bad}>'
    if kind in ("checkboxes", "radio_buttons"):
        box = "checkbox" if kind == "checkboxes" else "radio"
        items = []
        for opt in options_of(element):
            v = str(opt.get("value", ""))
            checked = " checked" if v in current else ""
            label = text_object_html(opt.get("text"), page.viewer)
            items.append(f'<label class="check"><input type="{box}" name="{nm}" value="{escape(v)}"{checked}> {label}</label>')
        return f'<div class="choices">{"".join(items)}</div>'
    if kind in SINGLE_SELECTS or kind in MULTI_SELECTS:
        if kind in ("users_select", "multi_users_select"):
            pairs = list(page.people)
        elif kind in ("conversations_select", "channels_select", "multi_conversations_select", "multi_channels_select"):
            pairs = [(cid, "#" + name) for cid, name in page.rooms]
        else:
            pairs = [(str(o.get("value", "")), text_of(o.get("text"))) for o in options_of(element)]
        known = {v for v, _ in pairs}
        pairs += [(v, v) for v in current if v and v not in known]
        multiple = " multiple" if kind in MULTI_SELECTS else ""
        empty = None if multiple else (text_of(element.get("placeholder")) or "Select an item")
        return f'<select name="{nm}"{multiple}{bad}>{_options_html(pairs, set(current), empty)}</select>'
    return f'<span class="muted">({escape(str(kind))} is not supported by the sandbox page)</span>'


def field_id(name: str) -> str:
    """The id a field's ``<label for>`` points at (a person, and a test, finds it by its label)."""
    return "f-" + hashlib.blake2s(name.encode(), digest_size=5).hexdigest()


def modal_html(view: dict[str, Any], page: _Page, depth: int) -> str:
    """A modal as Slack draws it: title bar, blocks, input fields with their errors under
    them (``response_action: errors``), and Cancel / Submit."""
    ui = page.snap["ui"]
    view_id = str(view.get("id", ""))
    errors: dict[str, str] = ui["view_errors"].get(view_id) or {}
    draft: dict[str, list[str]] = ui["view_drafts"].get(view_id) or {}
    controls = page.controls({"view_id": view_id}, detached=True)
    title = plain_html(text_of(view.get("title")))
    back = '<span class="muted">← </span>' if depth > 1 else ""
    fields = {"view_id": view_id, "user_id": page.req.user}
    out = [
        f'<div class="modal" role="dialog" aria-label="{escape(text_of(view.get("title")))}" data-view="{escape(view_id)}">',
        f'<form method="post" action="/sandbox/ui/submit">{hidden_inputs(fields)}',
        f'<header class="modal-head"><h2>{back}{title}</h2>'
        f'<button type="submit" class="close" formaction="/sandbox/ui/close" formnovalidate title="Close">×</button></header>',
        '<div class="modal-body">',
    ]
    input_ids = {block_id: (action_id, element) for block_id, action_id, element in input_fields(view)}
    for i, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "input" and isinstance(block.get("element"), dict):
            block_id = str(block.get("block_id") or f"input{i}")
            action_id, element = input_ids[block_id]
            name = field_name(block_id, action_id)
            current = draft[name] if name in draft else _initial(element)
            label = text_object_html(block.get("label"), page.viewer)
            optional = ' <span class="muted">(optional)</span>' if block.get("optional") else ""
            hint = block.get("hint")
            err = errors.get(block_id)
            out.append(
                f'<div class="input-block"><label class="label" for="{field_id(name)}">{label}{optional}</label>'
                f"{_field_html(element, name, current, page, bool(err))}"
                + (f'<div class="error" role="alert">{plain_html(str(err))}</div>' if err else "")
                + (f'<div class="hint">{text_object_html(hint, page.viewer)}</div>' if hint else "")
                + "</div>"
            )
        else:
            out.append(block_html(block, controls, str(block.get("block_id") or f"block{i}")))
    stray = {k: v for k, v in errors.items() if k not in input_ids}
    for block_id, err in stray.items():
        out.append(f'<div class="error" role="alert">{escape(block_id)}: {plain_html(str(err))}</div>')
    has_inputs = bool(input_ids)
    submit = text_of(view.get("submit")) or ("Submit" if has_inputs else "")
    close = text_of(view.get("close")) or ("Cancel" if submit else "Close")
    submit_html = f'<button type="submit" class="btn primary">{plain_html(submit)}</button>' if submit else ""
    out.append(
        '</div><footer class="modal-foot">'
        f'<button type="submit" class="btn" formaction="/sandbox/ui/close" formnovalidate>{plain_html(close)}</button>'
        f"{submit_html}</footer></form>"
    )
    out.extend(controls.pending)
    out.append("</div>")
    return "".join(out)


# ---- the page ---------------------------------------------------------------------------------


def render_page(snapshot: dict[str, Any], request: PageRequest) -> str:
    """The whole page for one person; regions with ``data-live`` are what live updates swap."""
    page = _Page(snapshot, request)
    main = page.home_pane() if request.channel == HOME else page.channel_pane()
    thread = page.thread_pane()
    title = "Pulser" if request.channel == HOME else page.channel_label(request.channel)
    return "\n".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} — Slack sandbox</title>",
        '<link rel="stylesheet" href="/sandbox/static/page.css">',
        '<script src="/sandbox/static/page.js" defer></script></head>',
        f'<body class="{"with-thread" if thread else ""}" data-since="{int(snapshot.get("version", 0))}">',
        _live("sidebar", page.sidebar(), "nav", "sidebar"),
        '<main class="main">',
        _live("notice", page.notice()),
        _live("pane", main, "section", "pane"),
        page.composer(),
        "</main>",
        _live("thread", thread, "aside", "thread") if thread else '<aside id="thread" data-live="-"></aside>',
        _live("modal", page.modal()),
        '<dialog id="confirm" class="modal confirm" aria-labelledby="confirm-title"><form method="dialog"><header class="modal-head"><h2 id="confirm-title"></h2></header>'
        '<div class="modal-body"></div><footer class="modal-foot"><button class="btn" value="deny"></button>'
        '<button class="btn primary" value="confirm"></button></footer></form></dialog>',
        "</body></html>",
    ])
