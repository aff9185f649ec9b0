"""The layering (the README's Layout), checked on the source: arrows point down, never up; and
the repository stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = {"bot", "handlers", "alerts", "jobs", "storage", "blocks", "sandbox", "migrations"}

# package → the packages of ours it may import (besides itself)
ALLOWED = {
    "storage": set(),
    "blocks": set(),
    "sandbox": set(),
    "alerts": {"storage", "blocks"},
    "jobs": {"alerts", "storage"},
    "handlers": {"alerts", "storage", "blocks"},
    "bot": OURS,
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_is_below_it(package):
    wrong = {}
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_packages(path) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(REPO))] = sorted(bad)
    assert wrong == {}


def test_nothing_in_the_repository_points_outside_it():
    """A fresh clone has only itself: no file may send a reader to a sibling folder of notes."""
    suffixes = {".py", ".md", ".toml", ".txt", ".yml", ".yaml", ".sql", ".json", ".cfg", ""}
    outside = ("../shared", "shared/reference", "/work/")
    offenders = []
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO)
        hidden = relative.parts[0].startswith(".") and relative.parts[0] != ".ci"  # venv, git, caches
        built = relative.parts[0].endswith(".egg-info") or "__pycache__" in relative.parts
        if not path.is_file() or hidden or built or path.suffix not in suffixes or path == Path(__file__):
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{relative}: {marker}" for marker in outside if marker in text]
    assert offenders == []
