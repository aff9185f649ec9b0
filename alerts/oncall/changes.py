"""Changes to a schedule that need its shifts to be judged: overrides and swaps. Shared by the
API and Slack, so both refuse the same things with the same words."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from alerts.oncall import Schedule, layer_shifts, shifts
from alerts.oncall.validation import OverrideSpec, SwapSpec
from storage import schedules as store


class Conflict(Exception):
    """The change contradicts the schedule (answered 409); `errors` is field → what to do."""

    def __init__(self, message: str, errors: dict[str, str]):
        super().__init__(message)
        self.message = message
        self.errors = errors


async def add_override(pool, schedule: Schedule, spec: OverrideSpec, *, by: str | None) -> dict[str, Any]:
    try:
        row = await store.create_override(
            pool, schedule.id, user_id=spec.user, starts_at=spec.start, ends_at=spec.end, created_by=by
        )
    except store.OverlappingOverride as exc:
        other = exc.existing
        raise Conflict("overlapping override", {
            "start": f"overlaps override {other['id']} (<@{other['user_id']}>, {other['starts_at'].isoformat()} – "
            f"{other['ends_at'].isoformat()}): delete it first, or choose a window that does not overlap it",
        }) from None
    if row is None:
        raise LookupError(schedule.id)
    return row


async def add_swap(pool, schedule: Schedule, spec: SwapSpec, *, by: str | None) -> dict[str, Any]:
    """Swap the layer shift of `from_user` that starts at `shift_start`. A final shift's start
    (as `/shifts` lists it, e.g. after a higher layer's hours) names the layer shift under it."""
    start = await _layer_shift_start(pool, schedule, spec)
    row = await store.create_swap(
        pool, schedule.id, shift_start=start, from_user=spec.from_user, to_user=spec.to_user, created_by=by
    )
    if row is None:
        raise Conflict("already swapped", {"shift_start": f"this shift of <@{spec.from_user}> was swapped already"})
    return row


async def _layer_shift_start(pool, schedule: Schedule, spec: SwapSpec) -> datetime:
    at, user = spec.shift_start, spec.from_user
    window = (at - timedelta(weeks=8), at + timedelta(weeks=8))
    layers = await layer_shifts(pool, schedule, *window)
    final = await shifts(pool, schedule, *window)
    theirs = [(n, s) for n, layer in enumerate(layers, start=1) for s in layer if s.user == user]
    candidate = next((s for _, s in theirs if s.start == at), None)
    if candidate is None:
        final_shift = next((f for f in final if f.user == user and f.start == at and isinstance(f.layer, int)), None)
        if final_shift is not None:
            candidate = next(
                (s for n, s in theirs if n == final_shift.layer and s.start <= at < s.end), None
            )
    if candidate is None or not any(f.user == user and f.start < candidate.end and f.end > candidate.start for f in final):
        upcoming = sorted({f.start for f in final if f.user == user and f.end > at})[:3]
        hint = (
            "their shifts near then start at " + ", ".join(t.isoformat() for t in upcoming)
            if upcoming else "they have no shift in the 8 weeks around it"
        )
        raise Conflict("not on call then", {"shift_start": f"<@{user}> is not on call in a shift starting then; {hint}"})
    return candidate.start

