"""Typed shapes of on-call request bodies, for the OpenAPI document (`handlers.http.openapi`).

As with `alerts.models`, they describe; `alerts.oncall.validation` decides, with its own words
per field. They accept what the validators accept (members as a list or as text, days as a list
or as `weekdays`), and the suite checks every accepted body against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

USER = "a Slack user ID like U012ABCDEF"
WHEN = "an ISO 8601 time with a zone, a local time in the schedule's zone (2026-12-08 09:00), now, or +4h"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RotationLayer(Strict):
    """Members take turns, one shift each, handing off at a local time."""

    kind: Literal["rotation"] | None = Field(None, description="rotation (the default without ical_url)")
    name: str | None = Field(None, max_length=80, description="default: layer N")
    members: list[str] | str = Field(description=f"in rotation order: {USER} each (a list, or comma-separated)")
    shift: str = Field(description="the shift length: 1 week, 2 days, 12 hours (at most 8 weeks)")
    handoff: str | None = Field(None, description="local time of the hand-off, HH:MM (default 09:00)")
    start: str = Field(description="date of the first hand-off, YYYY-MM-DD; members[0] takes the first shift",
                       json_schema_extra={"format": "date"})
    days: list[str | int] | str | None = Field(
        None, description="only on these days: weekdays, weekends, mon-fri, or a list like [mon, tue] (ISO 1–7 too)"
    )
    hours: str | None = Field(None, description="only these local hours, e.g. 09:00-17:00 (17:00-09:00 runs past midnight)")


class ImportedLayer(Strict):
    """A calendar (Google, an exported Grafana OnCall or PagerDuty schedule, another Pulser feed),
    fetched every 15 minutes; each event's Slack ID (U…) in its summary, or its attendees' e-mail,
    names who is on call."""

    kind: Literal["imported"] | None = None
    name: str | None = Field(None, max_length=80)
    ical_url: str = Field(description="http(s):// or webcal:// address of the iCal feed")
    status: dict | None = Field(None, description="read-only: a GET's fetch status, ignored when sent back")


class ScheduleCreate(Strict):
    name: str = Field(min_length=1, max_length=80, description="unique, ignoring case")
    time_zone: str = Field(description="IANA zone, e.g. Europe/Berlin: hand-offs and typed times are in it")
    layers: list[RotationLayer | ImportedLayer] = Field(
        default_factory=list, description="bottom first: a later layer wins where it has someone"
    )


class ScheduleUpdate(BaseModel):
    """A partial update; `layers` is replaced as a whole. Read-only fields a GET returned may be
    sent back and are ignored."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    time_zone: str | None = None
    layers: list[RotationLayer | ImportedLayer] | None = None
    rotate_feed_token: bool | None = Field(None, description="true: a new feed URL; the old one stops working")


class OverrideCreate(Strict):
    user: str = Field(description=USER)
    start: str = Field(description=WHEN)
    end: str = Field(description=WHEN.replace("+4h", "+4h after the start"))


class SwapCreate(Strict):
    shift_start: str = Field(description="the start of from_user's shift, as /shifts lists it: " + WHEN)
    from_user: str = Field(description="whose shift it is: " + USER)
    to_user: str = Field(description="who takes it: " + USER)
