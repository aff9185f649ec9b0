"""Who may change monitoring from Slack: users in PULSER_ADMINS, and workspace admins and owners.

users.info answers are cached per user for five minutes: a click must be answered within Slack's
3 s, a burst of clicks must not become a burst of API calls, and a demoted admin losing rights a
few minutes late is acceptable. PULSER_ADMINS is read on every check and never cached.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)

CACHE_TTL = 300.0
CACHE_MAX = 1000
# users.info normally answers in well under a second; past this, a slash command's 3 s ack and
# trigger_id would be at risk, so the check gives up (and says no).
LOOKUP_TIMEOUT = 1.5
REFUSAL = "Only Pulser admins can {action}: workspace admins/owners or users listed in PULSER_ADMINS."

# (Slack API base URL, user ID) → (checked at, answer). The URL is part of the key so two
# emulators in one process never share answers; a process serves one workspace.
_cache: dict[tuple[str, str], tuple[float, bool]] = {}


async def is_admin(client, user_id: str, admins: tuple[str, ...] | list[str]) -> bool:
    """True for PULSER_ADMINS and for workspace admins/owners; False when Slack cannot tell us."""
    if not user_id:
        return False
    if user_id in admins:
        return True
    key = (str(getattr(client, "base_url", "")), user_id)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < CACHE_TTL:
        return cached[1]
    try:
        response = await asyncio.wait_for(client.users_info(user=user_id), LOOKUP_TIMEOUT)
    except Exception as exc:  # SlackApiError, timeout, network: refuse, and ask again next time
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("slack.admin_check_failed", user=user_id, error=str(error))
        return False
    user = response.get("user") or {}
    allowed = not user.get("deleted") and bool(
        user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
    )
    _remember(key, now, allowed)
    return allowed


def _remember(key: tuple[str, str], now: float, allowed: bool) -> None:
    """Bounded: expired answers go first, then the oldest (dicts keep insertion order)."""
    _cache.pop(key, None)
    if len(_cache) >= CACHE_MAX:
        for stale in [k for k, (at, _) in _cache.items() if now - at >= CACHE_TTL]:
            del _cache[stale]
        while len(_cache) >= CACHE_MAX:
            del _cache[next(iter(_cache))]
    _cache[key] = (now, allowed)


def forget_answers() -> None:
    """Drop every cached users.info answer (tests start each case with a fresh workspace)."""
    _cache.clear()


def refusal(action: str) -> str:
    return REFUSAL.format(action=action)
