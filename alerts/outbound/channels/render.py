"""The words every channel shows for a `Page`, so an incident reads the same in an e-mail, a
Discord embed, a Teams card, a GitHub issue and an SMS: what happened (the headline), how bad, where,
and the facts that follow. Each module lays these out in its own format and cuts them to its
service's limits with `cut`.
"""

from __future__ import annotations

from datetime import timezone

from alerts.outbound.channels.base import Page

# What the news is, per action; acknowledge and resolve name who did it when known.
VERBS = {
    "trigger": "Firing",
    "escalate": "Escalated",
    "acknowledge": "Acknowledged",
    "resolve": "Resolved",
    "test": "Test",
}

# One colour per severity (0xRRGGBB), and green for whatever is resolved.
SEVERITY_COLOURS = {
    "critical": 0xD92D20,
    "high": 0xF97316,
    "medium": 0xEAB308,
    "low": 0x3B82F6,
    "info": 0x94A3B8,
}
RESOLVED_COLOUR = 0x16A34A
ACKNOWLEDGED_COLOUR = 0x8B5CF6


def cut(text: str | None, limit: int) -> str:
    """`text` at most `limit` characters long, ending in "…" when something was cut."""
    text = text or ""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def verb(page: Page) -> str:
    """"Firing", "Escalated (L2 of Production paging)", "Acknowledged by Ana", "Resolved"."""
    word = VERBS.get(page.action, page.action.capitalize())
    if page.action == "escalate" and page.step:
        return f"{word} ({page.step})"
    if page.action == "acknowledge" and page.acked_by:
        return f"{word} by {page.acked_by}"
    if page.action == "resolve" and page.resolved_by:
        return f"{word} by {page.resolved_by}"
    return word


def where(page: Page) -> str:
    """"checkout / production", "checkout", or "" — the service and environment."""
    return " / ".join(part for part in (page.service, page.env) if part)


def incident_ref(page: Page) -> str:
    return f"#{page.incident_id}" if page.incident_id is not None else ""


def subject(page: Page) -> str:
    """"[CRITICAL] Checkout 500s (checkout / production)": the line a list of messages shows."""
    place = f" ({where(page)})" if where(page) else ""
    return f"[{page.severity.upper()}] {page.title}{place}"


def headline(page: Page) -> str:
    """"Firing: [CRITICAL] Checkout 500s (checkout / production)"."""
    return f"{verb(page)}: {subject(page)}"


def colour(page: Page) -> int:
    if page.action == "resolve" or page.status == "resolved":
        return RESOLVED_COLOUR
    if page.action == "acknowledge":
        return ACKNOWLEDGED_COLOUR
    return SEVERITY_COLOURS.get(page.severity, SEVERITY_COLOURS["info"])


def facts(page: Page) -> list[tuple[str, str]]:
    """The facts of the incident worth a line each, in the order people look for them."""
    rows = [("Severity", page.severity), ("Status", page.status)]
    if page.service:
        rows.append(("Service", page.service))
    if page.env:
        rows.append(("Environment", page.env))
    if page.source:
        rows.append(("Source", page.source))
    if page.count > 1:
        rows.append(("Count", f"{page.count} alerts"))
    if page.first_seen is not None:
        rows.append(("First seen", page.first_seen.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    if page.step:
        rows.append(("Escalation step", page.step))
    if page.acked_by:
        rows.append(("Acknowledged by", page.acked_by))
    if page.resolved_by:
        rows.append(("Resolved by", page.resolved_by))
    if page.incident_id is not None:
        rows.append(("Incident", incident_ref(page)))
    return [(name, value) for name, value in rows if value]  # Discord refuses an empty field


def safe_link(page: Page) -> str | None:
    """The page's link when it is a web address; anything else (javascript:, data:) is dropped."""
    link = (page.link or "").strip()
    return link if link.lower().startswith(("https://", "http://")) else None
