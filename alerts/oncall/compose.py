"""The final schedule: layers, swaps and overrides made into who is on call when. Pure.

- A swap gives one layer shift (the one of `from_user` starting at `shift_start`) to `to_user`.
- At any instant the on-call are: the override's user if an override covers it; else everyone the
  highest layer that has someone then has (an imported calendar may name two people at once);
  else nobody.
- Final shifts are the maximal runs of one person on call from one source (a layer number, or
  "override"), cut to the asked window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from alerts.oncall.rotation import LayerShift

OVERRIDE = "override"


@dataclass(frozen=True)
class Shift:
    """One person's stretch on call. `layer` is the 1-based layer number, or "override"."""

    user: str
    start: datetime
    end: datetime
    layer: int | str


@dataclass(frozen=True)
class Swap:
    shift_start: datetime
    from_user: str
    to_user: str


@dataclass(frozen=True)
class Override:
    user: str
    start: datetime
    end: datetime


def apply_swaps(shifts: Iterable[LayerShift], swaps: Sequence[Swap]) -> list[LayerShift]:
    taken = {(s.shift_start, s.from_user): s.to_user for s in swaps}
    return [LayerShift(taken.get((s.start, s.user), s.user), s.start, s.end) for s in shifts]


def compose(
    layers: Sequence[Sequence[LayerShift]], overrides: Sequence[Override], start: datetime, end: datetime
) -> list[Shift]:
    """Final shifts in [start, end), ordered by start, then user. `layers` bottom first."""
    sources: list[tuple[int | str, LayerShift]] = [
        (number, s) for number, shifts in enumerate(layers, start=1) for s in shifts if s.start < end and s.end > start
    ]
    sources += [(OVERRIDE, LayerShift(o.user, o.start, o.end)) for o in overrides if o.start < end and o.end > start]
    cuts = sorted({start, end, *(t for _, s in sources for t in (s.start, s.end) if start < t < end)})
    open_runs: dict[tuple[str, int | str], datetime] = {}  # (user, source) → since when
    final: list[Shift] = []
    for lo, hi in zip(cuts, cuts[1:]):
        now_on = set(_on_call(sources, lo))
        for key in [k for k in open_runs if k not in now_on]:
            final.append(Shift(key[0], open_runs.pop(key), lo, key[1]))
        for key in now_on:
            open_runs.setdefault(key, lo)
    final += [Shift(user, since, end, source) for (user, source), since in open_runs.items()]
    final.sort(key=lambda s: (s.start, s.user))
    return final


def on_call_at(final: Sequence[Shift], at: datetime) -> list[str]:
    return sorted({s.user for s in final if s.start <= at < s.end})


def _on_call(sources: Sequence[tuple[int | str, LayerShift]], at: datetime) -> list[tuple[str, int | str]]:
    covering = [(source, s.user) for source, s in sources if s.start <= at < s.end]
    overriding = [(user, OVERRIDE) for source, user in covering if source == OVERRIDE]
    if overriding:
        return overriding
    layers = [source for source, _ in covering if isinstance(source, int)]
    if not layers:
        return []
    top = max(layers)
    return [(user, top) for source, user in covering if source == top]
