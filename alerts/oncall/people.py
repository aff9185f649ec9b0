"""Slack users behind a schedule: is this ID a person of the workspace, what is their name, and
which user has this e-mail address (an imported calendar's attendee).

Answers are kept in `oncall_people`: names for a week (the iCal feed shows them, and a sidecar
without Slack tokens still knows them), e-mail matches for a day (a calendar refreshed every 15
minutes must not ask Slack about the same addresses each time; a "no such user" answer is kept
too). Slack's slowness or failure never refuses input: an ID that cannot be checked now is taken
on its format.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import structlog

from storage import schedules as store

log = structlog.get_logger(__name__)

LOOKUP_TIMEOUT = 1.5  # a slash command is answered within 3 s
NAME_TTL = timedelta(days=7)
EMAIL_TTL = timedelta(days=1)


async def unknown_users(pool, client: Any, user_ids: Iterable[str]) -> dict[str, str]:
    """user ID → why it cannot be on call (not in the workspace, deactivated, a bot). Users
    Slack cannot be asked about now are not listed: their format was checked already."""
    ids = list(dict.fromkeys(user_ids))
    if client is None or not ids:
        return {}
    fresh = await store.remembered_people(
        pool, [f"user:{u}" for u in ids], fresher_than=datetime.now(timezone.utc) - NAME_TTL
    )
    problems: dict[str, str] = {}

    async def check(user_id: str) -> None:
        if f"user:{user_id}" in fresh:
            return
        try:
            response = await asyncio.wait_for(client.users_info(user=user_id), LOOKUP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 — Slack's answer or a timeout, told apart below
            error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
            if error in ("user_not_found", "users_not_found"):
                problems[user_id] = f"{user_id} is not a user of this Slack workspace"
            else:
                log.info("oncall.user_check_skipped", user=user_id, error=str(error or type(exc).__name__))
            return
        user = response.get("user") or {}
        if user.get("deleted"):
            problems[user_id] = f"{user_id} has been deactivated in Slack"
        elif user.get("is_bot"):
            problems[user_id] = f"{user_id} is a bot, not a person"
        else:
            await store.remember_person(pool, f"user:{user_id}", user_id, display_name(user))

    await asyncio.gather(*(check(u) for u in ids))
    return problems


async def user_for_email(pool, client: Any, email: str, *, now: datetime) -> str | None:
    key = f"email:{email.lower()}"
    known = await store.remembered_people(pool, [key], fresher_than=now - EMAIL_TTL)
    if key in known:
        return known[key]["user_id"]
    if client is None:
        return None
    try:
        response = await asyncio.wait_for(client.users_lookupByEmail(email=email), LOOKUP_TIMEOUT * 2)
    except Exception as exc:  # noqa: BLE001
        error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
        if error == "users_not_found":
            await store.remember_person(pool, key, None, None)
        else:
            log.info("oncall.email_lookup_failed", error=str(error or type(exc).__name__))
        return None
    user = response.get("user") or {}
    user_id = user.get("id")
    await store.remember_person(pool, key, user_id, None)
    if user_id:
        await store.remember_person(pool, f"user:{user_id}", user_id, display_name(user))
    return user_id


def display_name(user: dict) -> str | None:
    profile = user.get("profile") or {}
    return profile.get("real_name") or user.get("real_name") or profile.get("display_name") or user.get("name")
