"""Routing rules, pure: which rules match an alert, the routes that follow, validation and wording."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts.normalized import NormalizedAlert
from alerts.routing import (
    FIELDS,
    Route,
    RoutingRule,
    RuleValidationError,
    describe_actions,
    describe_conditions,
    matches,
    route,
    validate_rule,
)

DEFAULT = "#ops-alerts"


def alert(env="production", severity="high", service="api", source="sentry", tags=None) -> NormalizedAlert:
    return NormalizedAlert(
        source=source,
        source_event_id="1",
        service=service,
        env=env,
        severity=severity,
        fingerprint="boom",
        title="Boom",
        description="",
        occurred_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        tags=tags or {},
    )


def rule(rule_id=1, position=None, **data) -> RoutingRule:
    spec = validate_rule({"name": f"rule {rule_id}", "channel": "#api-alerts", **data})
    return RoutingRule(id=rule_id, position=position or rule_id, **spec.as_row())


def channels(routes: list[Route]) -> list[str]:
    return [r.channel for r in routes]


# --- matching ------------------------------------------------------------------------------------


def test_a_rule_with_three_conditions_routes_prod_high_api_alerts_to_its_channel_and_the_rest_to_the_default():
    rules = [rule(envs="prod", min_severity="high", services="api", channel="#api-alerts")]
    assert channels(route(rules, alert("production", "high", "api"), "high", DEFAULT)) == ["#api-alerts"]
    assert channels(route(rules, alert("production", "critical", "api"), "critical", DEFAULT)) == ["#api-alerts"]
    assert channels(route(rules, alert("staging", "high", "api"), "high", DEFAULT)) == [DEFAULT]
    assert channels(route(rules, alert("production", "medium", "api"), "medium", DEFAULT)) == [DEFAULT]
    assert channels(route(rules, alert("production", "high", "billing"), "high", DEFAULT)) == [DEFAULT]


def test_a_rule_without_conditions_matches_every_alert():
    assert matches(rule(), alert(env="", severity="info", service="x", source="generic"), "info")


def test_the_effective_severity_decides_not_the_alerts_own():
    high_only = rule(min_severity="high")
    assert matches(high_only, alert(severity="medium"), "high"), "a spike bumped the incident to high"
    assert not matches(high_only, alert(severity="high"), "medium")


def test_sources_must_contain_the_alerts_source():
    github_only = rule(sources=["github"])
    assert matches(github_only, alert(source="github"), "high")
    assert not matches(github_only, alert(source="sentry"), "high")


def test_every_tag_must_be_present_with_its_value():
    payments_eu = rule(tags="team=payments, region=eu")
    assert matches(payments_eu, alert(tags={"team": "payments", "region": "eu", "pod": "a"}), "high")
    assert not matches(payments_eu, alert(tags={"team": "payments"}), "high")
    assert not matches(payments_eu, alert(tags={"team": "payments", "region": "us"}), "high")


# --- routes --------------------------------------------------------------------------------------


def test_no_matching_rule_gives_the_default_route_with_nothing_else():
    (only,) = route([rule(envs="staging")], alert(), "high", DEFAULT)
    assert only == Route(rule_id=None, channel=DEFAULT, mention=None)
    assert (only.escalation_levels, only.runbook_url, only.auto_close_minutes) == (0, None, None)


def test_the_first_matching_rule_wins():
    rules = [rule(1, channel="#first"), rule(2, channel="#second")]
    assert channels(route(rules, alert(), "high", DEFAULT)) == ["#first"]


def test_rules_are_walked_by_position_not_by_list_order():
    rules = [rule(1, position=2, channel="#second"), rule(2, position=1, channel="#first")]
    assert channels(route(rules, alert(), "high", DEFAULT)) == ["#first"]


def test_continue_matching_lets_later_rules_add_their_channels():
    rules = [
        rule(1, channel="#everything", continue_matching=True),
        rule(2, services="billing", channel="#billing"),
        rule(3, services="api", channel="#api"),
        rule(4, channel="#never"),
    ]
    assert channels(route(rules, alert(service="api"), "high", DEFAULT)) == ["#everything", "#api"]


def test_a_continuing_rule_that_matched_alone_still_replaces_the_default():
    rules = [rule(1, channel="#everything", continue_matching=True), rule(2, services="billing", channel="#billing")]
    assert channels(route(rules, alert(service="api"), "high", DEFAULT)) == ["#everything"]


def test_two_matching_rules_for_one_channel_give_one_route_the_first():
    rules = [rule(1, channel="#api", mention="@here", continue_matching=True), rule(2, channel="#api", mention="@channel")]
    (only,) = route(rules, alert(), "high", DEFAULT)
    assert (only.rule_id, only.mention) == (1, "@here")


def test_a_route_carries_the_rules_mention_escalation_runbook_and_auto_close():
    escalating = rule(
        7, channel="C0API", mention="S0ONCALL", mention_min_severity="critical", escalate_after_minutes=15,
        escalate_to="U0LEAD", escalation_levels=2, runbook_url="https://wiki.example.com/api", auto_close_minutes=60,
    )
    assert route([escalating], alert(), "high", DEFAULT) == [
        Route(
            rule_id=7, channel="C0API", mention="S0ONCALL", mention_min_severity="critical",
            runbook_url="https://wiki.example.com/api", escalate_after_minutes=15, escalate_to="U0LEAD",
            escalation_levels=2, auto_close_minutes=60,
        )
    ]


def test_a_rule_without_escalation_gives_zero_escalation_levels():
    (only,) = route([rule()], alert(), "high", DEFAULT)
    assert (only.escalate_after_minutes, only.escalate_to, only.escalation_levels) == (None, None, 0)


# --- validation ----------------------------------------------------------------------------------


def test_lists_may_be_comma_separated_text_and_envs_are_normalized():
    spec = validate_rule({"name": " API ", "channel": "#api", "envs": "prod, Staging,,prod", "services": "api , web",
                          "sources": "Sentry,github"})
    assert (spec.name, spec.envs, spec.services, spec.sources) == ("API", ("production", "staging"), ("api", "web"), ("sentry", "github"))


def test_tags_may_be_text_or_an_object():
    assert validate_rule({"name": "t", "channel": "#a", "tags": "team=payments, region = eu"}).tags == {"team": "payments", "region": "eu"}
    assert validate_rule({"name": "t", "channel": "#a", "tags": {"team": "payments"}}).tags == {"team": "payments"}


def test_empty_text_means_not_set():
    spec = validate_rule({f: "" for f in FIELDS} | {"name": "all", "channel": "C0OPS"})
    assert spec.as_row() == {
        "name": "all", "envs": [], "min_severity": None, "services": [], "sources": [], "tags": {},
        "continue_matching": False, "channel": "C0OPS", "mention": None, "mention_min_severity": "high",
        "escalate_after_minutes": None, "escalate_to": None, "escalation_levels": 1, "runbook_url": None,
        "auto_close_minutes": None, "storm_threshold": None, "group_by": [], "escalation_policy_id": None,
    }


def test_mentions_pasted_from_slack_become_ids():
    assert validate_rule({"name": "m", "channel": "#a", "mention": "<@U0ALICE|alice>"}).mention == "U0ALICE"
    assert validate_rule({"name": "m", "channel": "#a", "mention": "<!subteam^S0OPS|@ops>"}).mention == "S0OPS"
    assert validate_rule({"name": "m", "channel": "#a", "mention": "<!here>"}).mention == "@here"


def test_minutes_may_be_written_with_units():
    spec = validate_rule({"name": "m", "channel": "#a", "escalate_after_minutes": "2h", "escalate_to": "U0A",
                          "auto_close_minutes": "1d"})
    assert (spec.escalate_after_minutes, spec.auto_close_minutes) == (120, 1440)


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("name", "x" * 81),
        ("channel", "api alerts"),
        ("channel", None),
        ("sources", "sentry, pagerduty"),
        ("min_severity", "urgent"),
        ("mention_min_severity", "any"),
        ("mention", "alice"),
        ("escalate_to", "@here"),
        ("escalate_after_minutes", 0),
        ("escalate_after_minutes", 10081),
        ("escalation_levels", 11),
        ("auto_close_minutes", 43201),
        ("runbook_url", "ftp://wiki/runbook"),
        ("tags", "team"),
        ("continue_matching", "yes"),
        ("envs", ["prod", 3]),
        ("services", ["api,web"]),
        ("tags", {"team": "a,b"}),
        ("colour", "red"),
    ],
)
def test_a_bad_value_is_named_by_its_field(field, value):
    data = {"name": "r", "channel": "#a", "escalate_to": "U0A", "escalate_after_minutes": 5, field: value}
    with pytest.raises(RuleValidationError) as caught:
        validate_rule(data)
    assert set(caught.value.errors) == {field}


def test_escalation_needs_both_a_delay_and_a_target():
    with pytest.raises(RuleValidationError) as caught:
        validate_rule({"name": "r", "channel": "#a", "escalate_after_minutes": 15})
    assert set(caught.value.errors) == {"escalate_to"}
    with pytest.raises(RuleValidationError) as caught:
        validate_rule({"name": "r", "channel": "#a", "escalate_to": "U0A"})
    assert set(caught.value.errors) == {"escalate_after_minutes"}


def test_every_bad_field_is_named_at_once():
    with pytest.raises(RuleValidationError) as caught:
        validate_rule({"name": "", "channel": "nope", "sources": "pagerduty"})
    assert set(caught.value.errors) == {"name", "channel", "sources"}


# --- wording -------------------------------------------------------------------------------------


def test_conditions_read_as_one_line():
    described = rule(envs="prod", min_severity="high", services="api", sources="sentry", tags="team=payments")
    assert describe_conditions(described) == (
        "env in production · severity ≥ high · service in api · source in sentry · tags team=payments"
    )
    assert describe_conditions(rule()) == "every alert"


def test_actions_read_as_one_line():
    described = rule(channel="#api-alerts", mention="@here", escalate_to="U1AB", escalate_after_minutes=15,
                     escalation_levels=2, runbook_url="https://wiki.example.com/api")
    assert describe_actions(described) == "→ #api-alerts, @here for high+, escalate to <@U1AB> after 15 min ×2, runbook"


def test_actions_mention_auto_close_and_continue():
    described = rule(channel="C0API", mention="S0OPS", mention_min_severity="info", auto_close_minutes=120,
                     continue_matching=True)
    assert describe_actions(described) == (
        "→ <#C0API>, <!subteam^S0OPS> on every alert, auto-close after 2 h quiet, then keep matching"
    )


def test_user_text_in_descriptions_cannot_ping_anyone():
    assert describe_conditions(rule(services="<!channel>")) == "service in &lt;!channel&gt;"
