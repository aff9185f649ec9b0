"""Reproducible installs: constraints.txt pins every package the test install brings in, and every
install path (the README's two commands, .ci/run, the Dockerfile) uses it."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from tests.test_readme import quickstart_commands

REPO = Path(__file__).resolve().parent.parent
REGENERATE = "regenerate it: .venv/bin/python .ci/constraints.py > constraints.txt"


def generator():
    spec = importlib.util.spec_from_file_location("ci_constraints", REPO / ".ci" / "constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pinned() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    return pins


def test_constraints_pin_every_package_of_the_test_install_as_installed():
    assert pinned() == generator().closure(("test",)), f"constraints.txt is out of date; {REGENERATE}"


def test_every_constraint_is_an_exact_pin():
    lines = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[a-z0-9][a-z0-9.\-]*==[A-Za-z0-9.+\-]+", line) for line in lines)


def test_both_readme_commands_and_the_image_install_with_the_constraints():
    run, test = quickstart_commands()
    assert "pip install -q -c constraints.txt -e . " in run
    assert "pip install -q -c constraints.txt -e '.[test]' " in test
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md constraints.txt ./" in dockerfile
    assert "RUN pip install -c constraints.txt ." in dockerfile


def test_slack_sdk_is_pinned_exactly_together_with_slack_bolt():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    slack = sorted(d for d in dependencies if d.startswith("slack-"))
    assert slack == [f"slack-bolt=={pinned()['slack-bolt']}", f"slack-sdk=={pinned()['slack-sdk']}"]
