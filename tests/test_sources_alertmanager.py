"""Alertmanager webhook v4: every alert in a notification, firing and resolved; bearer-token protected."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from alerts.sources import alertmanager
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError
from tests.fixtures import fixture_bytes, load_fixture

TOKEN = "pulser-webhook-token"


def parse_fixture(name: str):
    return alertmanager.parse({}, load_fixture("alertmanager", name))


# --- parsing real samples ----------------------------------------------------------------------------


def test_every_alert_of_a_notification_becomes_an_alert():
    alerts = parse_fixture("captured-v0.25-firing-two-alerts.json")
    assert [a.fingerprint for a in alerts] == ["1c5d859e845f39a3", "2f27ba89bcf30e12"]
    assert {a.tags["instance"] for a in alerts} == {"checkout-1:8080", "checkout-2:8080"}


def test_captured_firing_alert_fields():
    alert = parse_fixture("captured-v0.25-firing-two-alerts.json")[0]
    assert alert.source == "alertmanager"
    assert alert.title == "HighErrorRate: 5xx rate above 5% on checkout"
    assert alert.severity == "critical"
    assert alert.status == "firing"
    assert alert.service == "checkout"
    assert alert.env == ""
    assert alert.occurred_at == datetime(2026, 11, 22, 23, 16, 33, tzinfo=timezone.utc)
    assert alert.link.startswith("http://prometheus.example.internal:9090/graph?g0.expr=")
    assert "&g0.tab=1" in alert.link  # Go's \u0026 escape decoded
    assert alert.tags["alertmanager.runbook_url"] == "https://runbooks.example.internal/HighErrorRate"


def test_mixed_notification_keeps_each_alerts_own_status():
    resolved, firing = parse_fixture("captured-v0.25-firing-with-one-resolved.json")
    assert (resolved.fingerprint, resolved.status) == ("1c5d859e845f39a3", "resolved")
    assert (firing.fingerprint, firing.status) == ("2f27ba89bcf30e12", "firing")


def test_resolved_alert_occurred_at_is_its_end():
    [alert] = parse_fixture("captured-v0.25-resolved.json")
    assert alert.status == "resolved"
    assert alert.occurred_at == datetime(2026, 11, 22, 23, 16, 50, tzinfo=timezone.utc)


def test_fingerprint_is_stable_between_firing_and_resolved_notifications():
    firing = parse_fixture("captured-v0.25-firing-two-alerts.json")[1]
    [resolved] = parse_fixture("captured-v0.25-resolved.json")
    assert firing.fingerprint == resolved.fingerprint


def test_truncated_alerts_are_noted_in_tags_and_description():
    [alert] = parse_fixture("captured-v0.25-truncated-max-alerts-1.json")
    assert alert.tags["alertmanager.truncated_alerts"] == "1"
    assert "1 more alert(s)" in alert.description
    assert alert.tags["alertmanager.receiver"] == "web\\.hook"  # QuoteMeta'd by Alertmanager, kept as sent
    assert alert.severity == "medium"  # severity="warning"
    assert alert.service == "orders-db"


def test_environment_label_is_normalized():
    [alert] = parse_fixture("alerta-fixture-firing-heartbeat.json")
    assert alert.env == "development"
    assert alert.service == "Monitoring"
    assert alert.occurred_at == datetime(2020, 7, 5, 18, 51, 22, 12771, tzinfo=timezone.utc)


def test_old_sender_without_status_or_fingerprint_is_accepted():
    [alert] = parse_fixture("prometheus-msteams-fixture-firing.json")
    assert alert.status == "firing"  # from the notification's status
    assert alert.fingerprint.startswith("labels:")
    assert alert.service == "docker_nodes"  # from job, no service label
    assert alert.description == "10.80.40.11 reported high memory usage with 23.28%."
    assert alert.link == "http://docker.for.mac.host.internal:9093"  # no generatorURL: externalURL
    assert alert.occurred_at == datetime(2018, 3, 7, 11, 33, 21, 873077, tzinfo=timezone.utc)


def test_label_hash_fingerprint_does_not_depend_on_label_order():
    payload = load_fixture("alertmanager", "prometheus-msteams-fixture-firing.json")
    reordered = load_fixture("alertmanager", "prometheus-msteams-fixture-firing.json")
    reordered["alerts"][0]["labels"] = dict(reversed(list(payload["alerts"][0]["labels"].items())))
    assert alertmanager.parse({}, payload)[0].fingerprint == alertmanager.parse({}, reordered)[0].fingerprint


@pytest.mark.parametrize(
    "label, severity",
    [("critical", "critical"), ("page", "critical"), ("high", "high"), ("error", "high"), ("warning", "medium"),
     ("low", "low"), ("info", "info"), ("none", "info"), ("Warning", "medium"), ("sev-x", "medium"), (None, "medium")],
)  # fmt: skip
def test_severity_labels_map_to_severities(label, severity):
    assert alertmanager.severity_for_label(label) == severity


def test_unknown_top_level_fields_are_ignored():
    payload = load_fixture("alertmanager", "captured-v0.25-resolved.json")
    payload["notification_reason"] = "all alerts resolved"
    payload["routeLabels"] = {"team": "web"}
    assert len(alertmanager.parse({}, payload)) == 1


def test_v3_body_from_a_very_old_alertmanager_is_tolerated():
    body = {"version": "3", "status": "firing", "groupKey": 42, "alerts": []}
    assert alertmanager.parse({}, body) == []


def test_an_alert_without_starts_at_happened_when_it_was_received():
    payload = load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json")
    del payload["alerts"][0]["startsAt"]
    received = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert alertmanager.parse({}, payload, received_at=received)[0].occurred_at == received


def test_a_truncated_alerts_value_that_is_no_count_is_ignored_not_refused():
    payload = load_fixture("alertmanager", "captured-v0.25-truncated-max-alerts-1.json")
    payload["truncatedAlerts"] = "some"
    [alert] = alertmanager.parse({}, payload)
    assert "alertmanager.truncated_alerts" not in alert.tags


def test_an_alerts_severity_label_is_its_current_state():
    alert = parse_fixture("captured-v0.25-firing-two-alerts.json")[0]
    assert alert.severity_is_current


# --- bad bodies ----------------------------------------------------------------------------------------


def test_alerts_that_are_not_an_array_is_a_payload_error():
    with pytest.raises(PayloadError, match="alerts must be an array"):
        parse_fixture("bad-alerts-not-an-array.json")


def test_alert_without_labels_is_a_payload_error_naming_it():
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.labels must be an object"):
        parse_fixture("bad-alert-without-labels.json")


def test_body_without_alerts_is_a_payload_error():
    with pytest.raises(PayloadError, match="alerts is missing"):
        alertmanager.parse({}, {"text": "hello"})


def test_unparseable_starts_at_is_a_payload_error():
    payload = load_fixture("alertmanager", "captured-v0.25-resolved.json")
    payload["alerts"][0]["startsAt"] = "soon"
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.startsAt"):
        alertmanager.parse({}, payload)


def test_unknown_payload_version_is_a_payload_error():
    payload = load_fixture("alertmanager", "captured-v0.25-resolved.json")
    payload["version"] = "5"
    with pytest.raises(PayloadError, match="version '5' is not supported"):
        alertmanager.parse({}, payload)


# --- authentication ------------------------------------------------------------------------------------


def test_bearer_token_passes():
    body = fixture_bytes("alertmanager", "captured-v0.25-resolved.json")
    alertmanager.verify({"Authorization": f"Bearer {TOKEN}"}, body, TOKEN)


def test_basic_auth_with_the_token_as_password_passes():
    credentials = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    alertmanager.verify({"authorization": f"Basic {credentials}"}, b"{}", TOKEN)


def test_wrong_token_fails():
    with pytest.raises(SignatureError, match="wrong token"):
        alertmanager.verify({"Authorization": "Bearer guess"}, b"{}", TOKEN)


def test_missing_token_fails():
    with pytest.raises(SignatureError, match="missing token"):
        alertmanager.verify({"User-Agent": "Alertmanager/0.25.0"}, b"{}", TOKEN)


def test_no_token_configured_refuses_and_names_the_variable():
    with pytest.raises(NotConfiguredError, match="PULSER_WEBHOOK_TOKEN is not set"):
        alertmanager.verify({"Authorization": f"Bearer {TOKEN}"}, b"{}", None)


# --- idempotency ---------------------------------------------------------------------------------------


def test_a_retried_notification_has_the_same_key():
    first = alertmanager.idempotency_key({}, load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json"))
    retry = alertmanager.idempotency_key({}, load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json"))
    assert first == retry
    assert len(first) == 64


def test_key_changes_when_an_alert_in_the_group_resolves():
    firing = alertmanager.idempotency_key({}, load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json"))
    one_resolved = alertmanager.idempotency_key(
        {}, load_fixture("alertmanager", "captured-v0.25-firing-with-one-resolved.json")
    )
    assert firing != one_resolved


def test_key_does_not_depend_on_alert_order():
    payload = load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json")
    reversed_payload = load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json")
    reversed_payload["alerts"].reverse()
    assert alertmanager.idempotency_key({}, payload) == alertmanager.idempotency_key({}, reversed_payload)
