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

from alerts.config_env import interpolate
from alerts.config_export import secret_variables
from alerts.config_file import ConfigInvalid, KnownNames, _plain, check_text, json_schema_text
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


def errors_of(text: str, **options) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigInvalid) as caught:
        check_text(textwrap.dedent(text), **options)
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


# --- outbound channels, schedules, escalation policies ------------------------------------------------

PAGERDUTY_KEY = "0123456789abcdef0123456789abcdef"
PAGING = """\
outbound_channels:
  - name: pagerduty
    kind: pagerduty
    settings:
      routing_key: ${PD_KEY}
schedules:
  - name: Primary
    time_zone: Europe/Berlin
    layers:
      - {members: [U012ABCDEF], shift: 1 week, handoff: 10:30, start: 2026-12-07}
escalation_policies:
  - name: Critical paging
    steps:
      - {kind: oncall, target: Primary}
      - {kind: wait, wait_minutes: 10}
      - {kind: outbound, channel: pagerduty}
routing_rules:
  - name: payments
    channel: "#payments"
    escalation_policy: Critical paging
"""


def test_paging_sections_pass_with_the_secret_taken_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PD_KEY", PAGERDUTY_KEY)
    path = tmp_path / "pulser.yml"
    path.write_text(PAGING)
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "1 outbound channel(s), 1 schedule(s), 1 escalation policy(ies)" in out and err == ""
    assert PAGERDUTY_KEY not in out + err
    spec = check_text(PAGING)
    assert spec.channels[0].settings == {"routing_key": PAGERDUTY_KEY} and PAGERDUTY_KEY not in repr(spec)
    assert spec.rule_policies["payments"].name == "Critical paging"


def test_an_unset_variable_is_an_error_at_its_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PD_KEY", raising=False)
    path = tmp_path / "pulser.yml"
    path.write_text(PAGING)
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err.startswith(
        f"{path}:5: outbound_channels[0].settings.routing_key: the environment variable PD_KEY is not set"
    )


def test_a_secret_written_in_the_file_passes_with_a_warning_that_does_not_repeat_it(tmp_path, capsys):
    path = tmp_path / "pulser.yml"
    path.write_text(PAGING.replace("${PD_KEY}", PAGERDUTY_KEY))
    assert main(["config", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}:5: outbound_channels[0].settings.routing_key: warning: a secret written in the file" in err
    assert "Write ${ENV_VAR}" in err and PAGERDUTY_KEY not in err


def test_double_dollar_is_a_literal_dollar_and_a_reference_may_sit_inside_text():
    value, problems = interpolate({"a": "Bearer ${TOKEN}", "b": ["cost $$5", "$${NOT_A_VARIABLE}", "a$b"]}, {"TOKEN": "t"})
    assert value == {"a": "Bearer t", "b": ["cost $5", "${NOT_A_VARIABLE}", "a$b"]} and problems == []


def test_a_rule_naming_an_unknown_policy_is_an_error_at_its_line():
    text = PAGING.replace("escalation_policy: Critical paging", "escalation_policy: Critical")
    [(line, path, message)] = errors_of(text, env={"PD_KEY": PAGERDUTY_KEY}, known=KnownNames(policies=frozenset({"Made in Slack"})))
    assert (line, path) == (20, "routing_rules[0].escalation_policy")
    assert message == ("no escalation policy is called 'Critical': define it under escalation_policies, or name one "
                       "Pulser has (known: Critical paging, Made in Slack)")


def test_names_pulser_may_have_are_warnings_when_checked_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PD_KEY", PAGERDUTY_KEY)
    path = tmp_path / "pulser.yml"
    path.write_text(PAGING.replace("escalation_policy: Critical paging", "escalation_policy: Made in Slack")
                    .replace("target: Primary", "target: Secondary"))
    assert main(["config", "check", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}:14: escalation_policies[0].steps[0].target: warning: no schedule called 'Secondary' in this file: "
        "applying it needs one of that name made in Slack or the API",
        f"{path}:20: routing_rules[0].escalation_policy: warning: no escalation policy called 'Made in Slack' in this "
        "file: applying it needs one of that name made in Slack or the API",
    ]


def test_names_pulser_has_are_accepted_when_known():
    spec = check_text(PAGING.replace("channel: pagerduty", "channel: made-in-slack"), env={"PD_KEY": PAGERDUTY_KEY},
                      known=KnownNames(channels=frozenset({"made-in-slack"})))
    assert spec.warnings == [] and spec.policies[0].steps[2]["channel_name"] == "made-in-slack"


def test_a_step_names_its_channel_rather_than_numbering_it():
    [(line, path, message)] = errors_of(PAGING.replace("channel: pagerduty", "channel: 3"), env={"PD_KEY": PAGERDUTY_KEY})
    assert (line, path) == (16, "escalation_policies[0].steps[2].channel") and "an outbound channel's name" in message


def test_the_apis_policy_id_is_not_a_key_of_the_file():
    [(line, path, message)] = errors_of(
        PAGING.replace("escalation_policy: Critical paging", "escalation_policy_id: 3"), env={"PD_KEY": PAGERDUTY_KEY}
    )
    assert (line, path) == (20, "routing_rules[0].escalation_policy_id") and message.endswith("group_by, escalation_policy")


def test_schedule_errors_point_into_their_layer():
    found = errors_of(PAGING.replace("shift: 1 week", "shift: 1 fortnight").replace("Europe/Berlin", "Europe/Atlantis"),
                      env={"PD_KEY": PAGERDUTY_KEY})
    assert [(line, path) for line, path, _ in found] == [
        (8, "schedules[0].time_zone"), (10, "schedules[0].layers[0].shift"),
    ]


def test_an_unquoted_hand_off_time_is_a_time_not_a_number():
    spec = check_text(PAGING, env={"PD_KEY": PAGERDUTY_KEY})
    assert spec.schedules[0].layers[0].rotation.handoff.isoformat() == "10:30:00"  # YAML 1.1 alone reads 630


def test_export_names_each_secret_after_its_channel_and_field():
    channels = [
        {"name": "ops-mail", "kind": "email", "settings": {"password": "p"}},
        {"name": "ops mail", "kind": "email", "settings": {"password": "q"}},
        {"name": "hook", "kind": "webhook", "settings": {"url": "https://x.example", "signing_secret": None}},
    ]
    assert secret_variables(channels) == {
        ("ops-mail", "password"): "PULSER_OPS_MAIL_PASSWORD", ("ops mail", "password"): "PULSER_OPS_MAIL_PASSWORD_2",
        ("hook", "url"): "PULSER_HOOK_URL",
    }


# --- the published schema and sample -----------------------------------------------------------------


def test_the_committed_schema_is_what_the_code_generates():
    assert (DOCS / "pulser.schema.json").read_text(encoding="utf-8") == json_schema_text(), (
        "regenerate it: pulser config schema -o docs/pulser.schema.json"
    )


SAMPLE_SECRETS = {
    "PULSER_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/sample",
    "PULSER_GITHUB_TOKEN": "ghp_sample",
    "PULSER_SMS_AUTH_TOKEN": "sample",
    "PULSER_PAGERDUTY_ROUTING_KEY": PAGERDUTY_KEY,
}


def test_the_sample_file_passes_the_check(capsys, monkeypatch):
    for name, value in SAMPLE_SECRETS.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check", str(DOCS / "pulser.example.yml")]) == 0
    out, err = capsys.readouterr()
    assert (
        "3 routing rule(s), 1 silence(s), 1 inhibition rule(s), 2 event route(s), 2 deploy service(s), "
        "4 outbound channel(s), 1 schedule(s), 1 escalation policy(ies)"
    ) in out
    assert err == ""  # no secret in the sample, no name it does not define


def test_the_sample_names_the_variables_it_needs_in_its_header():
    header = (DOCS / "pulser.example.yml").read_text(encoding="utf-8").split("version: 1")[0]
    assert all(name in header for name in SAMPLE_SECRETS)


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
