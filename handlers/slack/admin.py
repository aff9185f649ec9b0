"""Who may change monitoring from Slack: users in PULSER_ADMINS, and workspace admins and owners.

users.info answers are cached for a few minutes: a burst of clicks must not become a burst of API
calls, and a demoted admin loses rights within the TTL.
"""

from __future__ import annotations

import time

import structlog
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)

CACHE_TTL = 300.0
CACHE_MAX = 1000
REFUSAL = "Only Pulser admins can {action}: workspace admins/owners or users listed in PULSER_ADMINS."

_cache: dict[str, tuple[float, bool]] = {}


async def is_admin(client, user_id: str, admins: tuple[str, ...] | list[str]) -> bool:
    if user_id in admins:
        return True
    cached = _cache.get(user_id)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CACHE_TTL:
        return cached[1]
    try:
        response = await client.users_info(user=user_id)
    except SlackApiError as exc:
        log.warning("slack.admin_check_failed", user=user_id, error=str(exc.response.get("error")))
        return False
    user = response.get("user") or {}
    allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
    if len(_cache) >= CACHE_MAX:
        _cache.clear()
    _cache[user_id] = (now, allowed)
    return allowed


def refusal(action: str) -> str:
    return REFUSAL.format(action=action)
