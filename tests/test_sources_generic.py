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
     ("status", "open", "status must be one of firing, resolved"), ("link", "ftp://x", "link must be an http"),
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
