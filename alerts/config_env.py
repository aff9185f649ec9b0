"""`${ENV_VAR}` in the config file: an outbound channel's secrets come from the environment, so the
file can live in git without them.

The syntax is Grafana's and docker-compose's: `${NAME}` anywhere in a text value is replaced by
the variable's value when the file is checked and applied; `$$` is a literal `$` (so `$${NAME}`
stays `${NAME}`); a `$` followed by anything else is kept as written. An unset variable is an
error, never an empty value: a channel silently missing its password pages nobody.

Export goes the other way: each secret becomes `${PULSER_<CHANNEL>_<FIELD>}` and never its value.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_REFERENCE = re.compile(r"\$(?:(\$)|\{([^}]*)(\})?)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")

Problem = tuple[tuple, str]  # (path below the value, what is wrong)


def interpolate(value: Any, env: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    """`value` (text, or lists and mappings of them) with every `${NAME}` replaced from `env`, and
    what could not be replaced, each at its path below `value`. The problems never hold a value."""
    problems: list[Problem] = []
    return _walk(value, env, (), problems), problems


def references(text: Any) -> bool:
    """Whether a text value takes (part of) its value from the environment."""
    return isinstance(text, str) and any(m.group(2) is not None for m in _REFERENCE.finditer(text))


def escaped(value: Any) -> Any:
    """`value` written so that `interpolate` gives it back unchanged (export of non-secret text)."""
    if isinstance(value, str):
        return value.replace("$", "$$") if ("$$" in value or "${" in value) else value
    if isinstance(value, list):
        return [escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: escaped(v) for k, v in value.items()}
    return value


def variable_name(channel: str, field: str) -> str:
    """PULSER_<CHANNEL>_<FIELD>, upper-case, every run of other characters one `_`."""
    return "PULSER_" + "_".join(p for p in (_NOT_ALNUM.sub("_", channel.upper()).strip("_"),
                                            _NOT_ALNUM.sub("_", field.upper()).strip("_")) if p)


def _walk(value: Any, env: Mapping[str, str], path: tuple, problems: list[Problem]) -> Any:
    if isinstance(value, str):
        return _text(value, env, path, problems)
    if isinstance(value, list):
        return [_walk(v, env, (*path, i), problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _walk(v, env, (*path, k), problems) for k, v in value.items()}
    return value


def _text(text: str, env: Mapping[str, str], path: tuple, problems: list[Problem]) -> str:
    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group(2)
        if match.group(3) is None:
            problems.append((path, "an unclosed ${: write ${NAME} for an environment variable, or $$ for a literal $"))
        elif not _NAME.fullmatch(name):
            problems.append((path, "${…} takes an environment variable's name (letters, digits and _, e.g. "
                                   "${SMTP_PASSWORD}); write $$ for a literal $"))
        elif name not in env:
            problems.append((path, f"the environment variable {name} is not set: set it where Pulser runs "
                                   "(and where you run pulser config check)"))
        else:
            return env[name]
        return match.group(0)

    return _REFERENCE.sub(replace, text)
