"""Escalation policies as people write them, checked before anything is saved.

A policy is an ordered list of steps, taken one after another while nobody acknowledges the
incident; `wait` steps are where time passes. After the last step the whole list is taken again,
`repeat` more times. A step may apply only from a severity up (`min_severity`), which is how one
policy says "Discord for everything, SMS only for critical".

Step kinds and their target:
- `wait` — `wait_minutes`.
- `slack_channel` — a channel ID (`C…`) or `#name`; `mention` optional (`@here`, `U…`, `S…`).
- `user` — a Slack user ID; reached through their personal notification rules.
- `oncall` — a schedule's name; whoever is on call when the step is taken, by their rules.
- `user_group` — a Slack user-group ID (`S…`), mentioned in the incident's channels.
- `outbound` — an outbound channel, by name or id (e-mail, Discord, PagerDuty …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from alerts.normalized import SEVERITIES
from blocks.incidents import format_mention

STEP_KINDS = ("wait", "slack_channel", "user", "oncall", "user_group", "outbound")
MAX_STEPS = 30
WAIT_RANGE = (1, 1440)
REPEAT_RANGE = (0, 10)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL = re.compile(r"^([CG][A-Z0-9]{2,}|#?[a-z0-9][a-z0-9_\-]{0,79})$")
MENTION = re.compile(r"^(@here|@channel|@everyone|[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,})$")


class PolicyValidationError(ValueError):
    """Field path → what is allowed, e.g. {"steps[2].target": "a Slack user ID like U012ABCDEF"}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class PolicySpec:
    name: str
    repeat: int
    steps: list[dict[str, Any]]  # storage.escalation.STEP_FIELDS, outbound targets resolved to channel_id


def parse_policy(data: Mapping[str, Any], *, channels: Mapping[str, int], schedules: Sequence[str] | None) -> PolicySpec:
    """Check a policy; `channels` maps outbound channel names (and ids as strings) to ids;
    `schedules` is the known schedules' names (None: schedules cannot be checked here)."""
    errors: dict[str, str] = {}
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        errors["name"] = "required: 1 to 80 characters"
    repeat = data.get("repeat", 0)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not REPEAT_RANGE[0] <= repeat <= REPEAT_RANGE[1]:
        errors["repeat"] = f"a whole number from {REPEAT_RANGE[0]} to {REPEAT_RANGE[1]}: how many more times the steps are taken"
    raw_steps = data.get("steps")
    steps: list[dict[str, Any]] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        errors["steps"] = "required: a list of steps (wait, slack_channel, user, oncall, user_group, outbound)"
    elif len(raw_steps) > MAX_STEPS:
        errors["steps"] = f"at most {MAX_STEPS} steps"
    else:
        for index, raw in enumerate(raw_steps):
            step = _parse_step(raw, f"steps[{index}]", errors, channels=channels, schedules=schedules)
            if step is not None:
                steps.append(step)
        if steps and all(s["kind"] == "wait" for s in steps):
            errors["steps"] = "a policy of only waits notifies nobody: add a step that notifies someone"
    if errors:
        raise PolicyValidationError(errors)
    return PolicySpec(name=name.strip(), repeat=repeat, steps=steps)


def _parse_step(raw: Any, path: str, errors: dict[str, str], *, channels: Mapping[str, int],
                schedules: Sequence[str] | None) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        errors[path] = "an object with a kind"
        return None
    kind = raw.get("kind")
    if kind not in STEP_KINDS:
        errors[f"{path}.kind"] = f"one of {', '.join(STEP_KINDS)}"
        return None
    known = {"kind", "wait_minutes", "target", "mention", "channel", "min_severity"}
    for extra in sorted(set(raw) - known):
        errors[f"{path}.{extra}"] = f"unknown field; a step has {', '.join(sorted(known))}"
    step: dict[str, Any] = {"kind": kind, "wait_minutes": None, "target": None, "mention": None, "channel_id": None,
                            "min_severity": None}
    min_severity = raw.get("min_severity")
    if min_severity is not None:
        if min_severity not in SEVERITIES:
            errors[f"{path}.min_severity"] = f"one of {', '.join(SEVERITIES)}, or leave it out for every severity"
        step["min_severity"] = min_severity
    target = raw.get("target")
    if kind == "wait":
        minutes = raw.get("wait_minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not WAIT_RANGE[0] <= minutes <= WAIT_RANGE[1]:
            errors[f"{path}.wait_minutes"] = f"required: minutes from {WAIT_RANGE[0]} to {WAIT_RANGE[1]}"
        step["wait_minutes"] = minutes
    elif kind == "outbound":
        channel = raw.get("channel", target)
        channel_id = channels.get(str(channel)) if channel is not None else None
        if channel_id is None:
            known_names = ", ".join(sorted(k for k in channels if not k.isdigit())) or "none yet"
            errors[f"{path}.channel"] = f"an outbound channel's name or id (known: {known_names})"
        step["channel_id"] = channel_id
    else:
        pattern, what = {
            "slack_channel": (CHANNEL, "a channel ID like C012ABCDEF or a #channel-name"),
            "user": (USER_ID, "a Slack user ID like U012ABCDEF"),
            "user_group": (GROUP_ID, "a Slack user-group ID like S012ABCDEF"),
            "oncall": (None, "a schedule's name"),
        }[kind]
        if not isinstance(target, str) or not target.strip():
            errors[f"{path}.target"] = f"required: {what}"
        elif pattern is not None and not pattern.match(target.strip()):
            errors[f"{path}.target"] = what
        elif kind == "oncall" and schedules is not None and target.strip() not in schedules:
            errors[f"{path}.target"] = f"no schedule is called {target.strip()!r} (known: {', '.join(schedules) or 'none yet'})"
        step["target"] = target.strip() if isinstance(target, str) else None
        mention = raw.get("mention")
        if mention is not None:
            if kind != "slack_channel":
                errors[f"{path}.mention"] = "only a slack_channel step mentions someone"
            elif not isinstance(mention, str) or not MENTION.match(mention):
                errors[f"{path}.mention"] = "@here, @channel, a user ID (U…) or a user-group ID (S…)"
            step["mention"] = mention
    return step


def describe_step(step: Mapping[str, Any], channel_names: Mapping[int, str] | None = None) -> str:
    """One line for Slack and the timeline: "wait 15 min", "notify on-call of Primary (critical+)"."""
    kind = step["kind"]
    if kind == "wait":
        text = f"wait {step['wait_minutes']} min"
    elif kind == "slack_channel":
        target = step["target"] if str(step["target"]).startswith("#") or not CHANNEL.match(str(step["target"])) else f"<#{step['target']}>"
        text = f"post in {target}" + (f" mentioning {format_mention(step['mention'])}" if step.get("mention") else "")
    elif kind == "user":
        text = f"page <@{step['target']}>"
    elif kind == "oncall":
        text = f"page whoever is on call for {step['target']}"
    elif kind == "user_group":
        text = f"mention <!subteam^{step['target']}> in the incident's channels"
    else:
        name = (channel_names or {}).get(step["channel_id"], f"channel {step['channel_id']}")
        text = f"send to {name}"
    if step.get("min_severity"):
        text += f" (only {step['min_severity']} and above)"
    return text


def monitoring_example() -> dict[str, Any]:
    """The severity × channel escalation of Pulser's monitoring design, as a policy to start from:
    L1 (0–15 min) Discord and Slack; L2 (15–30 min) the on-call person (an e-mail rule in their
    notification rules makes it "e-mail to the on-call person") and a repeat in Slack with a
    mention; L3 (30+ min) a GitHub issue, an SMS and PagerDuty. Channel and schedule names are
    placeholders to rename."""
    return {
        "name": "Monitoring L1-L3",
        "repeat": 0,
        "steps": [
            {"kind": "outbound", "channel": "discord"},
            {"kind": "slack_channel", "target": "#ops-alerts"},
            {"kind": "wait", "wait_minutes": 15},
            {"kind": "oncall", "target": "Primary", "min_severity": "high"},
            {"kind": "slack_channel", "target": "#ops-alerts", "mention": "@here"},
            {"kind": "wait", "wait_minutes": 15},
            {"kind": "outbound", "channel": "github", "min_severity": "high"},
            {"kind": "outbound", "channel": "sms", "min_severity": "critical"},
            {"kind": "outbound", "channel": "pagerduty", "min_severity": "critical"},
        ],
    }
