"""Label matchers, durations, the `/pulser silence` arguments, silences and inhibition rules — the
pure part (alerts.matchers), with Alertmanager's semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.applications import ValidationError
from alerts.matchers import (
    DurationError,
    Matcher,
    MatcherError,
    active_silence,
    alert_labels,
    inhibition_lookup,
    inhibits,
    matchers_from_json,
    matches_all,
    parse_duration,
    parse_matcher,
    parse_silence_args,
    validate_inhibition_rule,
    validate_silence,
)
from alerts.normalized import NormalizedAlert

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
LABELS = {"alertname": "DiskFull", "env": "production", "service": "api", "severity": "high"}


def alert(**overrides) -> NormalizedAlert:
    fields = dict(
        source="alertmanager", source_event_id="e1", service="api", env="production", severity="high",
        fingerprint="fp1", title="Disk full", description="", occurred_at=NOW,
        tags={"alertname": "DiskFull", "team": "infra"},
    )
    fields.update(overrides)
    return NormalizedAlert(**fields)


# --- one matcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, matcher",
    [
        ("env=staging", Matcher("env", "=", "staging")),
        ("service!=api", Matcher("service", "!=", "api")),
        ('alertname=~"Disk.*"', Matcher("alertname", "=~", "Disk.*")),
        ("team!~'db|infra'", Matcher("team", "!~", "db|infra")),
        ('alertname="Disk full"', Matcher("alertname", "=", "Disk full")),
        ("sentry.level=error", Matcher("sentry.level", "=", "error")),
        ('msg="say \\"hi\\""', Matcher("msg", "=", 'say "hi"')),
        ("env=", Matcher("env", "=", "")),
    ],
)
def test_parse_matcher_reads_every_operator_with_or_without_quotes(text, matcher):
    assert parse_matcher(text) == matcher


def test_a_matcher_prints_alertmanager_style_and_reads_back_the_same():
    for matcher in (Matcher("env", "=", "staging"), Matcher("msg", "!~", 'a "quoted" \\d+ value')):
        assert parse_matcher(str(matcher)) == matcher
    assert str(Matcher("env", "=", "staging")) == 'env="staging"'


def test_a_backslash_in_a_quoted_regex_is_kept_for_the_regex():
    assert parse_matcher(r'pod=~"web-\d+"').matches({"pod": "web-12"})


@pytest.mark.parametrize(
    "text, says",
    [
        ("envstaging", "label=value"),
        ("1env=x", "not a valid label name"),
        ("env==staging", "single ="),
        ('alertname=~"Disk(.*"', "not a valid regular expression"),
        ('alertname="Disk full', "unclosed quote"),
        ('env=sta"ging', "quotes"),
        ("env~=staging", "not a valid label name"),
    ],
)
def test_a_bad_matcher_says_what_to_fix(text, says):
    with pytest.raises(MatcherError, match=says):
        parse_matcher(text)


def test_equality_and_inequality_compare_whole_values():
    assert Matcher("env", "=", "production").matches(LABELS)
    assert not Matcher("env", "=", "prod").matches(LABELS)
    assert Matcher("env", "!=", "staging").matches(LABELS)


def test_regexes_are_anchored_at_both_ends():
    assert Matcher("alertname", "=~", "Disk.*").matches(LABELS)
    assert not Matcher("alertname", "=~", "Disk").matches(LABELS), "a prefix is not a match"
    assert not Matcher("alertname", "=~", "Full").matches(LABELS), "neither is a substring"
    assert Matcher("alertname", "!~", "Disk").matches(LABELS)


def test_a_missing_label_counts_as_empty():
    assert Matcher("team", "=", "").matches(LABELS)
    assert Matcher("team", "!=", "infra").matches(LABELS)
    assert Matcher("team", "=~", "infra|").matches(LABELS)
    assert not Matcher("team", "=~", "infra").matches(LABELS)


def test_matches_all_needs_every_matcher():
    assert matches_all([Matcher("env", "=", "production"), Matcher("service", "=", "api")], LABELS)
    assert not matches_all([Matcher("env", "=", "production"), Matcher("service", "=", "web")], LABELS)


# --- matchers from the API ------------------------------------------------------------------------


def test_matchers_from_json_take_a_list_of_objects():
    data = [{"name": "env", "op": "=", "value": "staging"}, {"name": "alertname", "op": "=~", "value": "Disk.*"}]
    assert matchers_from_json(data) == [Matcher("env", "=", "staging"), Matcher("alertname", "=~", "Disk.*")]
    assert [m.to_json() for m in matchers_from_json(data)] == data


def test_matchers_from_json_take_an_object_as_equality():
    assert matchers_from_json({"env": "staging", "service": "api"}) == [
        Matcher("env", "=", "staging"), Matcher("service", "=", "api"),
    ]


def test_matchers_from_json_take_matcher_strings_too():
    assert matchers_from_json(["env=staging", 'alertname=~"Disk.*"']) == [
        Matcher("env", "=", "staging"), Matcher("alertname", "=~", "Disk.*"),
    ]


@pytest.mark.parametrize(
    "data, says",
    [
        ([], "at least one"),
        ({}, "at least one"),
        (None, "must be a list"),
        ("env=staging", "must be a list"),
        ([{"name": "env"}], "needs"),
        ([{"name": "env", "op": "==", "value": "x"}], r"\[0\]: `==` is not an operator"),
        ([{"name": "env", "op": "=", "value": 5}], "must be a string"),
        ([{"name": "env", "op": "=", "value": "x", "regex": True}], "unknown key"),
        ({"env": ["staging"]}, "env: the value for `env` must be a string"),
        ([{"name": "env", "value": "x"}] * 21, "too many"),
    ],
)
def test_bad_matcher_json_is_refused_with_where_and_why(data, says):
    with pytest.raises(MatcherError, match=says):
        matchers_from_json(data)


def test_from_json_defaults_the_operator_to_equality():
    assert Matcher.from_json({"name": "env", "value": "staging"}) == Matcher("env", "=", "staging")


# --- labels of an alert ---------------------------------------------------------------------------


def test_alert_labels_are_the_tags_plus_the_fixed_keys():
    assert alert_labels(alert()) == {
        "alertname": "DiskFull", "team": "infra",
        "source": "alertmanager", "service": "api", "env": "production", "severity": "high", "fingerprint": "fp1",
    }


def test_the_incidents_severity_overrides_the_alerts():
    assert alert_labels(alert(), severity="critical")["severity"] == "critical"


def test_fixed_keys_win_over_tags_of_the_same_name():
    labels = alert_labels(alert(tags={"env": "from-a-tag", "service": "from-a-tag", "team": "infra"}))
    assert (labels["env"], labels["service"], labels["team"]) == ("production", "api", "infra")


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, duration",
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90d", timedelta(days=90)),
    ],
)
def test_parse_duration_reads_units_and_combinations(text, duration):
    assert parse_duration(text) == duration


@pytest.mark.parametrize(
    "text, says",
    [
        ("59s", "at least 1 minute"),
        ("91d", "at most 90 days"),
        ("2", "not a duration"),
        ("two hours", "not a duration"),
        ("30m1h", "largest unit first"),
        ("1h1h", "not a duration"),
        ("", "not a duration"),
    ],
)
def test_a_bad_duration_says_what_is_allowed(text, says):
    with pytest.raises(DurationError, match=says):
        parse_duration(text)


# --- the Slack command's arguments ----------------------------------------------------------------


def test_silence_args_are_matchers_then_a_duration_then_a_comment():
    request = parse_silence_args("env=staging service=api 2h maintenance window")
    assert request.matchers == [Matcher("env", "=", "staging"), Matcher("service", "=", "api")]
    assert request.duration == timedelta(hours=2)
    assert request.comment == "maintenance window"


def test_the_comment_is_optional_and_kept_as_typed():
    assert parse_silence_args("env=staging 30m").comment == ""
    assert parse_silence_args("env=staging 30m don't page: db  upgrade").comment == "don't page: db  upgrade"


def test_a_quoted_matcher_value_may_hold_spaces():
    request = parse_silence_args('alertname="Disk full" env=~"stag.*" 1h')
    assert request.matchers == [Matcher("alertname", "=", "Disk full"), Matcher("env", "=~", "stag.*")]


@pytest.mark.parametrize(
    "args, error, says",
    [
        ("", MatcherError, "say what to silence"),
        ("2h", MatcherError, "say what to silence before how long"),
        ("env=staging", DurationError, "say how long"),
        ("env=staging maintenance 2h", MatcherError, "`maintenance` is neither a matcher"),
        ("1env=staging 2h", MatcherError, "`1env` is not a valid label name"),
        ("env=staging 100d", DurationError, "`100d` is too long"),
        ("env=staging 2", DurationError, "`2` is not a duration"),
        ("service!=api 2h", MatcherError, "almost everything"),
    ],
)
def test_bad_silence_args_name_the_word_to_fix(args, error, says):
    with pytest.raises(error, match=says):
        parse_silence_args(args)


@pytest.mark.parametrize("args", ["", "env=staging", "env=staging maintenance 2h", "env==staging 2h"])
def test_a_silence_args_error_shows_an_example(args):
    with pytest.raises(ValueError, match="env=staging service=api 2h maintenance window"):
        parse_silence_args(args)


# --- silences -------------------------------------------------------------------------------------


def silence(id: int = 1, matchers=None, starts=-60, ends=60, expired_by=None) -> dict:
    """A silence row as storage returns it; starts/ends in minutes from NOW."""
    return {
        "id": id,
        "matchers": matchers or [{"name": "env", "op": "=", "value": "production"}],
        "comment": "",
        "created_by": "U0ADA",
        "starts_at": NOW + timedelta(minutes=starts),
        "ends_at": NOW + timedelta(minutes=ends),
        "expired_by": expired_by,
        "created_at": NOW,
    }


def test_an_active_silence_whose_matchers_all_match_is_found():
    found = active_silence([silence(1, [{"name": "env", "op": "=", "value": "staging"}]), silence(2)], LABELS, NOW)
    assert found["id"] == 2


def test_a_silence_needs_every_matcher_to_match():
    both = [{"name": "env", "op": "=", "value": "production"}, {"name": "service", "op": "=", "value": "web"}]
    assert active_silence([silence(matchers=both)], LABELS, NOW) is None


def test_the_first_matching_silence_wins():
    assert active_silence([silence(7), silence(8)], LABELS, NOW)["id"] == 7


def test_a_silence_only_mutes_inside_its_window():
    assert active_silence([silence(starts=10, ends=60)], LABELS, NOW) is None, "not started yet"
    assert active_silence([silence(starts=-60, ends=0)], LABELS, NOW) is None, "ends_at is exclusive"
    assert active_silence([silence(starts=0, ends=60)], LABELS, NOW) is not None, "starts_at is inclusive"


def test_an_expired_silence_mutes_nothing():
    assert active_silence([silence(expired_by="U0ADA")], LABELS, NOW) is None


# --- inhibition rules -----------------------------------------------------------------------------


def rule(source=None, target=None, equal=("service",)) -> dict:
    return {
        "id": 1,
        "name": "critical mutes warnings",
        "source_matchers": source or [{"name": "severity", "op": "=", "value": "critical"}],
        "target_matchers": target or [{"name": "severity", "op": "=~", "value": "low|medium|high"}],
        "equal": list(equal),
    }


def test_a_lookup_gives_the_source_equalities_and_the_equal_labels_of_the_target():
    assert inhibition_lookup(rule(equal=("service", "env")), LABELS) == {
        "severity": "critical", "service": "api", "env": "production",
    }


def test_a_lookup_is_none_when_the_target_matchers_do_not_match():
    assert inhibition_lookup(rule(), {**LABELS, "severity": "critical"}) is None


def test_a_lookup_leaves_regex_source_matchers_to_the_full_check():
    regex_source = [{"name": "alertname", "op": "=~", "value": "Node.*"}]
    assert inhibition_lookup(rule(source=regex_source), LABELS) == {"service": "api"}


def test_a_lookup_leaves_out_labels_that_must_be_empty():
    assert inhibition_lookup(rule(equal=("service", "cluster")), LABELS) == {"severity": "critical", "service": "api"}


def test_a_lookup_is_none_when_a_source_matcher_and_an_equal_label_disagree():
    source = [{"name": "env", "op": "=", "value": "staging"}]
    assert inhibition_lookup(rule(source=source, equal=("env",)), LABELS) is None


def test_a_firing_source_with_the_same_equal_labels_inhibits_the_target():
    source_labels = {**LABELS, "alertname": "ServiceDown", "severity": "critical"}
    assert inhibits(rule(), source_labels, LABELS)


def test_a_source_with_a_different_equal_label_does_not_inhibit():
    source_labels = {**LABELS, "severity": "critical", "service": "web"}
    assert not inhibits(rule(), source_labels, LABELS)


def test_the_full_check_applies_regex_source_matchers():
    regex_rule = rule(source=[{"name": "alertname", "op": "=~", "value": "Node.*"}])
    assert inhibits(regex_rule, {**LABELS, "alertname": "NodeDown"}, LABELS)
    assert not inhibits(regex_rule, {**LABELS, "alertname": "MyNodeDown"}, LABELS)


def test_equal_labels_missing_on_both_sides_count_as_equal():
    assert inhibits(rule(equal=("cluster",)), {**LABELS, "severity": "critical"}, LABELS)


# --- API bodies ----------------------------------------------------------------------------------


def test_a_silence_body_with_a_duration_starts_now():
    spec = validate_silence({"matchers": {"env": "staging"}, "duration": "2h", "comment": " deploy "}, now=NOW)
    assert (spec.starts_at, spec.ends_at, spec.comment, spec.created_by) == (NOW, NOW + timedelta(hours=2), "deploy", "api")


def test_a_silence_body_may_give_a_window_and_a_start_in_the_past_means_now():
    spec = validate_silence(
        {"matchers": {"env": "staging"}, "starts_at": "2024-05-01T11:00:00Z", "ends_at": "2024-05-01T13:00:00+00:00"},
        now=NOW,
    )
    assert (spec.starts_at, spec.ends_at) == (NOW, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"duration": "2h"}, {"matchers"}),
        ({"matchers": {"env": "x"}}, {"duration"}),
        ({"matchers": {"env": "x"}, "duration": "2h", "ends_at": "2024-05-01T13:00:00Z"}, {"ends_at"}),
        ({"matchers": {"env": "x"}, "ends_at": "2024-05-01T11:00:00Z"}, {"ends_at"}),
        ({"matchers": {"env": "x"}, "ends_at": "2024-05-01T13:00:00"}, {"ends_at"}),
        ({"matchers": {"env": "x"}, "duration": 7200}, {"duration"}),
        ({"matchers": {"env": "x"}, "duration": "2h", "starts_at": "soon"}, {"starts_at"}),
        ({"matchers": {"env": "x"}, "duration": "2h", "comment": "x" * 501}, {"comment"}),
        ({"matchers": {"env": "x"}, "duration": "2h", "silence": True}, {"silence"}),
        ({"matchers": [{"name": "env", "op": "!=", "value": "x"}], "duration": "2h"}, {"matchers"}),
    ],
)
def test_a_bad_silence_body_names_the_field(body, fields):
    with pytest.raises(ValidationError) as raised:
        validate_silence(body, now=NOW)
    assert set(raised.value.errors) == fields


def test_an_inhibition_rule_body_is_validated_field_by_field():
    spec = validate_inhibition_rule(
        {"name": " crit ", "source_matchers": {"severity": "critical"}, "target_matchers": ["severity!=critical"],
         "equal": ["service", "env", "service"]}
    )
    assert (spec.name, spec.equal) == ("crit", ["service", "env"])
    with pytest.raises(ValidationError) as raised:
        validate_inhibition_rule({"name": "", "source_matchers": [], "equal": ["bad name"]})
    assert set(raised.value.errors) == {"name", "source_matchers", "target_matchers", "equal"}
