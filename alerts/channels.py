"""Channel names to channel IDs, once, when a channel is saved.

People type `#ops-alerts`; Slack's messages, links (`<#C…>`) and de-duplication work on IDs, and
a name breaks when the channel is renamed. So whatever is saved from Slack or the API (an app's,
a rule's, Heroku's, an event route's, a deploy service's channel) and SLACK_CHANNEL at start are
looked up in the workspace's channel list (`conversations.list`, paged, cached) and stored as the
ID. A name Slack does not know (yet), or any failure to ask, keeps the name as given: posting to
`#name` still works, only less well.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Callable, Mapping

import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
CHANNEL_NAME = re.compile(r"^#?([a-z0-9][a-z0-9_\-]{0,79})$")
PAGE_SIZE = 200  # what Slack recommends for conversations.list
MAX_PAGES = 200  # 40,000 channels; a cursor that never ends must not loop forever


class ChannelResolver:
    """Looks names up in a cached copy of the workspace's channel list.

    The list is fetched again when a name is asked for that it lacks (a new channel), at most every
    `recheck_seconds` (conversations.list is Tier 2: about 20 calls a minute), and when older than
    `ttl_seconds` (renamed channels). Without a client (a sidecar that has no Slack tokens) every
    channel is kept as given.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        ttl_seconds: float = 600.0,
        recheck_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = client  # slack_sdk AsyncWebClient
        self._ttl = ttl_seconds
        self._recheck = recheck_seconds
        self._clock = clock
        self._ids: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._loading: asyncio.Task | None = None

    async def resolve(self, channel: Any, *, timeout: float = 2.0) -> Any:
        """The channel's ID for `#name` or `name`; anything else (an ID, None, a value that is no
        channel name) comes back unchanged, so callers can resolve before validating. `timeout`
        keeps a slow Slack from holding up a modal that must be answered within 3 s; the list
        still loads in the background for the next save."""
        if self._client is None or not isinstance(channel, str):
            return channel
        match = CHANNEL_NAME.match(channel.strip())
        if match is None or CHANNEL_ID.match(channel.strip()):
            return channel
        name = match.group(1)
        now = self._clock()
        fresh = self._loaded_at is not None and now - self._loaded_at < self._ttl
        if name in self._ids and fresh:
            return self._ids[name]
        if self._tried_at is None or now - self._tried_at >= self._recheck:
            try:
                await asyncio.wait_for(asyncio.shield(self._load_once()), timeout)
            except asyncio.TimeoutError:
                log.info("slack.channel_list_slow", channel=channel, timeout_seconds=timeout)
        found = self._ids.get(name)
        if found is None:
            log.info("slack.channel_not_resolved", channel=channel)
        return found or channel

    async def resolve_field(self, data: Mapping[str, Any], key: str = "channel", *, timeout: float = 2.0) -> dict[str, Any]:
        """A copy of `data` whose `key` holds the channel's ID, where there is one to find."""
        out = dict(data)
        if key in out:
            out[key] = await self.resolve(out[key], timeout=timeout)
        return out

    def _load_once(self) -> asyncio.Task:
        """One load at a time: saves that arrive together share it."""
        if self._loading is None or self._loading.done():
            self._tried_at = self._clock()
            self._loading = asyncio.create_task(self._load(), name="slack-channel-list")
        return self._loading

    async def _load(self) -> None:
        ids: dict[str, str] = {}
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                page = await self._client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=PAGE_SIZE, cursor=cursor
                )
                for channel in page.get("channels") or []:
                    if isinstance(channel, dict) and channel.get("id") and channel.get("name"):
                        ids[str(channel["name"]).lower()] = str(channel["id"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    break
        except SlackApiError as exc:  # e.g. missing_scope: the app lacks channels:read / groups:read
            log.warning("slack.channel_list_failed", error=exc.response.get("error"), kept="channel names as given")
            return
        except Exception as exc:  # unreachable Slack, a timeout: names stay as typed, saves go on
            log.warning("slack.channel_list_failed", error=type(exc).__name__, kept="channel names as given")
            return
        self._ids = ids
        self._loaded_at = self._clock()
        log.info("slack.channel_list_loaded", channels=len(ids))
