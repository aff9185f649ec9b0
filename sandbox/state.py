"""What the fake workspace remembers, kept apart from the HTTP and WebSocket plumbing.

Tests assert on these recordings (``sb.calls``, ``sb.messages``, ...), the HTML page renders
them, and the Web API handlers mutate them. Holding them in one plain object means all three
see the same thing and ``reset()`` can clear them in one place without touching connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ApiCall:
    """One Web API request as the sandbox received it (token kept apart from params)."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.time)


class Notifier:
    """Wakes coroutines that wait for "something changed" (a call recorded, a socket opened).

    Waiters re-check their own predicate after each wake-up, so one notifier serves every
    kind of wait and a spurious wake-up is harmless.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()
        self.version = 0  # counts notifications: the page's live stream sends when it moves

    def notify(self) -> None:
        self.version += 1
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once ``predicate()`` is true; raise ``TimeoutError`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not predicate():
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.add(fut)
                try:
                    await fut
                finally:
                    self._waiters.discard(fut)


@dataclass
class FailureRule:
    """A pending ``fail_next`` injection: answer the next ``times`` calls with this error."""

    status: int
    error: str
    retry_after: int | None
    times: int


def _tz_offset(tz: str) -> tuple[int, str]:
    """Seconds east of UTC and a label for ``users.info``; unknown zones count as UTC."""
    try:
        from zoneinfo import ZoneInfo

        now = datetime.now(ZoneInfo(tz))
        offset = now.utcoffset()
        return (int(offset.total_seconds()) if offset else 0), (now.tzname() or tz)
    except Exception:
        return 0, tz


class WorkspaceState:
    """Recordings plus the small amount of directory data (users, channels) Slack would hold."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        app_id: str,
        bot_user_id: str,
        bot_id: str,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.changed = Notifier()

        # Recordings (cleared by reset()). Cleared in place so references stay valid.
        self.calls: list[ApiCall] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.response_url_posts: list[tuple[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, list[FailureRule]] = {}
        # What the HTML page shows as open: a stack of modal view ids (top = last), the
        # ``response_action: errors`` of the last submit per view, the values typed into it,
        # and one line of feedback about the last page action (e.g. "no bot connected").
        self.modal_stack: list[str] = []
        self.view_errors: dict[str, dict[str, str]] = {}
        self.view_drafts: dict[str, dict[str, Any]] = {}
        self.notice: str = ""
        # Slash commands people ran (from the page or POST /sandbox/command), shown to whoever
        # ran them in the channel they ran them in, and how far each person has read each channel.
        self.commands: list[dict[str, Any]] = []
        self.read_marks: dict[str, dict[str, float]] = {}
        # Whose modal is whose: the person a trigger_id was given to, and so each view opened with it.
        self.trigger_users: dict[str, str] = {}
        self.view_owners: dict[str, str] = {}

        # Directory data (survives reset()).
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.hooks: dict[str, dict[str, Any]] = {}

        self._last_ts_us = 0
        self._view_seq = 0
        self.set_user(bot_user_id, name="pulser", real_name="Pulser", is_bot=True)

    # ---- recordings -------------------------------------------------------------------

    def record_call(self, call: ApiCall) -> None:
        self.calls.append(call)
        self.changed.notify()

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def reset(self) -> None:
        self.calls.clear()
        self.messages.clear()
        self.ephemerals.clear()
        self.response_url_posts.clear()
        self.views.clear()
        self.home_views.clear()
        self.failures.clear()
        self.modal_stack.clear()
        self.view_errors.clear()
        self.view_drafts.clear()
        self.notice = ""
        self.commands.clear()
        self.read_marks.clear()
        self.view_owners.clear()
        self.changed.notify()

    # ---- fault injection --------------------------------------------------------------

    def add_failure(self, method: str, rule: FailureRule) -> None:
        self.failures.setdefault(method, []).append(rule)

    def take_failure(self, method: str) -> FailureRule | None:
        rules = self.failures.get(method)
        if not rules:
            return None
        rule = rules[0]
        rule.times -= 1
        if rule.times <= 0:
            rules.pop(0)
        return rule

    # ---- ids --------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A unique, strictly increasing Slack-style ``"1700000000.000100"`` timestamp."""
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(self._last_ts_us + 100, now_us)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def next_view_id(self) -> str:
        self._view_seq += 1
        return f"V0SB{self._view_seq:06d}"

    # ---- directory --------------------------------------------------------------------

    def set_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        tz: str = "UTC",
        is_bot: bool = False,
        email: str | None = None,
    ) -> dict[str, Any]:
        name = name or user_id.lower()
        real_name = real_name or name
        offset, label = _tz_offset(tz)
        profile: dict[str, Any] = {
            "display_name": name,
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        if email:
            profile["email"] = email
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": label,
            "tz_offset": offset,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": profile,
        }
        self.users[user_id] = user
        return user

    def user_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user["name"] if user else user_id.lower()

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False, is_archived: bool = False) -> None:
        self.channels[channel_id] = {"id": channel_id, "name": name, "is_private": is_private, "is_archived": is_archived}

    def resolve_channel(self, channel: str) -> str:
        """Map ``#name``/``name`` to a registered id, and a known user's ID to the app's DM with them
        (``D`` + the rest, as Slack answers a post to ``U…`` from its IM); anything else as given."""
        if channel[:1] in ("U", "W") and channel in self.users:
            return "D" + channel[1:]
        if channel.startswith("#"):
            channel = channel[1:]
        for cid, info in self.channels.items():
            if info["name"] == channel:
                return cid
        return channel

    def channel_name(self, channel_id: str) -> str:
        info = self.channels.get(channel_id)
        return info["name"] if info else channel_id.lower()

    def remember_trigger(self, trigger_id: str, user_id: str) -> None:
        self.trigger_users[trigger_id] = user_id
        while len(self.trigger_users) > 1000:  # a trigger_id is good for 3 s: the oldest can go
            del self.trigger_users[next(iter(self.trigger_users))]

    def claim_view(self, view_id: str, trigger_id: Any) -> None:
        """The modal opened with ``trigger_id`` shows to the person who was given that trigger."""
        owner = self.trigger_users.get(str(trigger_id or ""))
        if owner:
            self.view_owners[view_id] = owner

    def record_command(self, *, channel: str, user: str, command: str, text: str) -> dict[str, Any]:
        entry = {"ts": self.next_ts(), "channel": channel, "user": user, "command": command, "text": text}
        self.commands.append(entry)
        self.changed.notify()
        return entry

    def mark_read(self, user: str, channel_ids: list[str]) -> None:
        """``user`` has seen everything in these channels so far (no notification: reading
        changes nobody else's page)."""
        marks = self.read_marks.setdefault(user, {})
        for cid in channel_ids:
            newest = [float(m["ts"]) for m in self.messages.get(cid, [])]
            if newest:
                marks[cid] = max(newest)

    def unread_counts(self, user: str) -> dict[str, int]:
        """Top-level messages (not thread replies) newer than what ``user`` has read, per channel."""
        marks = self.read_marks.get(user, {})
        counts = {}
        for cid, msgs in self.messages.items():
            seen = marks.get(cid, 0.0)
            n = sum(
                1 for m in msgs
                if float(m["ts"]) > seen and (not m.get("thread_ts") or m.get("thread_ts") == m["ts"] or m.get("reply_broadcast"))
            )
            if n:
                counts[cid] = n
        return counts

    def find_ephemeral(self, ephemeral_id: str) -> dict[str, Any] | None:
        for eph in self.ephemerals:
            if eph.get("id") == ephemeral_id:
                return eph
        return None

    def add_ephemeral(self, *, channel: str, user: str, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """An ephemeral the page shows that did not come from chat.postEphemeral (an ack's
        payload, a response_url post); ``id`` is its ``message_ts``, as for the others."""
        ts = self.next_ts()
        entry = {
            "id": ts,
            "message_ts": ts,
            "channel": channel,
            "user": user,
            "text": body.get("text", ""),
            "blocks": body.get("blocks"),
            "origin": origin,
        }
        self.ephemerals.append(entry)
        self.changed.notify()
        return entry

    def close_modal(self, view_id: str) -> None:
        if view_id in self.modal_stack:
            del self.modal_stack[self.modal_stack.index(view_id):]
        self.view_errors.pop(view_id, None)
        self.view_drafts.pop(view_id, None)
        self.changed.notify()

    def find_message(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        for msg in self.messages.get(channel_id, []):
            if msg["ts"] == ts:
                return msg
        return None
