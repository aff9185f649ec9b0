"""Heroku webhooks: Base64 HMAC enforced, envelopes validated, each real sample becomes an observation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone

import pytest

from alerts.sources import SOURCES, heroku
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError
from tests.fixtures import fixture_bytes, load_fixture

SECRET = "heroku-webhook-secret"
RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SAMPLES = [
    "webhook-api-dyno-create.json",
    "webhook-api-formation-update.json",
    "webhook-api-release-create.json",
    "webhook-api-release-update.json",
    "webhook-real-dyno-create-starting-2023.json",
    "webhook-real-dyno-destroy-crashed-2023.json",
    "webhook-real-release-update-2023.json",
]


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "Heroku-Webhook-Hmac-SHA256": base64.b64encode(digest).decode()}


def observe(name: str):
    return heroku.observation_from_event(load_fixture("heroku", name), RECEIVED)


# --- signatures ------------------------------------------------------------------------------------------


def test_reference_test_vector_verifies():
    headers = {"Heroku-Webhook-Hmac-SHA256": "luDEVkRg2AxxcflGmamyN5mOPleyccUZdkg+C0MoRBY="}
    heroku.verify(headers, b"a wild payload appeared", "foobar")


def test_signature_over_the_exact_sample_bytes_verifies():
    body = fixture_bytes("heroku", "webhook-real-release-update-2023.json")
    heroku.verify(signed(body), body, SECRET)


def test_body_changed_after_signing_is_refused():
    body = fixture_bytes("heroku", "webhook-real-release-update-2023.json")
    with pytest.raises(SignatureError, match="does not match"):
        heroku.verify(signed(body), body.replace(b"succeeded", b"failed"), SECRET)


def test_signature_made_with_another_secret_is_refused():
    body = fixture_bytes("heroku", "webhook-api-dyno-create.json")
    with pytest.raises(SignatureError, match="HEROKU_WEBHOOK_SECRET"):
        heroku.verify(signed(body, secret="guess"), body, SECRET)


def test_hex_signature_is_refused_because_heroku_sends_base64():
    body = b"a wild payload appeared"
    hex_digest = hmac.new(b"foobar", body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        heroku.verify({"Heroku-Webhook-Hmac-SHA256": hex_digest}, body, "foobar")


def test_missing_signature_header_is_refused():
    with pytest.raises(SignatureError, match="Heroku-Webhook-Hmac-SHA256"):
        heroku.verify({}, b"{}", SECRET)


def test_without_a_configured_secret_everything_is_refused_naming_the_variable():
    body = b"a wild payload appeared"
    with pytest.raises(NotConfiguredError, match="HEROKU_WEBHOOK_SECRET"):
        heroku.verify({"Heroku-Webhook-Hmac-SHA256": "luDEVkRg2AxxcflGmamyN5mOPleyccUZdkg+C0MoRBY="}, body, None)


# --- parse: validation only ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_valid_and_alerts_only_through_detection(name):
    payload = heroku.decode(signed(b""), fixture_bytes("heroku", name))
    assert heroku.parse({}, payload) == []


def test_body_that_is_not_json_is_a_payload_error():
    with pytest.raises(PayloadError, match="not valid JSON"):
        heroku.decode({}, b"resource=dyno")


def test_json_array_is_a_payload_error():
    with pytest.raises(PayloadError, match="JSON object"):
        heroku.parse({}, [])


@pytest.mark.parametrize(
    ("field", "message"),
    [("resource", "resource is missing"), ("action", "action is missing"), ("data", "data is missing")],
)
def test_envelope_without_its_parts_is_a_payload_error(field, message):
    payload = load_fixture("heroku", "webhook-api-release-create.json")
    del payload[field]
    with pytest.raises(PayloadError, match=message):
        heroku.parse({}, payload)


def test_event_without_the_app_name_is_a_payload_error():
    payload = load_fixture("heroku", "webhook-api-dyno-create.json")
    del payload["data"]["app"]["name"]
    with pytest.raises(PayloadError, match=r"data\.app\.name is missing"):
        heroku.parse({}, payload)


def test_release_without_an_integer_version_is_a_payload_error():
    payload = load_fixture("heroku", "webhook-api-release-update.json")
    payload["data"]["version"] = "v1"
    with pytest.raises(PayloadError, match=r"data\.version must be an integer"):
        heroku.parse({}, payload)


def test_dyno_without_a_state_is_a_payload_error():
    payload = load_fixture("heroku", "webhook-real-dyno-destroy-crashed-2023.json")
    del payload["data"]["state"]
    with pytest.raises(PayloadError, match=r"data\.state is missing"):
        heroku.parse({}, payload)


def test_formation_with_a_negative_quantity_is_a_payload_error():
    payload = load_fixture("heroku", "webhook-api-formation-update.json")
    payload["data"]["quantity"] = -1
    with pytest.raises(PayloadError, match=r"data\.quantity must be an integer"):
        heroku.parse({}, payload)


def test_entities_detection_does_not_use_are_accepted_and_ignored():
    payload = load_fixture("heroku", "webhook-api-dyno-create.json")
    payload.update(resource="collaborator", data={"app": {"name": "sample-app-0146"}, "user": {"email": "x@example.com"}})
    assert heroku.parse({}, payload) == []
    assert heroku.observation_from_event(payload, RECEIVED) is None


# --- idempotency keys ------------------------------------------------------------------------------------


def test_key_is_the_delivery_id_so_retried_attempts_are_one_envelope():
    payload = load_fixture("heroku", "webhook-real-release-update-2023.json")
    assert heroku.idempotency_key({}, payload) == "delivery:ecb8532f-3b9b-4f8a-8eee-14296e0a6784"
    payload["webhook_metadata"]["attempt"]["id"] = "another-attempt"
    assert heroku.idempotency_key({}, payload) == "delivery:ecb8532f-3b9b-4f8a-8eee-14296e0a6784"


def test_key_falls_back_to_the_event_id_without_webhook_metadata():
    payload = load_fixture("heroku", "webhook-real-dyno-destroy-crashed-2023.json")
    assert heroku.idempotency_key({}, payload) == "event:292a769d-53d8-4edd-ace4-017a967653e1"


def test_key_falls_back_to_the_webhook_id_header_then_to_the_content():
    payload = load_fixture("heroku", "webhook-real-dyno-destroy-crashed-2023.json")
    del payload["id"]
    assert heroku.idempotency_key({"heroku-webhook-id": "hook-1"}, payload) == "webhook-id:hook-1"
    by_content = heroku.idempotency_key({}, payload)
    assert by_content.startswith("sha256:")
    assert heroku.idempotency_key({}, dict(reversed(list(payload.items())))) == by_content
    payload["data"]["exit_status"] = 1
    assert heroku.idempotency_key({}, payload) != by_content


# --- observations ----------------------------------------------------------------------------------------


def test_crashed_dyno_destroy_is_a_dyno_event_with_its_exit_status():
    observation = observe("webhook-real-dyno-destroy-crashed-2023.json")
    assert observation.app == "my-app"
    assert observation.observed_at == RECEIVED  # server receipt time, not the sender's clock
    assert observation.dyno_events == [{
        "id": "ab9fece7-41cc-4f22-8b73-de8c1a7a52b5", "name": "scheduler.8375", "type": "scheduler",
        "state": "crashed", "action": "destroy", "exit_status": 137,
    }]
    assert observation.dynos is None and observation.releases is None


@pytest.mark.parametrize(
    ("name", "app", "dyno", "state"),
    [
        ("webhook-api-dyno-create.json", "sample-app-0146", "run.1", "up"),
        ("webhook-real-dyno-create-starting-2023.json", "my-app", "scheduler.3540", "starting"),
    ],
)
def test_dyno_create_is_a_dyno_event(name, app, dyno, state):
    observation = observe(name)
    [event] = observation.dyno_events
    assert observation.app == app
    assert (event["name"], event["state"], event["action"], event["exit_status"]) == (dyno, state, "create", None)


def test_release_event_is_the_one_release_it_names():
    observation = observe("webhook-real-release-update-2023.json")
    assert observation.releases == [{
        "id": "38821f7c-e1a1-41d9-a34b-c41e2fa6d82d", "version": 6644, "status": "succeeded",
        "description": "Deploy 69eec518", "user": "hodor@unsplash.com", "created_at": "2023-08-03T10:00:30Z",
        "eligible_for_rollback": False, "current": True,
    }]
    assert observation.dyno_events is None and observation.formation is None


def test_failed_release_update_keeps_its_failed_status_and_empty_description():
    [release] = observe("webhook-api-release-update.json").releases
    assert (release["version"], release["status"], release["description"]) == (1, "failed", "")
    assert release["user"] == "user-0008@example.com"


def test_addon_config_release_is_a_release_by_the_addon():
    [release] = observe("webhook-api-release-create.json").releases
    assert (release["version"], release["user"]) == (3, "heroku-postgresql@addons.heroku.com")


def test_formation_update_is_the_new_quantity_of_its_process_type():
    observation = observe("webhook-api-formation-update.json")
    assert (observation.app, observation.formation) == ("sample-app-0197", {"web": 0})


def test_formation_destroy_means_no_dynos_of_that_type():
    payload = load_fixture("heroku", "webhook-api-formation-update.json")
    payload["action"] = "destroy"
    del payload["data"]["quantity"]
    assert heroku.observation_from_event(payload, RECEIVED).formation == {"web": 0}


def test_addon_event_is_a_partial_addon_observation():
    [example] = load_fixture("heroku", "api-addons-list.schema-example.json")
    payload = load_fixture("heroku", "webhook-api-dyno-create.json")
    payload.update(resource="addon", action="update", data=example)
    observation = heroku.observation_from_event(payload, RECEIVED)
    assert observation.app == "example"
    assert observation.addon_events == [{
        "name": "acme-inc-primary-database", "service": "heroku-postgresql", "plan": "heroku-postgresql:dev",
        "state": "provisioned", "action": "update",
    }]


def test_observation_from_a_bad_body_is_a_payload_error():
    payload = load_fixture("heroku", "webhook-api-release-create.json")
    payload["data"]["app"] = "sample-app-0339"
    with pytest.raises(PayloadError, match=r"data\.app must be an object"):
        heroku.observation_from_event(payload, RECEIVED)


def test_registry_offers_heroku():
    assert SOURCES["heroku"] is heroku
    assert (heroku.NAME, heroku.SECRET_ENV) == ("heroku", "HEROKU_WEBHOOK_SECRET")
