"""The README's Quickstart is a contract: exactly two one-line commands, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_the_quickstart_has_two_one_line_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert commands[0].endswith("pulser run")
    assert commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert quickstart_commands()[1] in ci


def test_every_setting_the_code_reads_is_documented():
    source = (REPO / "bot" / "settings.py").read_text()
    variables = set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', source))
    readme = (REPO / "README.md").read_text()
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert missing == []


def test_the_paging_walkthroughs_policy_is_the_example_the_api_and_slack_offer():
    from alerts.escalation.policies import monitoring_example
    from alerts.escalation.step_syntax import parse_steps

    section = (REPO / "README.md").read_text().split("### Walkthrough: the monitoring design's L1–L3", 1)[1]
    steps_text = re.search(r"```text\n(.*?)```", section, flags=re.S).group(1)
    steps, _ = parse_steps(steps_text)
    assert steps == monitoring_example()["steps"]
