"""Sentry: integration webhooks and the legacy plugin become NormalizedAlerts; forgeries are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from alerts.normalized import group_key
from alerts.sources import sentry
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError
from tests.fixtures import SENTRY_EXAMPLES, load_fixture

SECRET = "sentry-client-secret"
TOKEN = "pulser-webhook-token"


def sentry_body(payload: dict) -> bytes:
    """Exactly how Sentry serialises: compact separators, ASCII only (reference README)."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def signed_headers(body: bytes, resource: str, secret: str = SECRET, request_id: str = "a" * 32) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Request-ID": request_id,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": "1700000000",
        "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def parse_fixture(name: str, resource: str):
    return sentry.parse({"Sentry-Hook-Resource": resource}, load_fixture("sentry", name))


# --- parsing real samples ----------------------------------------------------------------------------


def test_issue_created_becomes_a_firing_high_alert_for_the_project():
    [alert] = parse_fixture("issue-created.json", "issue")
    assert alert.source == "sentry"
    assert alert.title == "ReferenceError: blooopy is not defined"
    assert alert.severity == "high"  # level error
    assert alert.status == "firing"
    assert alert.service == "front-end"
    assert alert.env == ""  # Sentry's issue object carries no environment
    assert alert.fingerprint == "issue:1170820242"
    assert alert.occurred_at == datetime(2019, 8, 19, 20, 58, 37, 391000, tzinfo=timezone.utc)
    assert alert.tags["sentry.short_id"] == "FRONT-END-9"


def test_issue_resolved_by_a_user_resolves():
    [alert] = parse_fixture("zulip-fixture-issue-resolved.json", "issue")
    assert alert.status == "resolved"
    assert alert.fingerprint == "issue:1638821441"
    assert alert.service == "zulip-integration-testing"
    assert alert.tags["sentry.resolution_type"] == "now"


def test_issue_without_urls_has_no_link():
    [alert] = parse_fixture("zulip-fixture-issue-created.json", "issue")
    assert alert.link is None
    assert alert.title == "Exception: Custom exception!"


def test_error_event_and_its_issue_share_one_group():
    [issue] = parse_fixture("issue-created.json", "issue")
    [error] = parse_fixture("error-created.json", "error")
    assert error.fingerprint == issue.fingerprint == "issue:1170820242"
    assert error.service == "front-end"  # slug read from the event's API URL
    assert group_key(error) == group_key(issue)


def test_event_alert_carries_event_details_tags_and_link():
    [alert] = parse_fixture("event-alert-triggered.json", "event_alert")
    assert alert.title == "ReferenceError: heck is not defined"
    assert alert.source_event_id == "e4874d664c3540c1a32eab185f12c5ab"
    assert alert.fingerprint == "issue:1117540176"
    assert alert.severity == "high"
    assert alert.link == (
        "https://sentry.io/organizations/test-org/issues/1117540176/events/e4874d664c3540c1a32eab185f12c5ab/"
    )
    assert alert.tags["browser"] == "Chrome 75.0.3770"  # Sentry's [key, value] list became a dict
    assert alert.tags["sentry.rule"] == "Very Important Alert Rule!"


def test_two_events_of_one_issue_have_the_same_fingerprint():
    first = load_fixture("sentry", "event-alert-triggered.json")
    second = load_fixture("sentry", "event-alert-triggered.json")
    second["data"]["event"]["event_id"] = "0" * 32
    second["data"]["event"]["datetime"] = "2019-08-19T22:00:00.000000Z"
    [a] = sentry.parse({"Sentry-Hook-Resource": "event_alert"}, first)
    [b] = sentry.parse({"Sentry-Hook-Resource": "event_alert"}, second)
    assert a.source_event_id != b.source_event_id
    assert a.fingerprint == b.fingerprint
    assert group_key(a) == group_key(b)


def test_event_environment_is_used_and_normalized():
    payload = load_fixture("sentry", "event-alert-triggered.json")
    payload["data"]["event"]["environment"] = "prod"
    [alert] = sentry.parse({"Sentry-Hook-Resource": "event_alert"}, payload)
    assert alert.env == "production"


def test_metric_alert_resolved_resolves_the_rule():
    [alert] = parse_fixture("metric-alert-resolved.json", "metric_alert")
    assert alert.status == "resolved"
    assert alert.title == "Too many errors"
    assert alert.fingerprint == "metric_alert_rule:7"
    assert alert.service == "bar"
    assert alert.link == "https://sentry.io/organizations/baz/alerts/1/"
    assert alert.description.startswith("Resolved: Too many errors")


def test_metric_alert_critical_fires_critical_with_the_same_fingerprint():
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    payload["action"] = "critical"
    [alert] = sentry.parse({"Sentry-Hook-Resource": "metric_alert"}, payload)
    assert (alert.status, alert.severity, alert.fingerprint) == ("firing", "critical", "metric_alert_rule:7")


@pytest.mark.parametrize(
    "level, severity",
    [("fatal", "critical"), ("error", "high"), ("warning", "medium"), ("info", "low"), ("debug", "info"),
     ("FATAL", "critical"), ("something-new", "medium"), (None, "medium")],
)  # fmt: skip
def test_sentry_levels_map_to_severities(level, severity):
    assert sentry.severity_for_level(level) == severity


@pytest.mark.parametrize("name", ["legacy-webhooks-plugin-sentry8.json", "legacy-webhooks-plugin-sentry9.json"])
def test_legacy_plugin_bodies_parse_without_sentry_headers(name):
    [alert] = sentry.parse({}, load_fixture("sentry", name))
    assert alert.title == "This is an example Python exception"
    assert alert.severity == "high"
    assert alert.link == "https://sentry.io/alertaio/alerta5/issues/541485531/"
    assert alert.status == "firing"


def test_legacy_plugin_sentry8_fields():
    [alert] = sentry.parse({}, load_fixture("sentry", "legacy-webhooks-plugin-sentry8.json"))
    assert alert.service == "alerta5"
    assert alert.fingerprint == "issue:541485531"
    assert alert.occurred_at == datetime(2018, 5, 2, 8, 7, 10, tzinfo=timezone.utc)  # event.received


def test_issue_assigned_and_installation_are_not_alerts():
    assigned = load_fixture("sentry", "issue-created.json")
    assigned["action"] = "assigned"
    assert sentry.parse({"Sentry-Hook-Resource": "issue"}, assigned) == []
    installation = {"action": "created", "installation": {"uuid": "x"}, "data": {"installation": {}}, "actor": {}}
    assert sentry.parse({"Sentry-Hook-Resource": "installation"}, installation) == []


# --- being liberal: what Sentry may leave out -------------------------------------------------------------

RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)



def parse_without(name: str, resource: str | None, *paths: str):
    """Parse a fixture with the fields at the dotted `paths` removed (what an older or newer Sentry may omit)."""
    payload = load_fixture("sentry", name)
    for path in paths:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        del node[last]
    headers = {"Sentry-Hook-Resource": resource} if resource else {}
    return sentry.parse(headers, payload, received_at=RECEIVED)


@pytest.mark.parametrize("name, resource", SENTRY_EXAMPLES)
def test_every_reference_example_becomes_one_alert_with_a_title_a_service_and_an_identity(name, resource):
    [alert] = parse_without(name, resource)
    assert alert.title.strip() and alert.service.strip() and alert.fingerprint.strip()


@pytest.mark.parametrize(
    "name, resource, path",
    [("event-alert-triggered.json", "event_alert", "action"),
     ("event-alert-triggered.json", "event_alert", "data.event.project"),
     ("event-alert-triggered.json", "event_alert", "data.event.url"),
     ("event-alert-triggered.json", "event_alert", "data.event.event_id"),
     ("event-alert-triggered.json", "event_alert", "data.event.issue_id"),
     ("event-alert-triggered.json", "event_alert", "data.event.title"),
     ("event-alert-triggered.json", "event_alert", "data.event.level"),
     ("event-alert-triggered.json", "event_alert", "data.event.tags"),
     ("event-alert-triggered.json", "event_alert", "data.event.web_url"),
     ("event-alert-triggered.json", "event_alert", "data.triggered_rule"),
     ("error-created.json", "error", "action"),
     ("error-created.json", "error", "data.error.project"),
     ("error-created.json", "error", "data.error.datetime"),
     ("issue-created.json", "issue", "data.issue.project"),
     ("issue-created.json", "issue", "data.issue.title"),
     ("issue-created.json", "issue", "data.issue.lastSeen"),
     ("issue-created.json", "issue", "data.issue.level"),
     ("issue-created.json", "issue", "data.issue.shortId"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.date_started"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.date_detected"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.id"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.title"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.projects"),
     ("metric-alert-resolved.json", "metric_alert", "data.metric_alert.alert_rule"),
     ("metric-alert-resolved.json", "metric_alert", "data.web_url"),
     ("metric-alert-resolved.json", "metric_alert", "data.description_title"),
     ("legacy-webhooks-plugin-sentry9.json", None, "project"),
     ("legacy-webhooks-plugin-sentry9.json", None, "event.timestamp"),
     ("legacy-webhooks-plugin-sentry9.json", None, "message")],
)  # fmt: skip
def test_a_delivery_without_a_field_sentry_may_leave_out_still_alerts(name, resource, path):
    [alert] = parse_without(name, resource, path)
    assert alert.title.strip() and alert.service.strip() and alert.fingerprint.strip()


def test_an_event_without_a_project_takes_the_slug_from_its_api_url():
    [alert] = parse_without("event-alert-triggered.json", "event_alert", "data.event.project")
    assert alert.service == "front-end"


def test_an_event_that_names_no_project_at_all_is_filed_under_sentry():
    [alert] = parse_without("error-created.json", "error", "data.error.project", "data.error.url")
    assert alert.service == "sentry"


def test_an_issue_without_a_project_is_filed_under_sentry():
    [alert] = parse_without("issue-created.json", "issue", "data.issue.project")
    assert alert.service == "sentry"


def test_an_event_without_a_date_happened_when_it_was_received():
    [alert] = parse_without("error-created.json", "error", "data.error.datetime", "data.error.timestamp")
    assert alert.occurred_at == RECEIVED


def test_an_issue_without_a_date_happened_when_it_was_received():
    [alert] = parse_without("issue-created.json", "issue", "data.issue.lastSeen", "data.issue.firstSeen")
    assert alert.occurred_at == RECEIVED


def test_a_metric_alert_without_dates_happened_when_it_was_received():
    [alert] = parse_without(
        "metric-alert-resolved.json", "metric_alert",
        "data.metric_alert.date_started", "data.metric_alert.date_detected", "data.metric_alert.date_closed",
    )  # fmt: skip
    assert alert.occurred_at == RECEIVED


def test_a_date_that_is_not_a_date_is_refused_naming_the_field():
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    payload["data"]["metric_alert"]["date_detected"] = "yesterday-ish"
    with pytest.raises(PayloadError, match=r"data\.metric_alert\.date_detected"):
        sentry.parse({"Sentry-Hook-Resource": "metric_alert"}, payload)


def test_an_event_without_an_issue_id_takes_it_from_the_issue_url():
    [alert] = parse_without("event-alert-triggered.json", "event_alert", "data.event.issue_id")
    assert alert.fingerprint == "issue:1117540176"


def test_events_naming_no_issue_at_all_group_by_their_title():
    paths = ("data.error.issue_id", "data.error.issue_url", "data.error.web_url")
    [first] = parse_without("error-created.json", "error", *paths)
    second = load_fixture("sentry", "error-created.json")
    for key in ("issue_id", "issue_url", "web_url"):
        del second["data"]["error"][key]
    second["data"]["error"]["event_id"] = "0" * 32
    [repeat] = sentry.parse({"Sentry-Hook-Resource": "error"}, second, received_at=RECEIVED)
    assert first.fingerprint == repeat.fingerprint and not first.fingerprint.startswith("issue:")


def test_an_event_without_an_event_id_is_named_by_its_issue():
    [alert] = parse_without("error-created.json", "error", "data.error.event_id")
    assert alert.source_event_id == "1170820242"


def test_an_issue_without_a_title_is_named_by_its_error():
    [alert] = parse_without("issue-created.json", "issue", "data.issue.title")
    assert alert.title == "ReferenceError: blooopy is not defined"  # metadata type: value


def test_an_event_with_no_text_at_all_is_named_by_its_issue():
    paths = ("data.error.title", "data.error.message", "data.error.metadata", "data.error.exception", "data.error.culprit")
    [alert] = parse_without("error-created.json", "error", *paths)
    assert alert.title == "Sentry error in front-end (issue 1170820242)"


def test_a_metric_alert_without_its_rule_groups_by_the_sentry_incident():
    [alert] = parse_without("metric-alert-resolved.json", "metric_alert", "data.metric_alert.alert_rule")
    assert alert.fingerprint == "metric_alert:4"
    assert alert.title == "Sacred Marmot"  # the incident's own title
    assert alert.service == "bar"


def test_a_metric_alert_without_an_action_reads_it_from_the_incident_status():
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    del payload["action"]
    payload["data"]["metric_alert"]["status"] = 20  # Sentry's IncidentStatus.CRITICAL
    [alert] = sentry.parse({"Sentry-Hook-Resource": "metric_alert"}, payload, received_at=RECEIVED)
    assert (alert.status, alert.severity) == ("firing", "critical")


def test_an_issue_delivery_without_an_action_reads_it_from_the_issue_status():
    payload = load_fixture("sentry", "zulip-fixture-issue-resolved.json")
    del payload["action"]
    [alert] = sentry.parse({"Sentry-Hook-Resource": "issue"}, payload, received_at=RECEIVED)
    assert alert.status == "resolved"


def test_a_legacy_body_without_project_uses_its_project_slug():
    [alert] = parse_without("legacy-webhooks-plugin-sentry9.json", None, "project")
    assert alert.service == "internal"


def test_a_legacy_body_without_any_project_is_filed_under_sentry():
    [alert] = parse_without("legacy-webhooks-plugin-sentry9.json", None, "project", "project_slug", "project_name")
    assert alert.service == "sentry"


def test_an_event_with_neither_text_nor_any_id_is_refused():
    with pytest.raises(PayloadError, match=r"data\.event has no title and no id"):
        sentry.parse({"Sentry-Hook-Resource": "event_alert"}, {"action": "triggered", "data": {"event": {"level": "error"}}})


def test_a_metric_alert_naming_neither_rule_nor_incident_is_refused():
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    payload["data"]["metric_alert"] = {"title": "Sacred Marmot"}
    with pytest.raises(PayloadError, match=r"data\.metric_alert names neither its alert_rule\.id nor its id"):
        sentry.parse({"Sentry-Hook-Resource": "metric_alert"}, payload)


# --- severity as a current state -----------------------------------------------------------------------


def test_a_metric_alerts_severity_is_its_current_state():
    payload = load_fixture("sentry", "metric-alert-resolved.json")
    payload["action"] = "warning"
    [alert] = sentry.parse({"Sentry-Hook-Resource": "metric_alert"}, payload)
    assert alert.severity == "medium" and alert.severity_is_current


def test_an_issues_events_only_ever_raise_its_severity():
    [issue] = parse_fixture("issue-created.json", "issue")
    [event] = parse_fixture("event-alert-triggered.json", "event_alert")
    assert not issue.severity_is_current and not event.severity_is_current


# --- bad bodies ----------------------------------------------------------------------------------------


def test_issue_without_id_is_a_payload_error_naming_the_field():
    with pytest.raises(PayloadError, match=r"data\.issue\.id"):
        parse_fixture("bad-issue-without-id.json", "issue")


def test_body_that_is_no_sentry_shape_is_a_payload_error():
    with pytest.raises(PayloadError, match="not a Sentry webhook"):
        sentry.parse({}, load_fixture("sentry", "bad-not-a-sentry-body.json"))


def test_event_alert_without_event_is_a_payload_error():
    with pytest.raises(PayloadError, match=r"data\.event is missing"):
        sentry.parse({"Sentry-Hook-Resource": "event_alert"}, {"action": "triggered", "data": {}})


def test_decode_refuses_a_json_array():
    with pytest.raises(PayloadError, match="JSON object"):
        sentry.decode({}, b"[1, 2]")


# --- signatures ----------------------------------------------------------------------------------------


def test_valid_signature_over_the_raw_body_passes():
    body = sentry_body(load_fixture("sentry", "issue-created.json"))
    sentry.verify(signed_headers(body, "issue"), body, SECRET)


def test_signature_of_a_reserialised_body_does_not_match():
    payload = load_fixture("sentry", "issue-created.json")
    body = sentry_body(payload)
    pretty = json.dumps(payload).encode()  # the docs' Python snippet's mistake: default separators
    with pytest.raises(SignatureError, match="does not match"):
        sentry.verify(signed_headers(body, "issue"), pretty, SECRET)


def test_signature_made_with_another_secret_fails():
    body = sentry_body(load_fixture("sentry", "issue-created.json"))
    with pytest.raises(SignatureError, match="SENTRY_CLIENT_SECRET"):
        sentry.verify(signed_headers(body, "issue", secret="guess"), body, SECRET)


def test_missing_signature_fails():
    body = sentry_body(load_fixture("sentry", "issue-created.json"))
    headers = signed_headers(body, "issue")
    del headers["Sentry-Hook-Signature"]
    with pytest.raises(SignatureError, match="missing Sentry-Hook-Signature"):
        sentry.verify(headers, body, SECRET)


def test_no_secret_configured_refuses_and_names_the_variable():
    body = sentry_body(load_fixture("sentry", "issue-created.json"))
    with pytest.raises(NotConfiguredError, match="SENTRY_CLIENT_SECRET is not set"):
        sentry.verify(signed_headers(body, "issue"), body, None)


def test_legacy_plugin_needs_the_webhook_token():
    body = sentry_body(load_fixture("sentry", "legacy-webhooks-plugin-sentry9.json"))
    sentry.verify({"X-Pulser-Token": TOKEN}, body, SECRET, legacy_token=TOKEN)
    with pytest.raises(SignatureError, match="wrong token"):
        sentry.verify({"X-Pulser-Token": "nope"}, body, SECRET, legacy_token=TOKEN)


def test_legacy_plugin_is_refused_when_no_token_is_configured():
    body = sentry_body(load_fixture("sentry", "legacy-webhooks-plugin-sentry9.json"))
    with pytest.raises(NotConfiguredError, match="PULSER_WEBHOOK_TOKEN"):
        sentry.verify({}, body, SECRET)


# --- idempotency ---------------------------------------------------------------------------------------


def test_issue_resolved_is_keyed_by_request_id():
    payload = load_fixture("sentry", "zulip-fixture-issue-resolved.json")
    first = sentry.idempotency_key({"Sentry-Hook-Resource": "issue", "Request-ID": "a" * 32}, payload)
    again = sentry.idempotency_key({"Sentry-Hook-Resource": "issue", "Request-ID": "a" * 32}, payload)
    other = sentry.idempotency_key({"Sentry-Hook-Resource": "issue", "Request-ID": "b" * 32}, payload)
    assert first == again
    assert first != other


def test_a_retried_event_alert_with_a_new_request_id_has_the_same_key():
    payload = load_fixture("sentry", "event-alert-triggered.json")
    first = sentry.idempotency_key({"Sentry-Hook-Resource": "event_alert", "Request-ID": "a" * 32}, payload)
    retry = sentry.idempotency_key({"Sentry-Hook-Resource": "event_alert", "Request-ID": "b" * 32}, payload)
    assert first == retry


def test_different_events_have_different_keys():
    error = load_fixture("sentry", "error-created.json")
    alert = load_fixture("sentry", "event-alert-triggered.json")
    assert sentry.idempotency_key({"Sentry-Hook-Resource": "error"}, error) != sentry.idempotency_key(
        {"Sentry-Hook-Resource": "event_alert"}, alert
    )


def test_legacy_plugin_is_keyed_by_event_id():
    payload = load_fixture("sentry", "legacy-webhooks-plugin-sentry9.json")
    assert sentry.idempotency_key({}, payload) == "legacy:2c02659ec60b48f3b31f8de77e1a2510"
