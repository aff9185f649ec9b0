"""A plain HTML view of the sandbox, for a person poking the bot from curl.

No JavaScript: the page reloads itself every 2 s. Everything shown comes from the bot or from
whoever injected commands, so every string goes through ``html.escape`` — the page must show
``<script>`` as text, not run it.
"""

from __future__ import annotations

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


def _message_html(msg: dict[str, Any], label: str = "") -> str:
    parts = [label] if label else []
    if msg.get("ts"):
        parts.append(f"ts {msg['ts']}")
    meta = " · ".join(parts)
    if msg.get("thread_ts"):
        meta += f" · in thread {msg['thread_ts']}"
    if msg.get("edits"):
        meta += f" · edited {msg['edits']}×"
    body = escape(str(msg.get("text", "")))
    blocks = "\n".join(block_lines(msg.get("blocks")))
    out = f'<div class="msg"><div class="meta">{escape(meta)}</div><div class="text">{body}</div>'
    if blocks:
        out += f"<pre>{escape(blocks)}</pre>"
    return out + "</div>"


def render_page(snapshot: dict[str, Any]) -> str:
    """The whole page from the ``/sandbox/state`` snapshot."""
    conn = snapshot["connections"]
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        '<meta http-equiv="refresh" content="2">',
        "<title>Slack sandbox</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:60em}"
        ".msg{border-left:3px solid #ccc;padding:.3em .6em;margin:.4em 0}"
        ".meta{color:#777;font-size:.8em}pre{margin:.3em 0;white-space:pre-wrap}"
        "code{background:#f3f3f3}</style></head><body>",
        f"<h1>Slack sandbox — {escape(snapshot['team']['domain'])} ({escape(snapshot['team']['id'])})</h1>",
        f"<p>Bot sockets open: <b>{conn['open']}</b> · handshakes: {conn['opened']} · "
        f"apps.connections.open calls: {conn['open_calls']} · Web API calls: {snapshot['call_count']}</p>",
        "<p>Try the bot: <code>curl -s -X POST "
        f"{escape(snapshot['base_url'])}/sandbox/command -H 'content-type: application/json' "
        "-d '{\"command\":\"/pulser\",\"text\":\"help\",\"user_id\":\"U0ALICE\"}'</code></p>",
        "<h2>Channels</h2>",
    ]
    channels = snapshot["channels"]
    if not channels:
        parts.append("<p><i>no messages yet</i></p>")
    for cid, info in channels.items():
        parts.append(f"<h3>#{escape(info['name'])} <small>{escape(cid)}</small></h3>")
        parts.extend(_message_html(m) for m in info["messages"])

    parts.append("<h2>Ephemeral messages</h2>")
    if not snapshot["ephemerals"]:
        parts.append("<p><i>none</i></p>")
    for eph in snapshot["ephemerals"]:
        who = f"to {eph.get('user', '?')} in {eph.get('channel', '?')}"
        msg = {"ts": eph.get("message_ts", ""), "text": eph.get("text", ""), "blocks": eph.get("blocks")}
        parts.append(_message_html(msg, label=who))

    parts.append("<h2>Response URL posts</h2>")
    if not snapshot["response_url_posts"]:
        parts.append("<p><i>none</i></p>")
    for post in snapshot["response_url_posts"]:
        body = post["body"]
        if isinstance(body, dict):
            msg = {"ts": "", "text": body.get("text", ""), "blocks": body.get("blocks")}
            flags = " ".join(
                f"{k}={body[k]}" for k in ("response_type", "replace_original", "delete_original") if k in body
            )
            parts.append(_message_html(msg, label=f"hook {post['hook_id']} {flags}".strip()))
        else:
            parts.append(f"<pre>{escape(str(body))}</pre>")

    parts.append("<h2>Home tabs</h2>")
    if not snapshot["home_views"]:
        parts.append("<p><i>none published</i></p>")
    for user_id, view in snapshot["home_views"].items():
        parts.append(f"<h3>{escape(user_id)} <small>{escape(str(view.get('id', '')))}</small></h3>")
        parts.append(f"<pre>{escape(chr(10).join(block_lines(view.get('blocks'))))}</pre>")

    parts.append("<h2>Open modals</h2>")
    modals = [v for v in snapshot["views"].values() if v.get("type") == "modal"]
    if not modals:
        parts.append("<p><i>none</i></p>")
    for view in modals:
        title = _text_of(view.get("title"))
        parts.append(f"<h3>{escape(title)} <small>{escape(str(view.get('id', '')))} · {escape(str(view.get('callback_id', '')))}</small></h3>")
        parts.append(f"<pre>{escape(chr(10).join(block_lines(view.get('blocks'))))}</pre>")

    parts.append("</body></html>")
    return "\n".join(parts)
