"""Block Kit as HTML: blocks, their interactive elements and legacy attachments, laid out like
Slack's client (two-column section fields, accessories on the right, coloured attachment bars).

Every button, menu option and overflow item is a real ``<form method=post>`` to
``/sandbox/ui/action`` whose hidden fields say what was clicked, so a click sends a
``block_actions`` envelope shaped like Slack's. A ``confirm`` object travels as ``data-confirm``
and the page's script asks before submitting, as Slack's confirmation dialog does. Text goes
through ``mrkdwn``, which escapes it: nothing the bot sends can inject markup into the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

from .mrkdwn import Viewer, control_html, emojize, mrkdwn_html, plain_html, text_object_html, text_of

TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input")
SINGLE_SELECTS = {
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
}
MULTI_SELECTS = {
    "checkboxes": "selected_options",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}
# Slack's named attachment colours.
ATTACHMENT_COLOURS = {"good": "#2eb67d", "warning": "#ecb22e", "danger": "#e01e5a"}
DEFAULT_BAR = "#dddddd"


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


def hidden_inputs(fields: dict[str, Any]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">' for k, v in fields.items() if v is not None
    )


def confirm_attr(element: dict[str, Any], viewer: Viewer) -> str:
    """``data-confirm`` for the page's dialog: title, text (rendered), and the two buttons."""
    confirm = element.get("confirm")
    if not isinstance(confirm, dict):
        return ""
    data = {
        "title": text_of(confirm.get("title")) or "Are you sure?",
        "text": text_object_html(confirm.get("text"), viewer),
        "confirm": text_of(confirm.get("confirm")) or "Yes",
        "deny": text_of(confirm.get("deny")) or "Cancel",
        "style": confirm.get("style") if confirm.get("style") in ("primary", "danger") else "",
    }
    return f' data-confirm="{escape(json.dumps(data))}"'


@dataclass
class Controls:
    """What the interactive elements of one container need: the hidden fields naming the
    container (``ctx``), who is looking, the directory for user/channel menus, and where the
    forms go — inline, or (inside a modal's own form, as forms cannot nest) detached and
    pointed at with ``form=``."""

    ctx: dict[str, Any]
    viewer: Viewer
    people: list[tuple[str, str]] = field(default_factory=list)
    rooms: list[tuple[str, str]] = field(default_factory=list)
    detached: bool = False
    pending: list[str] = field(default_factory=list)
    _seq: int = 0

    def form_button(self, fields: dict[str, Any], label_html: str, attrs: str = "", css: str = "btn") -> str:
        fields = {**self.ctx, **fields}
        if not self.detached:
            return (
                f'<form class="act" method="post" action="/sandbox/ui/action">{hidden_inputs(fields)}'
                f'<button type="submit" class="{css}"{attrs}>{label_html}</button></form>'
            )
        self._seq += 1
        form_id = f"act{self._seq}"
        self.pending.append(f'<form id="{form_id}" method="post" action="/sandbox/ui/action">{hidden_inputs(fields)}</form>')
        return f'<button type="submit" form="{form_id}" class="{css}"{attrs}>{label_html}</button>'


# ---- elements ---------------------------------------------------------------------------------


def element_html(element: Any, controls: Controls, block_id: str) -> str:
    """One interactive (or image) element of an actions block, a section accessory or context."""
    if not isinstance(element, dict):
        return ""
    kind = str(element.get("type"))
    viewer = controls.viewer
    base = {"block_id": block_id, "action_id": element.get("action_id", ""), "action_type": kind}
    if kind == "image":
        return _image_html(element, "img-el")
    if kind == "button":
        label = text_of(element.get("text")) or str(element.get("action_id", "button"))
        style = element.get("style") if element.get("style") in ("primary", "danger") else ""
        fields = {**base, "value": element.get("value", ""), "button_text": label}
        label_html = text_object_html(element.get("text"), viewer) or escape(label)
        url = element.get("url")
        if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
            return f'<a class="{("btn " + style).strip()}" href="{escape(url)}" target="_blank" rel="noopener">{label_html}</a>'
        return controls.form_button(fields, label_html, confirm_attr(element, viewer), f"btn {style}".strip())
    if kind in ("static_select", "external_select", "overflow", "radio_buttons", "users_select",
                "conversations_select", "channels_select"):
        return _menu_html(element, kind, base, controls)
    if kind in ("datepicker", "timepicker", "datetimepicker"):
        return _picker_html(element, kind, base, controls)
    if kind == "checkboxes":
        return " ".join(
            f'<label class="check"><input type="checkbox" disabled> {text_object_html(o.get("text"), viewer)}</label>'
            for o in options_of(element)
        )
    return f'<span class="muted">[{escape(kind)}]</span>'


def _menu_choices(element: dict[str, Any], kind: str, controls: Controls) -> list[tuple[str, str, str]]:
    """``(value, label html, label text)`` of a menu's choices."""
    if kind == "users_select":
        return [(uid, escape(name), name) for uid, name in controls.people]
    if kind in ("conversations_select", "channels_select"):
        return [(cid, "#" + escape(name), "#" + name) for cid, name in controls.rooms]
    return [
        (str(o.get("value", "")), text_object_html(o.get("text"), controls.viewer), text_of(o.get("text")))
        for o in options_of(element)
    ]


def _menu_html(element: dict[str, Any], kind: str, base: dict[str, Any], controls: Controls) -> str:
    """A select or overflow menu: a ``<details>`` drop-down whose items are forms, so choosing
    one sends the action at once, as in Slack (no script needed)."""
    initial = element.get("initial_option")
    if kind == "overflow":
        summary, css = "⋮", "menu overflow"
    else:
        chosen = text_of(initial.get("text")) if isinstance(initial, dict) else ""
        summary = escape(chosen) if chosen else (text_object_html(element.get("placeholder"), controls.viewer) or "Select an item")
        summary = f"{summary} <span class=\"caret\">▾</span>"
        css = "menu select"
    items = []
    for value, label_html, label in _menu_choices(element, kind, controls):
        fields = {**base, "value": value, "option_text": label}
        items.append(controls.form_button(fields, label_html, confirm_attr(element, controls.viewer), "menu-item"))
    return f'<details class="{css}"><summary class="btn">{summary}</summary><div class="menu-list">{"".join(items)}</div></details>'


def _picker_html(element: dict[str, Any], kind: str, base: dict[str, Any], controls: Controls) -> str:
    """A date/time picker outside a modal: pick, then it is sent (Slack sends on change)."""
    html_type = {"datepicker": "date", "timepicker": "time", "datetimepicker": "datetime-local"}[kind]
    initial = element.get("initial_date") or element.get("initial_time") or ""
    if controls.detached:
        return f'<input type="{html_type}" value="{escape(str(initial))}" disabled>'
    fields = {**controls.ctx, **base}
    return (
        f'<form class="act" method="post" action="/sandbox/ui/action">{hidden_inputs(fields)}'
        f'<input type="{html_type}" name="value" value="{escape(str(initial))}" data-autosubmit></form>'
    )


def _image_html(element: dict[str, Any], css: str) -> str:
    url = str(element.get("image_url") or "")
    alt = escape(str(element.get("alt_text", "")))
    if not url.lower().startswith(("http://", "https://", "data:image/")):
        return f'<span class="{css} missing" title="{alt}">🖼</span>'
    return f'<img class="{css}" src="{escape(url)}" alt="{alt}" loading="lazy">'


# ---- blocks -----------------------------------------------------------------------------------


def blocks_html(blocks: Any, controls: Controls) -> str:
    """A list of layout blocks as HTML; unknown kinds show their type rather than vanish."""
    if not isinstance(blocks, list):
        return ""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if isinstance(block, dict):
            out.append(block_html(block, controls, str(block.get("block_id") or f"block{i}")))
    return "".join(out)


def block_html(block: dict[str, Any], controls: Controls, block_id: str = "b") -> str:
    kind = block.get("type")
    viewer = controls.viewer
    if kind == "section":
        main = ""
        if block.get("text"):
            main += f'<div class="text">{text_object_html(block.get("text"), viewer)}</div>'
        fields = [f'<div class="field">{text_object_html(f, viewer)}</div>' for f in block.get("fields") or []]
        if fields:
            main += f'<div class="fields">{"".join(fields)}</div>'
        accessory = block.get("accessory")
        acc = f'<div class="accessory">{element_html(accessory, controls, block_id)}</div>' if isinstance(accessory, dict) else ""
        return f'<div class="blk section"><div class="section-main">{main}</div>{acc}</div>'
    if kind == "header":
        return f'<div class="blk header">{text_object_html(block.get("text"), viewer)}</div>'
    if kind == "divider":
        return '<hr class="blk divider">'
    if kind == "context":
        parts = []
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("type") == "image":
                parts.append(_image_html(element, "ctx-img"))
            elif isinstance(element, dict):
                parts.append(f"<span>{text_object_html(element, viewer)}</span>")
        return f'<div class="blk context">{"".join(parts)}</div>'
    if kind == "actions":
        return f'<div class="blk actions">{"".join(element_html(e, controls, block_id) for e in block.get("elements") or [])}</div>'
    if kind == "image":
        title = block.get("title")
        head = f'<div class="img-title">{text_object_html(title, viewer)}</div>' if title else ""
        return f'<div class="blk image">{head}{_image_html(block, "img-block")}</div>'
    if kind == "input":
        label = text_object_html(block.get("label"), viewer)
        element = block.get("element") if isinstance(block.get("element"), dict) else {}
        return (
            f'<div class="blk input"><div class="label">{label}</div>'
            f'<input type="text" disabled placeholder="{escape(text_of(element.get("placeholder")))}"></div>'
        )
    if kind == "rich_text":
        return f'<div class="blk rich">{rich_text_html(block.get("elements"), viewer)}</div>'
    if kind == "file":
        return f'<div class="blk file muted">📄 file {escape(str(block.get("external_id", "")))}</div>'
    return f'<div class="blk muted">[{escape(str(kind))} block]</div>'


# ---- rich text --------------------------------------------------------------------------------


def rich_text_html(elements: Any, viewer: Viewer) -> str:
    """``rich_text`` sub-blocks: sections, bullet/ordered lists, code blocks and quotes."""
    out = []
    for element in elements or []:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        inner = _rich_inline(element.get("elements"), viewer)
        if kind == "rich_text_section":
            out.append(f"<div>{inner}</div>")
        elif kind == "rich_text_preformatted":
            out.append(f'<pre class="code">{inner}</pre>')
        elif kind == "rich_text_quote":
            out.append(f"<blockquote>{inner}</blockquote>")
        elif kind == "rich_text_list":
            tag = "ol" if element.get("style") == "ordered" else "ul"
            items = "".join(
                f"<li>{_rich_inline(item.get('elements'), viewer)}</li>"
                for item in element.get("elements") or []
                if isinstance(item, dict)
            )
            indent = int(element.get("indent") or 0)
            out.append(f'<{tag} style="margin-left:{indent * 1.5}em">{items}</{tag}>')
    return "".join(out)


def _rich_inline(elements: Any, viewer: Viewer) -> str:
    parts = []
    for el in elements or []:
        if not isinstance(el, dict):
            continue
        kind = el.get("type")
        if kind == "text":
            html = escape(emojize(str(el.get("text", "")))).replace("\n", "<br>")
        elif kind == "link":
            html = control_html(f"{el.get('url', '')}|{el.get('text') or el.get('url', '')}", viewer)
        elif kind == "emoji":
            html = emojize(f":{el.get('name', '')}:")
        elif kind == "user":
            html = control_html(f"@{el.get('user_id', '')}", viewer)
        elif kind == "channel":
            html = control_html(f"#{el.get('channel_id', '')}", viewer)
        elif kind == "usergroup":
            html = control_html(f"!subteam^{el.get('usergroup_id', '')}", viewer)
        elif kind == "broadcast":
            html = control_html(f"!{el.get('range', 'here')}", viewer)
        elif kind == "date":
            html = control_html(f"!date^{el.get('timestamp', '')}^{el.get('format', '')}|{el.get('fallback', '')}", viewer)
        else:
            continue
        style = el.get("style") or {}
        for flag, tag in (("code", "code"), ("bold", "b"), ("italic", "i"), ("strike", "s")):
            if style.get(flag):
                html = f"<{tag}>{html}</{tag}>"
        parts.append(html)
    return "".join(parts)


# ---- messages ---------------------------------------------------------------------------------


def colour_of(value: Any) -> str:
    """An attachment's bar colour: Slack's names, or a ``#rgb``/``#rrggbb`` hex; else grey."""
    colour = str(value or "")
    if colour in ATTACHMENT_COLOURS:
        return ATTACHMENT_COLOURS[colour]
    if not colour.startswith("#"):
        colour = "#" + colour
    hex_part = colour[1:]
    if len(hex_part) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in hex_part):
        return colour
    return DEFAULT_BAR


def attachment_html(attachment: dict[str, Any], controls: Controls) -> str:
    """A legacy secondary attachment: a coloured bar beside its text, fields and blocks."""
    viewer = controls.viewer
    parts = []
    if attachment.get("author_name"):
        parts.append(f'<div class="att-author">{plain_html(attachment["author_name"])}</div>')
    if attachment.get("title"):
        title = plain_html(attachment["title"])
        link = str(attachment.get("title_link") or "")
        if link.lower().startswith(("http://", "https://")):
            title = f'<a href="{escape(link)}" target="_blank" rel="noopener">{title}</a>'
        parts.append(f'<div class="att-title">{title}</div>')
    if attachment.get("text"):
        parts.append(f'<div class="text">{mrkdwn_html(attachment["text"], viewer)}</div>')
    fields = []
    for f in attachment.get("fields") or []:
        if isinstance(f, dict):
            css = "field" if f.get("short") else "field wide"
            fields.append(
                f'<div class="{css}"><b>{plain_html(f.get("title", ""))}</b><br>{mrkdwn_html(f.get("value", ""), viewer)}</div>'
            )
    if fields:
        parts.append(f'<div class="fields">{"".join(fields)}</div>')
    if attachment.get("blocks"):
        parts.append(blocks_html(attachment.get("blocks"), controls))
    if attachment.get("image_url"):
        parts.append(_image_html({"image_url": attachment["image_url"], "alt_text": ""}, "img-block"))
    if attachment.get("footer"):
        parts.append(f'<div class="blk context"><span>{mrkdwn_html(attachment["footer"], viewer)}</span></div>')
    pretext = attachment.get("pretext")
    pre = f'<div class="text">{mrkdwn_html(pretext, viewer)}</div>' if pretext else ""
    colour = colour_of(attachment.get("color"))
    return f'{pre}<div class="attachment" style="border-left-color: {colour}">{"".join(parts)}</div>'


def message_body_html(message: dict[str, Any], controls: Controls) -> str:
    """What Slack shows of a message: its blocks when it has any (``text`` is then only the
    notification fallback), else its text; then its attachments, each with its colour bar."""
    parts = []
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        parts.append(blocks_html(blocks, controls))
    elif message.get("text"):
        parts.append(f'<div class="text">{mrkdwn_html(message.get("text"), controls.viewer)}</div>')
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict):
            parts.append(attachment_html(attachment, controls))
    return "".join(parts)
