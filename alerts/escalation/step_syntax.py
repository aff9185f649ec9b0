"""An escalation policy's steps as lines of text, for Slack's form: one step per line.

    wait 15                      wait 15 minutes
    slack #ops-alerts            post the incident in a channel (#name or C012ABCDEF) …
    slack #ops-alerts @here      … mentioning @here, @channel, a person (@U012ABCDEF) or a group (S012ABCDEF)
    user @U012ABCDEF             page a person by their notification rules (<@U012ABCDEF> too)
    oncall Primary               page whoever is on call for the schedule "Primary"
    group S012ABCDEF             mention a Slack user group in the incident's channels
    send discord-ops             send to an outbound channel (e-mail, Discord, PagerDuty …) by name

Any step may end with `if critical` or `if high+` (that severity and above). Blank lines and lines
starting with `//` are skipped. `parse_steps` turns the text into the list `parse_policy` takes,
remembering each step's line, so the policy's own errors (`steps[2].channel`) can be shown on the
line that caused them; `steps_text` writes a stored policy back the same way.

Slack's own formatting of what people paste (`<@U012ABCDEF|ada>`, `<#C012ABCDEF|ops>`,
`<!subteam^S012ABCDEF|@oncall>`, `<!here>`) is understood too.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from alerts.normalized import SEVERITIES

SYNTAX_HINT = (
    "One step per line: wait 15 · slack #ops-alerts [@here] · user @U012ABCDEF · oncall Primary · "
    "group S012ABCDEF · send discord-ops. End a step with “if critical” or “if high+” to take it only "
    "from that severity up. Lines starting with // are notes."
)

VERBS = ("wait", "slack", "user", "oncall", "group", "send")
_CONDITION = re.compile(r"\s+if\s+([a-z]+)(\+|\s+and\s+(?:above|up))?\s*$", re.IGNORECASE)
_WAIT = re.compile(r"^([0-9]+)\s*(m|min|mins|minutes?)?$", re.IGNORECASE)
_SLACK_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SLACK_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
_SLACK_GROUP = re.compile(r"^<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>$")
_SLACK_SPECIAL = re.compile(r"^<!(here|channel|everyone)(?:\|[^>]*)?>$")


class StepSyntaxError(ValueError):
    """Line number (1-based) → what is wrong with it."""

    def __init__(self, errors: dict[int, str]):
        self.errors = errors
        super().__init__("; ".join(f"line {line}: {problem}" for line, problem in sorted(errors.items())))


def _user(token: str) -> str:
    """<@U1|ada>, @U1 or U1 → U1 (checked by parse_policy)."""
    match = _SLACK_USER.match(token)
    return match.group(1) if match else token.lstrip("@")


def _group(token: str) -> str:
    match = _SLACK_GROUP.match(token)
    return match.group(1) if match else token.lstrip("@")


def _mention(token: str) -> str:
    if match := _SLACK_SPECIAL.match(token):
        return "@" + match.group(1)
    if token.lower() in ("@here", "@channel", "@everyone"):
        return token.lower()
    if _SLACK_USER.match(token):
        return _user(token)
    if _SLACK_GROUP.match(token):
        return _group(token)
    return token.lstrip("@")


def _channel(token: str) -> str:
    match = _SLACK_CHANNEL.match(token)
    return match.group(1) if match else token


def parse_line(line: str) -> dict[str, Any]:
    """One step as parse_policy takes it; ValueError says what the line should look like."""
    text = line.strip()
    step: dict[str, Any] = {}
    condition = _CONDITION.search(text)
    if condition:
        severity = condition.group(1).lower()
        if severity not in SEVERITIES:
            raise ValueError(f"“if {condition.group(1)}” is not a severity: use one of {', '.join(SEVERITIES)}")
        if severity != SEVERITIES[-1] and not condition.group(2):
            raise ValueError(f"write “if {severity}+” ({severity} and above): a step applies from a severity up")
        step["min_severity"] = severity
        text = text[: condition.start()].strip()
    verb, _, rest = text.partition(" ")
    verb, rest = verb.lower(), rest.strip()
    args = rest.split()
    if verb == "wait":
        match = _WAIT.match(rest)
        if not match:
            raise ValueError("wait takes minutes: wait 15")
        return {"kind": "wait", "wait_minutes": int(match.group(1)), **step}
    if verb == "slack":
        if not 1 <= len(args) <= 2:
            raise ValueError("slack takes a channel and an optional mention: slack #ops-alerts @here")
        step.update(kind="slack_channel", target=_channel(args[0]))
        if len(args) == 2:
            step["mention"] = _mention(args[1])
        return step
    if verb == "user":
        if len(args) != 1:
            raise ValueError("user takes one Slack user ID: user @U012ABCDEF")
        return {"kind": "user", "target": _user(args[0]), **step}
    if verb == "oncall":
        if not rest:
            raise ValueError("oncall takes a schedule's name: oncall Primary")
        return {"kind": "oncall", "target": rest, **step}
    if verb == "group":
        if len(args) != 1:
            raise ValueError("group takes one user-group ID: group S012ABCDEF")
        return {"kind": "user_group", "target": _group(args[0]), **step}
    if verb == "send":
        if not rest:
            raise ValueError("send takes an outbound channel's name: send discord-ops")
        return {"kind": "outbound", "channel": rest, **step}
    raise ValueError(f"a step starts with {', '.join(VERBS)}")


def parse_steps(text: str) -> tuple[list[dict[str, Any]], list[int]]:
    """(steps, the 1-based line each came from); StepSyntaxError names every line it could not read."""
    steps: list[dict[str, Any]] = []
    lines: list[int] = []
    errors: dict[int, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.strip().startswith("//"):
            continue
        try:
            steps.append(parse_line(line))
            lines.append(number)
        except ValueError as exc:
            errors[number] = str(exc)
    if errors:
        raise StepSyntaxError(errors)
    return steps, lines


def step_line(step: Mapping[str, Any], channel_names: Mapping[int, str] | None = None) -> str:
    """A stored step (or one as parse_policy takes it) as the line that parses back to it."""
    kind = step["kind"]
    if kind == "wait":
        line = f"wait {step['wait_minutes']}"
    elif kind == "slack_channel":
        line = f"slack {step['target']}"
        mention = step.get("mention")
        if mention:
            line += f" {mention}" if mention.startswith(("@", "S")) else f" @{mention}"
    elif kind == "user":
        line = f"user @{step['target']}"
    elif kind == "oncall":
        line = f"oncall {step['target']}"
    elif kind == "user_group":
        line = f"group {step['target']}"
    else:
        name = step.get("channel")
        if name is None:
            name = (channel_names or {}).get(step.get("channel_id"), str(step.get("channel_id")))
        line = f"send {name}"
    severity = step.get("min_severity")
    if severity:
        line += " if critical" if severity == SEVERITIES[-1] else f" if {severity}+"
    return line


def steps_text(steps: Sequence[Mapping[str, Any]], channel_names: Mapping[int, str] | None = None) -> str:
    return "\n".join(step_line(step, channel_names) for step in steps)


_STEP_PATH = re.compile(r"^steps\[([0-9]+)\](?:\.(.+))?$")


def errors_by_line(errors: Mapping[str, str], lines: Sequence[int]) -> tuple[dict[str, str], list[str]]:
    """parse_policy's errors split: (those of other fields, as they are; the steps' ones as
    "line N: …" texts, in line order)."""
    others: dict[str, str] = {}
    on_lines: list[tuple[int, str]] = []
    for path, problem in errors.items():
        match = _STEP_PATH.match(path)
        if match is None:
            others[path] = problem
            continue
        index = int(match.group(1))
        line = lines[index] if index < len(lines) else index + 1
        on_lines.append((line, problem))
    return others, [f"line {line}: {problem}" for line, problem in sorted(on_lines)]
