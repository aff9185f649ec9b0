"""The HTML page at ``/``: a person uses the bot from a browser with plain forms.

No JavaScript framework and no script tags: every control is a ``<form method=post>`` to
``/sandbox/ui/...``, which injects the envelope over the socket and answers 303 back to ``/``;
the page has a "refresh" link rather than a meta refresh, so typing is never interrupted. The
only inline JS is ``onclick="return confirm(...)"`` on buttons that carry a ``confirm`` object.
Everything shown comes from the bot or from whoever injected commands, so every string goes
through ``html.escape`` — the page must show ``<script>`` as text, not run it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from typing import Any


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def block_lines(blocks: Any) -> list[str]:
    """A readable, plain-text rendering of the block kinds the bot uses."""
    lines: list[str] = []
    if not isinstance(blocks, list):
        return lines
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("section", "header"):
            text = _text_of(block.get("text"))
            if text:
                lines.append(text if kind == "section" else f"# {text}")
            for f in block.get("fields") or []:
                lines.append(f"  • {_text_of(f)}")
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                lines.append(f"  [{_text_of(accessory.get('text'))}] ({accessory.get('action_id', '')})")
        elif kind == "context":
            parts = [_text_of(e) for e in block.get("elements") or [] if isinstance(e, dict) and "text" in e]
            if parts:
                lines.append("  " + " · ".join(parts))
        elif kind == "actions":
            labels = [
                f"[{_text_of(e.get('text'))}] ({e.get('action_id', '')})"
                for e in block.get("elements") or []
                if isinstance(e, dict)
            ]
            if labels:
                lines.append("  " + " ".join(labels))
        elif kind == "divider":
            lines.append("────────")
        elif kind == "input":
            lines.append(f"  {_text_of(block.get('label'))}: ____")
        elif kind:
            lines.append(f"  ({kind} block)")
    return lines


# ---- interactive elements -----------------------------------------------------------------

TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input")
SINGLE_SELECTS = {
    "static_select": "selected_option",
    "radio_buttons": "selected_option",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
}
MULTI_SELECTS = {
    "checkboxes": "selected_options",
    "multi_static_select": "selected_options",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}


def options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    """``options`` plus the options of every ``option_groups`` entry."""
    opts = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            opts.extend(o for o in group.get("options") or [] if isinstance(o, dict))
    return opts


def input_fields(view: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(block_id, action_id, element)`` of each input block; missing ids get stable
    fallbacks so the page and the submit handler agree on the form field names."""
    for i, block in enumerate(view.get("blocks") or []):
        if isinstance(block, dict) and block.get("type") == "input" and isinstance(block.get("element"), dict):
            element = block["element"]
            yield str(block.get("block_id") or f"input{i}"), str(element.get("action_id") or f"action{i}"), element


def field_name(block_id: str, action_id: str) -> str:
    return f"{block_id}::{action_id}"


def _hidden(fields: dict[str, Any]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">' for k, v in fields.items() if v is not None
    )


def _confirm_attr(element: dict[str, Any]) -> str:
    confirm = element.get("confirm")
    if not isinstance(confirm, dict):
        return ""
    words = [_text_of(confirm.get("title")), _text_of(confirm.get("text"))]
    question = "\n".join(w for w in words if w) or "Are you sure?"
    return f' onclick="return confirm({escape(json.dumps(question))})"'


class _Forms:
    """Where action buttons get their forms: inline (one small form per button) or, inside a
    modal's own form (forms cannot nest), as detached forms the buttons point at by ``form=``."""

    def __init__(self, detached: bool) -> None:
        self.detached = detached
        self.pending: list[str] = []
        self._seq = 0

    def button(self, fields: dict[str, Any], label: str, extra: str = "") -> str:
        if not self.detached:
            return (
                f'<form class="act" method="post" action="/sandbox/ui/action">{_hidden(fields)}'
                f'<button type="submit"{extra}>{escape(label)}</button></form>'
            )
        self._seq += 1
        form_id = f"act{self._seq}"
        self.pending.append(f'<form id="{form_id}" method="post" action="/sandbox/ui/action">{_hidden(fields)}</form>')
        return f'<button type="submit" form="{form_id}"{extra}>{escape(label)}</button>'


def _element_html(element: Any, block_id: str, ctx: dict[str, Any], forms: _Forms) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    base = {**ctx, "block_id": block_id, "action_id": element.get("action_id", ""), "action_type": kind}
    if kind == "button":
        label = _text_of(element.get("text")) or str(element.get("action_id", "button"))
        fields = {**base, "value": element.get("value", ""), "button_text": label}
        style = element.get("style")
        extra = _confirm_attr(element) + (f' class="{escape(str(style))}"' if style in ("primary", "danger") else "")
        return forms.button(fields, label, extra)
    if kind in ("static_select", "overflow", "radio_buttons"):
        head = _text_of(element.get("placeholder")) or ("…" if kind == "overflow" else kind)
        buttons = [
            forms.button(
                {**base, "value": opt.get("value", ""), "option_text": _text_of(opt.get("text"))},
                _text_of(opt.get("text")) or str(opt.get("value", "")),
                _confirm_attr(element),
            )
            for opt in options_of(element)
        ]
        return f'<span class="opts"><span class="meta">{escape(head)}:</span> {" ".join(buttons)}</span>'
    return f'<span class="meta">({escape(str(kind))} {escape(str(element.get("action_id", "")))})</span>'


def blocks_html(blocks: Any, ctx: dict[str, Any], forms: _Forms) -> str:
    """Blocks as text, with every button / select / overflow as a working control."""
    if not isinstance(blocks, list):
        return ""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        block_id = str(block.get("block_id") or f"block{i}")
        kind = block.get("type")
        if kind == "actions":
            controls = [_element_html(e, block_id, ctx, forms) for e in block.get("elements") or []]
            out.append(f'<div class="actions">{" ".join(controls)}</div>')
        elif kind == "section":
            plain = {k: v for k, v in block.items() if k != "accessory"}
            text = "\n".join(block_lines([plain]))
            accessory = block.get("accessory")
            acc = ""
            if isinstance(accessory, dict) and accessory.get("type") != "image":
                acc = " " + _element_html(accessory, block_id, ctx, forms)
            out.append(f'<div class="block"><span class="txt">{escape(text)}</span>{acc}</div>')
        else:
            text = "\n".join(block_lines([block]))
            if text:
                out.append(f'<div class="block"><span class="txt">{escape(text)}</span></div>')
    return "".join(out)


def _message_html(msg: dict[str, Any], label: str = "", ctx: dict[str, Any] | None = None, css: str = "msg") -> str:
    parts = [label] if label else []
    if msg.get("ts"):
        parts.append(f"ts {msg['ts']}")
    meta = " · ".join(parts)
    if msg.get("thread_ts"):
        meta += f" · in thread {msg['thread_ts']}"
    if msg.get("edits"):
        meta += f" · edited {msg['edits']}×"
    body = escape(str(msg.get("text", "")))
    out = f'<div class="{css}"><div class="meta">{escape(meta)}</div><div class="text">{body}</div>'
    if ctx is not None:
        out += blocks_html(msg.get("blocks"), ctx, _Forms(detached=False))
    else:
        blocks = "\n".join(block_lines(msg.get("blocks")))
        if blocks:
            out += f"<pre>{escape(blocks)}</pre>"
    # Slack renders the blocks of secondary attachments too (a coloured bar beside them).
    for attachment in msg.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        colour = str(attachment.get("color", "#ccc"))
        colour = colour if colour.startswith("#") and len(colour) <= 9 and colour[1:].isalnum() else "#ccc"
        inner = blocks_html(attachment.get("blocks"), ctx, _Forms(detached=False)) if ctx is not None else (
            f"<pre>{escape(chr(10).join(block_lines(attachment.get('blocks'))))}</pre>"
        )
        out += f'<div class="attachment" style="border-left: 4px solid {colour}; padding-left: 8px">{inner}</div>'
    return out + "</div>"


# ---- modals -----------------------------------------------------------------------------


def _options_html(pairs: list[tuple[str, str]], selected: set[str], empty: bool) -> str:
    out = ['<option value=""></option>'] if empty else []
    for value, label in pairs:
        sel = " selected" if value in selected else ""
        out.append(f'<option value="{escape(value)}"{sel}>{escape(label)}</option>')
    return "".join(out)


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


def _field_html(element: dict[str, Any], name: str, current: list[str], snapshot: dict[str, Any]) -> str:
    kind = element.get("type")
    nm = escape(name)
    if kind in TEXT_INPUTS or kind in ("datepicker", "timepicker"):
        value = escape(current[0]) if current else ""
        placeholder = escape(_text_of(element.get("placeholder")))
        if kind == "plain_text_input" and element.get("multiline"):
            return f'<textarea name="{nm}" rows="3" placeholder="{placeholder}">{value}</textarea>'
        html_type = {"datepicker": "date", "timepicker": "time"}.get(str(kind), "text")
        return f'<input type="{html_type}" name="{nm}" value="{value}" placeholder="{placeholder}">'
    if kind == "checkboxes":
        boxes = []
        for opt in options_of(element):
            v = str(opt.get("value", ""))
            checked = " checked" if v in current else ""
            boxes.append(
                f'<label><input type="checkbox" name="{nm}" value="{escape(v)}"{checked}> {escape(_text_of(opt.get("text")))}</label>'
            )
        return " ".join(boxes)
    if kind in SINGLE_SELECTS or kind in MULTI_SELECTS:
        if kind in ("users_select", "multi_users_select"):
            pairs = [(u["id"], f"{u['name']} ({u['id']})") for u in snapshot["ui"]["users"]]
        elif kind in ("conversations_select", "channels_select", "multi_conversations_select", "multi_channels_select"):
            pairs = [(c["id"], f"#{c['name']} ({c['id']})") for c in snapshot["ui"]["channels"]]
        else:
            pairs = [(str(o.get("value", "")), _text_of(o.get("text"))) for o in options_of(element)]
        known = {v for v, _ in pairs}
        pairs += [(v, v) for v in current if v and v not in known]
        multiple = " multiple" if kind in MULTI_SELECTS else ""
        return f'<select name="{nm}"{multiple}>{_options_html(pairs, set(current), not multiple)}</select>'
    return f'<span class="meta">({escape(str(kind))} is not supported by the sandbox page)</span>'


def modal_html(view: dict[str, Any], snapshot: dict[str, Any], depth: int) -> str:
    ui = snapshot["ui"]
    view_id = str(view.get("id", ""))
    errors: dict[str, str] = ui["view_errors"].get(view_id) or {}
    draft: dict[str, list[str]] = ui["view_drafts"].get(view_id) or {}
    forms = _Forms(detached=True)
    ctx = {"view_id": view_id, "user_id": ui["user"]}
    title = _text_of(view.get("title"))
    out = [
        f'<div class="modal"><h3>{escape(title)} <small>{escape(view_id)} · callback_id '
        f'{escape(str(view.get("callback_id", "")))}{" · stacked " + str(depth) + " deep" if depth > 1 else ""}</small></h3>',
        f'<form method="post" action="/sandbox/ui/submit">{_hidden({"view_id": view_id, "user_id": ui["user"]})}',
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
            label = _text_of(block.get("label"))
            optional = " <small>(optional)</small>" if block.get("optional") else ""
            hint = _text_of(block.get("hint"))
            err = errors.get(block_id)
            out.append(
                f'<div class="field"><label>{escape(label)}{optional}</label><br>'
                f"{_field_html(element, name, current, snapshot)}"
                + (f'<div class="meta">{escape(hint)}</div>' if hint else "")
                + (f'<div class="err">{escape(str(err))}</div>' if err else "")
                + "</div>"
            )
        else:
            out.append(blocks_html([block], ctx, forms))
    stray = {k: v for k, v in errors.items() if k not in input_ids}
    for block_id, err in stray.items():
        out.append(f'<div class="err">{escape(block_id)}: {escape(str(err))}</div>')
    submit = _text_of(view.get("submit")) or "Submit"
    close = _text_of(view.get("close")) or "Cancel"
    out.append(
        f'<p><button type="submit">{escape(submit)}</button> '
        f'<button type="submit" formaction="/sandbox/ui/close">{escape(close)}</button></p></form>'
    )
    out.extend(forms.pending)
    out.append("</div>")
    return "".join(out)


# ---- the page ---------------------------------------------------------------------------


def _command_form(snapshot: dict[str, Any]) -> str:
    ui = snapshot["ui"]
    users = [(u["id"], f"{u['name']} ({u['id']})") for u in ui["users"]]
    if ui["user"] not in {u for u, _ in users}:
        users.insert(0, (ui["user"], ui["user"]))
    channels = [(c["id"], f"#{c['name']} ({c['id']})") for c in ui["channels"]]
    if ui["channel"] not in {c for c, _ in channels}:
        channels.insert(0, (ui["channel"], ui["channel"]))
    return (
        '<form class="cmd" method="post" action="/sandbox/ui/command">'
        f'<label>as <select name="user_id">{_options_html(users, {ui["user"]}, False)}</select></label> '
        f'<label>in <select name="channel_id">{_options_html(channels, {ui["channel"]}, False)}</select></label> '
        f'<input name="command" value="{escape(ui["command"])}" size="8"> '
        '<input name="text" placeholder="help" size="40" autofocus> '
        '<button type="submit">Send</button></form>'
    )


def _rate_limits_html(limits: dict[str, Any]) -> str:
    """One line: are Slack's rate limits on, and which calls were refused with a 429."""
    if not limits["enabled"]:
        return '<p class="meta">Rate limits: <b>off</b> (every call is served)</p>'
    if not limits["refused_total"]:
        return "<p>Rate limits: on · refused (429): none</p>"
    by_channel = limits["refused_by_channel"]
    parts = []
    for method, count in limits["refused"].items():
        text = f"{method} {count}"
        if method == "chat.postMessage" and by_channel:
            text += " (" + ", ".join(f"{channel} {n}" for channel, n in by_channel.items()) + ")"
        parts.append(escape(text))
    return f'<p>Rate limits: on · refused (429): <b>{limits["refused_total"]}</b> — {" · ".join(parts)}</p>'


def render_page(snapshot: dict[str, Any]) -> str:
    """The whole page from the ``/sandbox/state`` snapshot."""
    conn = snapshot["connections"]
    ui = snapshot["ui"]
    user = ui["user"]
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        "<title>Slack sandbox</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:60em}"
        ".msg,.eph{border-left:3px solid #ccc;padding:.3em .6em;margin:.4em 0}"
        ".eph{border-color:#9bd;background:#f4f9fc}"
        ".meta{color:#777;font-size:.8em}pre{margin:.3em 0;white-space:pre-wrap}"
        ".block{white-space:pre-wrap;margin:.2em 0}form.act{display:inline;margin:0 .2em 0 0}"
        ".actions{margin:.3em 0}button.primary{background:#2a7}button.danger{background:#d44;color:#fff}"
        ".modal{border:2px solid #444;padding:.5em 1em;margin:.5em 0;background:#fafafa}"
        ".field{margin:.5em 0}.err{color:#c00}.notice{background:#ffd;padding:.3em .6em}"
        "code{background:#f3f3f3}</style></head><body>",
        f"<h1>Slack sandbox — {escape(snapshot['team']['domain'])} ({escape(snapshot['team']['id'])})</h1>",
        f"<p>Bot sockets open: <b>{conn['open']}</b> · handshakes: {conn['opened']} · "
        f"apps.connections.open calls: {conn['open_calls']} · Web API calls: {snapshot['call_count']} · "
        '<a href="/">refresh</a></p>',
        _rate_limits_html(snapshot["rate_limits"]),
        _command_form(snapshot),
    ]
    if ui["notice"]:
        parts.append(f'<p class="notice">{escape(ui["notice"])}</p>')

    stack = [snapshot["views"][v] for v in ui["modal_stack"] if v in snapshot["views"]]
    if stack:
        parts.append("<h2>Open modal</h2>")
        parts.append(modal_html(stack[-1], snapshot, len(stack)))

    parts.append("<h2>Ephemeral messages</h2>")
    if not snapshot["ephemerals"]:
        parts.append("<p><i>none</i></p>")
    for eph in snapshot["ephemerals"]:
        who = f"only visible to {eph.get('user', '?')} in {eph.get('channel', '?')}"
        if eph.get("origin"):
            who += f" · from {eph['origin']}"
        msg = {"ts": eph.get("message_ts", ""), "text": eph.get("text", ""), "blocks": eph.get("blocks"),
               "attachments": eph.get("attachments")}
        ctx = {"ephemeral_id": eph.get("id") or eph.get("message_ts", ""), "channel_id": eph.get("channel"), "user_id": user}
        parts.append(_message_html(msg, label=who, ctx=ctx, css="eph"))

    parts.append("<h2>Channels</h2>")
    channels = snapshot["channels"]
    if not channels:
        parts.append("<p><i>no messages yet</i></p>")
    for cid, info in channels.items():
        parts.append(f"<h3>#{escape(info['name'])} <small>{escape(cid)}</small></h3>")
        parts.extend(
            _message_html(m, ctx={"channel_id": cid, "message_ts": m.get("ts", ""), "user_id": user})
            for m in info["messages"]
        )

    parts.append("<h2>Home tabs</h2>")
    if not snapshot["home_views"]:
        parts.append("<p><i>none published</i></p>")
    for user_id, view in snapshot["home_views"].items():
        parts.append(f"<h3>{escape(user_id)} <small>{escape(str(view.get('id', '')))}</small></h3>")
        ctx = {"view_id": view.get("id", ""), "user_id": user_id}
        parts.append(f'<div class="msg">{blocks_html(view.get("blocks"), ctx, _Forms(detached=False))}</div>')

    parts.append("<h2>Response URL posts</h2>")
    if not snapshot["response_url_posts"]:
        parts.append("<p><i>none</i></p>")
    for post in snapshot["response_url_posts"]:
        body = post["body"]
        if isinstance(body, dict):
            msg = {"ts": "", "text": body.get("text", ""), "blocks": body.get("blocks"), "attachments": body.get("attachments")}
            flags = " ".join(
                f"{k}={body[k]}" for k in ("response_type", "replace_original", "delete_original") if k in body
            )
            parts.append(_message_html(msg, label=f"hook {post['hook_id']} {flags}".strip()))
        else:
            parts.append(f"<pre>{escape(str(body))}</pre>")

    parts.append("</body></html>")
    return "\n".join(parts)
