"""`pulser config check` and the config file's JSON Schema: a good file passes with a summary,
every kind of error names its path, line and what is allowed, and the published schema and
sample are what the code says."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from alerts.config_file import ConfigInvalid, _plain, check_text, json_schema_text
from bot.cli import main
from bot.settings import SettingsError
from tests.conftest import make_settings

DOCS = Path(__file__).resolve().parent.parent / "docs"

GOOD = """\
routing_rules:
  - name: api in prod
    envs: [production]
    channel: "#api-alerts"
event_routes:
  deploy: "#ops-deploy"
"""


def errors_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigInvalid) as caught:
        check_text(textwrap.dedent(text))
    return [(e.line, e.path, e.message) for e in caught.value.errors]


def test_a_good_file_passes_with_a_summary(tmp_path, capsys):
    path = tmp_path / "pulser.yml"
    path.write_text(GOOD)
    assert main(["config", "check", str(path)]) == 0
    assert "valid: 1 routing rule(s), 0 silence(s), 0 inhibition rule(s), 1 event route(s)" in capsys.readouterr().out


def test_a_bad_file_exits_2_with_each_error_as_file_line_path(tmp_path, capsys):
    path = tmp_path / "pulser.yml"
    path.write_text(GOOD.replace('"#api-alerts"', "api-alerts"))
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: routing_rules[0].channel: must be a channel like #api-alerts" in err
    assert "1 error(s); nothing would be applied" in err


def test_yaml_syntax_errors_name_their_line():
    [(line, path, message)] = errors_of("routing_rules:\n  - name: [unclosed\n    channel: x\n")
    assert line == 3 and path == "" and message.startswith("not valid YAML")


def test_an_unknown_key_lists_the_allowed_ones():
    [(line, path, message)] = errors_of("routing_rules:\n  - name: b\n    channel: '#b'\n    chanel: '#b'\n")
    assert (line, path) == (4, "routing_rules[0].chanel")
    assert message.startswith("unknown key; allowed: name, envs, min_severity")


def test_an_unknown_section_lists_the_sections():
    [(line, path, message)] = errors_of(GOOD + "routes: {}\n")
    assert (line, path) == (7, "routes") and "routing_rules, silences, inhibition_rules" in message


def test_a_missing_required_key_points_at_its_entry():
    [(line, path, message)] = errors_of("routing_rules:\n  - name: no channel\n")
    assert (line, path) == (2, "routing_rules[0].channel") and message.startswith("required:")


def test_a_wrong_type_says_what_the_key_takes():
    [(line, path, message)] = errors_of("routing_rules:\n  - name: x\n    channel: '#x'\n    continue_matching: often\n")
    assert (line, path) == (4, "routing_rules[0].continue_matching") and "keep trying the next ones" in message


def test_a_value_the_api_would_refuse_gets_the_apis_words():
    [(line, path, message)] = errors_of(
        "deploy_services:\n  - name: billing\n    action_type: github_workflow\n"
        "    action: {repo: not-a-repo, workflow: deploy.yml}\n"
    )
    assert (line, path, message) == (4, "deploy_services[0].action.repo", "required: the repository as owner/name")


def test_an_unknown_enum_value_lists_the_allowed_values():
    [(line, path, message)] = errors_of("event_routes:\n  deploy: '#d'\n  deploys: '#d'\n")
    assert (line, path) == (3, "event_routes.deploys") and "ci, deploy, error_rate, scheduled_task, manual" in message


def test_duplicate_names_are_refused_with_both_places():
    [(line, path, message)] = errors_of(
        "inhibition_rules:\n"
        "  - {name: mute, source_matchers: {severity: critical}, target_matchers: {severity: low}}\n"
        "  - {name: mute, source_matchers: {severity: high}, target_matchers: {severity: low}}\n"
    )
    assert (line, path) == (3, "inhibition_rules[1].name") and "also inhibition_rules[0]" in message


def test_every_error_of_a_file_is_reported_at_once():
    found = errors_of(
        "routing_rules:\n  - name: x\n    channel: nowhere\n    min_severity: severe\n"
        "silences:\n  - matchers: {env: staging}\n    starts_at: yesterday\n    ends_at: 2030-01-01T00:00:00Z\n"
    )
    assert [(line, path) for line, path, _ in found] == [
        (3, "routing_rules[0].channel"), (4, "routing_rules[0].min_severity"), (7, "silences[0].starts_at"),
    ]


def test_a_silence_that_has_ended_is_still_a_valid_entry():
    spec = check_text(
        "silences:\n  - matchers: ['env=\"staging\"']\n    starts_at: 2020-01-01T00:00:00Z\n    ends_at: 2020-01-01T02:00:00Z\n"
    )
    assert spec.silences[0].ends_at.year == 2020 and spec.silences[0].created_by == "config"


# --- the published schema and sample -----------------------------------------------------------------


def test_the_committed_schema_is_what_the_code_generates():
    assert (DOCS / "pulser.schema.json").read_text(encoding="utf-8") == json_schema_text(), (
        "regenerate it: pulser config schema -o docs/pulser.schema.json"
    )


def test_the_sample_file_passes_the_check(capsys):
    assert main(["config", "check", str(DOCS / "pulser.example.yml")]) == 0
    assert "3 routing rule(s), 1 silence(s), 1 inhibition rule(s), 2 event route(s), 2 deploy service(s)" in capsys.readouterr().out


def test_the_sample_file_passes_the_json_schema_editors_use():
    schema = json.loads((DOCS / "pulser.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    document = _plain(yaml.safe_load((DOCS / "pulser.example.yml").read_text(encoding="utf-8")))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []


def test_the_schema_command_prints_the_schema(capsys):
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Pulser configuration"


# --- PULSER_CONFIG ---------------------------------------------------------------------------------------


def test_pulser_config_must_name_an_existing_file(tmp_path):
    with pytest.raises(SettingsError) as caught:
        make_settings(PULSER_CONFIG=str(tmp_path / "missing.yml"))
    assert caught.value.variable == "PULSER_CONFIG" and "existing YAML file" in str(caught.value)


def test_pulser_config_is_read_into_the_settings(tmp_path):
    path = tmp_path / "pulser.yml"
    path.write_text(GOOD)
    assert make_settings(PULSER_CONFIG=str(path)).config_path == path


def test_the_readme_sample_is_a_file_pulser_config_check_accepts(tmp_path, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration as code"):]
    sample = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "pulser.yml"
    path.write_text(sample)
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr()
    assert "is valid" in capsys.readouterr().out
