"""GitHub: failed workflow runs and deployments alert, green ones resolve; X-Hub-Signature-256 enforced."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from alerts.normalized import group_key
from alerts.sources import github
from alerts.sources.common import NotConfiguredError, PayloadError, SignatureError
from tests.fixtures import fixture_bytes, load_fixture

SECRET = "github-webhook-secret"


def event(name: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict[str, str]:
    return {"X-GitHub-Event": name, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- workflow_run ----------------------------------------------------------------------------------------


def test_failed_run_on_the_default_branch_fires_high():
    [alert] = github.parse(event("workflow_run"), load_fixture("github", "workflow_run-completed-failure.json"))
    assert alert.source == "github"
    assert alert.status == "firing"
    assert alert.severity == "high"
    assert alert.title == "test failed on master"  # workflow_run.name is "": workflow.name is used
    assert alert.service == "octo-org/octo-repo"
    assert alert.env == ""
    assert alert.fingerprint == "workflow:2823525:master"
    assert alert.link == "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    assert alert.occurred_at == datetime(2020, 10, 5, 16, 33, 49, tzinfo=timezone.utc)
    assert "ci(action): update actions/setup-node digest to 8c91899" in alert.description


def test_failed_run_on_another_branch_fires_medium():
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    payload["workflow_run"]["head_branch"] = "feature/login"
    [alert] = github.parse(event("workflow_run"), payload)
    assert alert.severity == "medium"
    assert alert.fingerprint == "workflow:2823525:feature/login"


def test_timed_out_run_fires():
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    payload["workflow_run"]["conclusion"] = "timed_out"
    [alert] = github.parse(event("workflow_run"), payload)
    assert alert.status == "firing"


def test_successful_run_resolves_the_same_group_as_the_failure():
    [failed] = github.parse(event("workflow_run"), load_fixture("github", "workflow_run-completed-failure.json"))
    [passed] = github.parse(event("workflow_run"), load_fixture("github", "workflow_run-completed.json"))
    assert passed.status == "resolved"
    assert group_key(passed) == group_key(failed)


def test_successful_run_with_pull_requests_resolves():
    [alert] = github.parse(
        event("workflow_run"), load_fixture("github", "workflow_run-completed-with-pull-requests.json")
    )
    assert alert.status == "resolved"


def test_requested_run_is_not_an_alert():
    assert github.parse(event("workflow_run"), load_fixture("github", "workflow_run-requested.json")) == []


def test_cancelled_run_is_not_an_alert():
    payload = load_fixture("github", "workflow_run-completed.json")
    payload["workflow_run"]["conclusion"] = "cancelled"
    assert github.parse(event("workflow_run"), payload) == []


# --- deployment_status -----------------------------------------------------------------------------------


def test_failed_deployment_fires_high_for_its_environment():
    [alert] = github.parse(
        event("deployment_status"), load_fixture("github", "deployment_status-created-failure.json")
    )
    assert alert.status == "firing"
    assert alert.severity == "high"
    assert alert.title == "Deployment to production failed"
    assert alert.env == "production"
    assert alert.service == "Codertocat/Hello-World"
    assert alert.fingerprint == "deployment:production"
    assert alert.link == "https://github.com/Codertocat/Hello-World/actions/runs/1"  # log_url
    assert alert.description.startswith("Health check failed after release")


@pytest.mark.parametrize("name", ["deployment_status-created.json", "deployment_status-created-with-installation.json"])
def test_successful_deployment_resolves(name):
    [alert] = github.parse(event("deployment_status"), load_fixture("github", name))
    assert alert.status == "resolved"
    assert alert.fingerprint == "deployment:production"
    assert alert.link == "https://github.com/Codertocat/Hello-World/deployments"  # no target_url given
    assert alert.occurred_at == datetime(2019, 5, 15, 15, 20, 55, tzinfo=timezone.utc)


def test_pending_deployment_is_not_an_alert():
    payload = load_fixture("github", "deployment_status-created.json")
    payload["deployment_status"]["state"] = "in_progress"
    assert github.parse(event("deployment_status"), payload) == []


def test_ping_and_unused_events_are_not_alerts():
    assert github.parse(event("ping"), {"zen": "Keep it logically awesome.", "hook_id": 1}) == []
    assert github.parse(event("push"), {"ref": "refs/heads/main"}) == []


# --- being liberal: what GitHub may leave out ---------------------------------------------------------------

RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_a_failed_run_without_the_top_level_repository_names_the_runs_own():
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    del payload["repository"]
    [alert] = github.parse(event("workflow_run"), payload)
    assert alert.service == "octo-org/octo-repo"


def test_a_failed_run_without_dates_happened_when_it_was_received():
    payload = load_fixture("github", "workflow_run-completed-failure.json")
    for key in ("updated_at", "run_started_at", "created_at"):
        del payload["workflow_run"][key]
    [alert] = github.parse(event("workflow_run"), payload, received_at=RECEIVED)
    assert alert.occurred_at == RECEIVED


def test_a_failed_deployment_without_its_deployment_object_or_ids_still_fires():
    payload = load_fixture("github", "deployment_status-created-failure.json")
    del payload["deployment"]
    del payload["deployment_status"]["id"]
    del payload["deployment_status"]["created_at"]
    del payload["deployment_status"]["updated_at"]
    [alert] = github.parse(event("deployment_status"), payload, received_at=RECEIVED)
    assert (alert.status, alert.fingerprint, alert.occurred_at) == ("firing", "deployment:production", RECEIVED)


# --- bad bodies ------------------------------------------------------------------------------------------


def test_workflow_run_event_without_a_run_is_a_payload_error():
    with pytest.raises(PayloadError, match="workflow_run is missing"):
        github.parse(event("workflow_run"), load_fixture("github", "bad-workflow_run-without-run.json"))


def test_missing_event_header_is_a_payload_error():
    with pytest.raises(PayloadError, match="X-GitHub-Event"):
        github.parse({}, load_fixture("github", "workflow_run-completed.json"))


def test_deployment_status_without_state_is_a_payload_error():
    payload = load_fixture("github", "deployment_status-created.json")
    del payload["deployment_status"]["state"]
    with pytest.raises(PayloadError, match=r"deployment_status\.state"):
        github.parse(event("deployment_status"), payload)


# --- signatures ------------------------------------------------------------------------------------------


def test_official_test_vector_verifies():
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    github.verify(headers, b"Hello, World!", "It's a Secret to Everybody")


def test_valid_signature_over_the_fixture_bytes_passes():
    body = fixture_bytes("github", "workflow_run-completed.json")
    github.verify({**event("workflow_run"), "X-Hub-Signature-256": signature(body)}, body, SECRET)


def test_signature_made_with_another_secret_fails():
    body = fixture_bytes("github", "workflow_run-completed.json")
    headers = {**event("workflow_run"), "X-Hub-Signature-256": signature(body, "guess")}
    with pytest.raises(SignatureError, match="does not match"):
        github.verify(headers, body, SECRET)


def test_tampered_body_fails():
    body = fixture_bytes("github", "workflow_run-completed.json")
    headers = {**event("workflow_run"), "X-Hub-Signature-256": signature(body)}
    with pytest.raises(SignatureError):
        github.verify(headers, body.replace(b'"success"', b'"failure"'), SECRET)


def test_legacy_sha1_signature_alone_is_not_enough():
    body = fixture_bytes("github", "workflow_run-completed.json")
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, "sha1").hexdigest()
    headers = {**event("workflow_run"), "X-Hub-Signature": sha1}
    with pytest.raises(SignatureError, match="missing X-Hub-Signature-256"):
        github.verify(headers, body, SECRET)


def test_no_secret_configured_refuses_and_names_the_variable():
    body = fixture_bytes("github", "workflow_run-completed.json")
    with pytest.raises(NotConfiguredError, match="GITHUB_WEBHOOK_SECRET is not set"):
        github.verify({"X-Hub-Signature-256": signature(body)}, body, None)


def test_form_encoded_hook_is_verified_on_raw_bytes_and_decoded():
    raw = b"payload=" + quote(fixture_bytes("github", "workflow_run-completed.json").decode()).encode()
    headers = {**event("workflow_run"), "Content-Type": "application/x-www-form-urlencoded",
               "X-Hub-Signature-256": signature(raw)}  # fmt: skip
    github.verify(headers, raw, SECRET)
    assert github.decode(headers, raw)["workflow_run"]["id"] == 289782451


# --- idempotency -----------------------------------------------------------------------------------------


def test_key_is_the_delivery_guid_and_differs_between_deliveries():
    payload = load_fixture("github", "workflow_run-completed.json")
    first = github.idempotency_key(event("workflow_run", "guid-1"), payload)
    redelivered = github.idempotency_key(event("workflow_run", "guid-1"), payload)
    other = github.idempotency_key(event("workflow_run", "guid-2"), payload)
    assert first == redelivered == "guid-1"
    assert first != other


def test_missing_delivery_header_is_a_payload_error():
    with pytest.raises(PayloadError, match="X-GitHub-Delivery"):
        github.idempotency_key({"X-GitHub-Event": "ping"}, {})
