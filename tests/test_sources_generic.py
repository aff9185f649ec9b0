"""Generic JSON alerts: the documented schema, strict validation, token protection, idempotency."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts.normalized import group_key
from alerts.sources import generic
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError
from tests.fixtures import fixture_bytes, load_fixture

TOKEN = "pulser-webhook-token"
RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def parse_fixture(name: str):
    return generic.parse({}, load_fixture("generic", name), received_at=RECEIVED)


# --- parsing the documented examples ---------------------------------------------------------------------


def test_full_example_maps_every_field():
    [alert] = parse_fixture("full.json")
    assert alert.source == "generic"
    assert alert.title == "Nightly backup failed"
    assert alert.service == "billing-db"
    assert alert.env == "production"  # "prod" normalized
    assert alert.severity == "high"
    assert alert.status == "firing"
    assert alert.fingerprint == "backup:billing-db"
    assert alert.description == "pg_dump exited with code 1"
    assert alert.link == "https://ci.example.com/job/42"
    assert alert.tags == {"team": "payments", "region": "eu-west-1"}
    assert alert.occurred_at == datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # +01:00 → UTC
    assert alert.source_event_id == "backup-2026-11-23"


def test_minimal_example_gets_the_documented_defaults():
    [alert] = parse_fixture("minimal.json")
    assert (alert.service, alert.env, alert.severity, alert.status) == ("", "", "medium", "firing")
    assert alert.link is None
    assert alert.tags == {}
    assert alert.occurred_at == RECEIVED


def test_default_fingerprint_is_stable_for_the_same_service_and_title():
    first = generic.parse({}, {"title": "Disk full", "service": "api", "description": "97%"})[0]
    repeat = generic.parse({}, {"title": "Disk full", "service": "api", "description": "99%"})[0]
    other_service = generic.parse({}, {"title": "Disk full", "service": "web"})[0]
    assert first.fingerprint == repeat.fingerprint
    assert group_key(first) == group_key(repeat)
    assert first.fingerprint != other_service.fingerprint


def test_resolved_example_resolves_the_full_examples_group():
    [firing] = parse_fixture("full.json")
    [resolved] = parse_fixture("resolved.json")
    assert resolved.status == "resolved"
    assert group_key(resolved) == group_key(firing)


# --- strict validation -----------------------------------------------------------------------------------


def test_unknown_severity_is_refused_naming_the_field():
    with pytest.raises(PayloadError, match="severity must be one of info, low, medium, high, critical"):
        parse_fixture("bad-severity.json")


def test_non_string_tag_value_is_refused_naming_the_tag():
    with pytest.raises(PayloadError, match=r"tags\.disk_pct must be a string, got number"):
        parse_fixture("bad-tags-not-strings.json")


def test_unknown_field_is_refused_naming_it():
    with pytest.raises(PayloadError, match="unknown field.*sevrity"):
        parse_fixture("bad-unknown-field.json")


def test_missing_title_is_refused():
    with pytest.raises(PayloadError, match="title is required"):
        parse_fixture("bad-missing-title.json")


@pytest.mark.parametrize(
    "field, value, message",
    [("title", 42, "title must be a string, got number"), ("service", ["api"], "service must be a string"),
     ("status", "open", "status must be one of firing, resolved"), ("link", 42, "link must be a string"),
     ("severity_is_current", "yes", "severity_is_current must be true or false, got string"),
     ("fingerprint", "f" * 201, "fingerprint is longer than 200 characters"),
     ("occurred_at", "2026-11-23T02:00:00", "occurred_at must include a UTC offset"),
     ("occurred_at", "tomorrow", "occurred_at is not an ISO 8601"), ("tags", ["a"], "tags must be an object")],
)  # fmt: skip
def test_wrong_types_are_refused_naming_the_field(field, value, message):
    payload = {"title": "Disk full", field: value}
    with pytest.raises(PayloadError, match=message):
        generic.parse({}, payload)


def test_blank_title_is_refused():
    with pytest.raises(PayloadError, match="title must not be blank"):
        generic.parse({}, {"title": "   "})


def test_body_that_is_not_json_is_refused():
    with pytest.raises(PayloadError, match="not valid JSON"):
        generic.decode({}, b"title=Disk full")


# --- liberal about values: accepted, and the 202 says what was lost -----------------------------------------


def test_a_link_over_3000_characters_is_left_out_and_a_warning_names_the_field_and_the_limit():
    payload = {"title": "Disk full", "link": "https://ci.example.com/job/42?q=" + "x" * 3000}
    [alert] = generic.parse({}, payload)
    assert alert.link is None
    [warning] = generic.warnings({}, payload)
    assert warning.startswith("link is longer than 3,000 characters") and "accepted without it" in warning


def test_a_link_of_exactly_3000_characters_is_kept_without_a_warning():
    link = "https://ci.example.com/job/42?q=" + "x" * (3000 - len("https://ci.example.com/job/42?q="))
    assert generic.parse({}, {"title": "Disk full", "link": link})[0].link == link
    assert generic.warnings({}, {"title": "Disk full", "link": link}) == []


def test_a_link_that_is_not_http_is_left_out_with_a_warning_instead_of_refusing_the_alert():
    payload = {"title": "Disk full", "link": "ftp://files.example.com/report"}
    assert generic.parse({}, payload)[0].link is None
    assert generic.warnings({}, payload) == [
        "link must be an http(s) URL, got 'ftp://files.example.com/report': the alert was accepted without it"
    ]


def test_whitespace_in_a_link_is_percent_encoded_so_slack_takes_it():
    [alert] = generic.parse({}, {"title": "Disk full", "link": " HTTPS://ci.example.com/job 42/log "})
    assert alert.link == "https://ci.example.com/job%2042/log"


def test_a_title_over_300_characters_is_cut_and_a_warning_says_so():
    payload = {"title": "T" * 301}
    assert generic.parse({}, payload)[0].title == "T" * 300
    assert generic.warnings({}, payload) == ["title is longer than 300 characters (301): it was cut to 300"]


def test_two_long_titles_that_differ_only_after_the_cut_stay_two_problems():
    first = generic.parse({}, {"title": "T" * 300 + "A"})[0]
    second = generic.parse({}, {"title": "T" * 300 + "B"})[0]
    assert first.fingerprint != second.fingerprint


def test_a_description_over_10000_characters_is_cut_and_a_warning_says_so():
    payload = {"title": "Disk full", "description": "d" * 10_001}
    assert len(generic.parse({}, payload)[0].description) == 10_000
    assert generic.warnings({}, payload) == ["description is longer than 10,000 characters (10,001): it was cut to 10,000"]


def test_a_tag_named_like_one_of_the_alerts_own_labels_is_warned_about():
    payload = {"title": "Disk full", "tags": {"env": "prod", "team": "payments"}}
    assert generic.warnings({}, payload) == [
        "tags.env is hidden by the alert's own env label, which silences and rules match; send it as the top-level env field"
    ]


def test_the_full_example_goes_through_whole_without_warnings():
    assert generic.warnings({}, load_fixture("generic", "full.json")) == []


def test_severity_is_current_is_false_unless_the_sender_says_so():
    assert not generic.parse({}, {"title": "Disk full"})[0].severity_is_current
    assert generic.parse({}, {"title": "Disk full", "severity_is_current": True})[0].severity_is_current


# --- token ---------------------------------------------------------------------------------------------------


def test_bearer_token_passes():
    generic.verify({"Authorization": f"Bearer {TOKEN}"}, fixture_bytes("generic", "minimal.json"), TOKEN)


def test_x_pulser_token_header_passes():
    generic.verify({"x-pulser-token": TOKEN}, fixture_bytes("generic", "minimal.json"), TOKEN)


def test_wrong_token_fails():
    with pytest.raises(SignatureError, match="wrong token"):
        generic.verify({"Authorization": "Bearer nope"}, b"{}", TOKEN)


def test_missing_token_fails():
    with pytest.raises(SignatureError, match="missing token"):
        generic.verify({}, b"{}", TOKEN)


def test_no_token_configured_refuses_and_names_the_variable():
    with pytest.raises(NotConfiguredError, match="PULSER_WEBHOOK_TOKEN is not set"):
        generic.verify({"Authorization": f"Bearer {TOKEN}"}, b"{}", "")


# --- idempotency -----------------------------------------------------------------------------------------


def test_idempotency_key_header_wins_and_is_stable():
    payload = load_fixture("generic", "full.json")
    first = generic.idempotency_key({"Idempotency-Key": "k-1"}, payload)
    assert first == generic.idempotency_key({"idempotency-key": "k-1"}, payload)
    assert first != generic.idempotency_key({"Idempotency-Key": "k-2"}, payload)


def test_event_id_is_the_key_without_a_header():
    full = generic.idempotency_key({}, load_fixture("generic", "full.json"))
    assert full == generic.idempotency_key({}, load_fixture("generic", "full.json"))
    assert full != generic.idempotency_key({}, load_fixture("generic", "resolved.json"))


def test_unkeyed_identical_bodies_count_as_separate_occurrences():
    payload = load_fixture("generic", "minimal.json")
    assert generic.idempotency_key({}, payload) != generic.idempotency_key({}, payload)
