"""Objects the config file (PULSER_CONFIG) defines are read-only in Slack and the API: the file
is their one source, and a change made elsewhere would be undone by the next apply anyway. These
are the words both refuse with."""

from __future__ import annotations

from typing import Any, Mapping

MANAGED_ERROR = "managed by the config file"


def is_managed(obj: Any) -> bool:
    """A storage row (mapping) or a dataclass with `managed_by`."""
    value = obj.get("managed_by") if isinstance(obj, Mapping) else getattr(obj, "managed_by", None)
    return value is not None


def managed_detail(what: str) -> str:
    """The API's 409 detail: what to do instead."""
    return (
        f"this {what} is defined in the config file (PULSER_CONFIG) and is read-only here: change or remove it "
        "in the file, and Pulser applies it when the file is saved or on SIGHUP"
    )


def managed_notice(what: str, name: str) -> str:
    """The Slack answer (mrkdwn)."""
    return (
        f":lock: {what} *{name}* is managed by the config file (`PULSER_CONFIG`), so it cannot be changed "
        "from Slack. Edit the file instead; Pulser applies it when the file is saved."
    )
