"""How each person wants to be reached when they are paged, and the test page that proves it.

A person's notification rules are an ordered list — Slack DM at once, SMS after 5 minutes, e-mail
after 10 — walked by the escalation engine from the moment they are paged until somebody
acknowledges. Their contacts (an e-mail address, a phone number in E.164) are where SMS and e-mail
go. A person without rules gets a Slack DM: nobody is unreachable because they never set this up.

The API (`PUT /api/users/{id}/notification-rules`) and Slack's `/pulser me` form both save through
`save_rules`, so both refuse the same input with the same words and audit the same way. Errors are
keyed by field path (`contacts.phone`, `rules[1].delay_minutes`); the Slack form maps them onto
its rows.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, Sequence

import asyncpg

from alerts.escalation.engine import DEFAULT_RULES
from storage import audit, escalation, notifications, outbound

METHODS = ("slack_dm", "sms", "email")
METHOD_LABELS = {"slack_dm": "Slack DM", "sms": "SMS", "email": "E-mail"}
MAX_RULES = 10
DELAY_RANGE = (0, 1440)

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# One plain address (no display name): it is where a page is sent, and what the person reads back.
EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[A-Za-z0-9-]{2,}$")
EMAIL_MAX = 254

PHONE_HINT = "a phone number in E.164 form: + and the country code, like +14155550123"
EMAIL_HINT = "an e-mail address, like ada@example.com"


class RulesValidationError(ValueError):
    """Field path → what is allowed, e.g. {"contacts.phone": "a phone number in E.164 form …"}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class PersonalRules:
    email: str | None
    phone: str | None
    rules: list[dict[str, Any]]  # {"method", "delay_minutes"}, in order


# --- checking --------------------------------------------------------------------------------------


def clean_phone(value: Any) -> str | None:
    """The number as stored (spaces, dashes, dots and brackets people type are dropped); None for
    empty; ValueError when it is not E.164."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(PHONE_HINT)
    number = re.sub(r"[\s\-.()]", "", value)
    if not number:
        return None
    if not E164.match(number):
        raise ValueError(PHONE_HINT)
    return number


def clean_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(EMAIL_HINT)
    address = value.strip()
    if not address:
        return None
    if len(address) > EMAIL_MAX or not EMAIL.match(address):
        raise ValueError(EMAIL_HINT)
    return address


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_rules(data: Mapping[str, Any]) -> PersonalRules:
    """Check `{"contacts": {"email", "phone"}, "rules": [{"method", "delay_minutes"}]}` as a whole
    (a rule by SMS needs the phone given beside it); every problem at once, by field path."""
    errors: dict[str, str] = {}
    for extra in sorted(set(data) - {"contacts", "rules"}):
        errors[extra] = "unknown field; the fields are contacts and rules"
    contacts = data.get("contacts") or {}
    email = phone = None
    if not isinstance(contacts, Mapping):
        errors["contacts"] = 'an object: {"email": …, "phone": …}'
    else:
        for extra in sorted(set(contacts) - {"email", "phone"}):
            errors[f"contacts.{extra}"] = "unknown field; contacts are email and phone"
        try:
            email = clean_email(contacts.get("email"))
        except ValueError as exc:
            errors["contacts.email"] = str(exc)
        try:
            phone = clean_phone(contacts.get("phone"))
        except ValueError as exc:
            errors["contacts.phone"] = str(exc)

    raw_rules = data.get("rules") or []
    rules: list[dict[str, Any]] = []
    if not isinstance(raw_rules, list):
        errors["rules"] = 'a list of {"method", "delay_minutes"}; empty for the default (a Slack DM at once)'
        raw_rules = []
    elif len(raw_rules) > MAX_RULES:
        errors["rules"] = f"at most {MAX_RULES} rules"
        raw_rules = []
    previous_delay = DELAY_RANGE[0]
    for index, raw in enumerate(raw_rules):
        path = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            errors[path] = 'an object: {"method": "slack_dm", "delay_minutes": 0}'
            continue
        for extra in sorted(set(raw) - {"method", "delay_minutes", "position"}):
            errors[f"{path}.{extra}"] = "unknown field; a rule has method and delay_minutes"
        method = raw.get("method")
        if method not in METHODS:
            errors[f"{path}.method"] = f"one of {', '.join(METHODS)}"
        delay = raw.get("delay_minutes", 0)
        if not _whole(delay) or not DELAY_RANGE[0] <= delay <= DELAY_RANGE[1]:
            errors[f"{path}.delay_minutes"] = f"whole minutes from {DELAY_RANGE[0]} to {DELAY_RANGE[1]} after the page"
        elif delay < previous_delay:
            errors[f"{path}.delay_minutes"] = (
                f"at least {previous_delay}: rules are in order, each no sooner than the one before it"
            )
        else:
            previous_delay = delay
        rules.append({"method": method, "delay_minutes": delay})

    texted = [i for i, r in enumerate(rules) if r["method"] == "sms"]
    mailed = [i for i, r in enumerate(rules) if r["method"] == "email"]
    if texted and phone is None and "contacts.phone" not in errors:
        errors["contacts.phone"] = f"required: rule {texted[0] + 1} sends an SMS; {PHONE_HINT}"
    if mailed and email is None and "contacts.email" not in errors:
        errors["contacts.email"] = f"required: rule {mailed[0] + 1} sends an e-mail; {EMAIL_HINT}"
    if errors:
        raise RulesValidationError(errors)
    return PersonalRules(email=email, phone=phone, rules=rules)


def check_user_id(user_id: str) -> None:
    if not USER_ID.match(user_id or ""):
        raise RulesValidationError({"user_id": "a Slack user ID like U012ABCDEF"})


# --- reading and saving ----------------------------------------------------------------------------


async def load(conn: asyncpg.Pool | asyncpg.Connection, user_id: str) -> dict[str, Any]:
    """A person's contacts and rules as the API shows them; `rules` is empty and `uses_default`
    true for a person who never set any."""
    contact = await escalation.contacts(conn, user_id)
    rules = [{"method": r["method"], "delay_minutes": r["delay_minutes"]} for r in await escalation.notification_rules(conn, user_id)]
    return {
        "user_id": user_id,
        "contacts": {"email": contact["email"], "phone": contact["phone"]},
        "rules": rules,
        "uses_default": not rules,
        "updated_at": contact["updated_at"].isoformat() if contact["updated_at"] else None,
    }


async def save_rules(pool: asyncpg.Pool, user_id: str, data: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """Replace a person's rules and contacts; RulesValidationError changes nothing. A body that
    leaves out `contacts` (or `rules`) keeps what is stored for it."""
    check_user_id(user_id)
    async with pool.acquire() as conn, conn.transaction():
        current = await load(conn, user_id)
        merged = {"contacts": current["contacts"], "rules": current["rules"], **data}
        spec = parse_rules(merged)
        await escalation.set_contacts(conn, user_id, email=spec.email, phone=spec.phone)
        await escalation.set_notification_rules(conn, user_id, spec.rules)
        await audit.record_action(
            conn, actor=actor, action="notification_rules.update", target_type="user", target_id=user_id,
            # Whether a contact is set, not the contact itself: the audit is shown in the event timeline.
            details={"rules": describe_rules(spec.rules), "email_set": spec.email is not None,
                     "phone_set": spec.phone is not None},
        )
        return await load(conn, user_id)


def describe_rule(rule: Mapping[str, Any]) -> str:
    when = "at once" if not rule["delay_minutes"] else f"after {rule['delay_minutes']} min"
    return f"{METHOD_LABELS.get(rule['method'], rule['method'])} {when}"


def describe_rules(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    return [describe_rule(r) for r in (rules or DEFAULT_RULES)]


# --- test pages ------------------------------------------------------------------------------------

Reach = Callable[..., Awaitable[int | None]]


def _reach_of(engine_or_reach: Any) -> Reach:
    return engine_or_reach.reach if hasattr(engine_or_reach, "reach") else engine_or_reach


async def send_test_pages(pool: asyncpg.Pool, engine_or_reach: Any, user_id: str, actor: str, *,
                          now: datetime | None = None) -> list[dict[str, Any]]:
    """One test delivery per distinct method of the person's rules (a Slack DM when they have
    none), through `EscalationEngine.reach`, so a test takes the very path a page takes. Returns,
    per method, the delivery id, where it goes, and the problem when it cannot even be tried (no
    phone number, no SMS channel set up)."""
    check_user_id(user_id)
    now = now or datetime.now(timezone.utc)
    reach = _reach_of(engine_or_reach)
    request = uuid.uuid4().hex[:12]  # keys unique per request: every click sends again
    results: list[dict[str, Any]] = []
    async with pool.acquire() as conn, conn.transaction():
        rules = await escalation.notification_rules(conn, user_id) or list(DEFAULT_RULES)
        methods = list(dict.fromkeys(r["method"] for r in rules))
        for method in methods:
            delivery_id = await reach(conn, user_id, method, incident=None, reason=f"test page requested by {actor}",
                                      key=f"test:{user_id}:{method}:{request}", now=now)
            delivery = await outbound.get_delivery(conn, delivery_id) if delivery_id is not None else None
            results.append({
                "delivery_id": delivery_id,
                "method": method,
                "recipient": delivery["recipient"] if delivery else None,
                "status": delivery["status"] if delivery else None,
                "problem": delivery["last_error"] if delivery and delivery["status"] == "failed" else None,
            })
        await audit.record_action(
            conn, actor=actor, action="notification_rules.test", target_type="user", target_id=user_id,
            details={"deliveries": [r["delivery_id"] for r in results], "methods": methods},
        )
        await notifications.announce(conn)
    return results


def describe_test_page(result: Mapping[str, Any], user_id: str) -> str:
    """One line per test delivery for Slack (mrkdwn): which went where, or why it could not."""
    method, recipient = result["method"], result.get("recipient") or ""
    if method == "slack_dm":
        where = "a Slack DM to you"
    elif recipient and recipient != user_id:
        where = f"{METHOD_LABELS[method]} to {recipient}"
    else:
        where = METHOD_LABELS[method]
    if result.get("problem"):
        return f":x: {where}: {result['problem']}"
    return f":outbox_tray: {where} (delivery {result['delivery_id']})"
