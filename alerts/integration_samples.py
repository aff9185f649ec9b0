"""How each source puts a delivery on the wire — signed or authorized headers plus body bytes —
and a realistic sample delivery per source for the integration test button.

The signers are what Sentry, GitHub, Heroku, Alertmanager and a generic sender do; the tests and
benchmarks send with the same functions, so a test delivery from the Send test button and a test
suite's delivery are signed alike. Each sample is unique per call (its fingerprint names the test
run), so it opens a fresh incident instead of joining an earlier test's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

TEST_LABEL = "pulser_test"  # the tag every sample carries, with the test run's id as its value


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def sentry(payload: dict, resource: str, secret: str) -> tuple[dict, bytes]:
    """Sentry's integration platform: `Sentry-Hook-Signature` = hex HMAC-SHA256 of the body."""
    body = compact(payload)
    return {
        "Content-Type": "application/json",
        "Request-ID": uuid.uuid4().hex,
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(int(datetime.now(timezone.utc).timestamp())),
        "Sentry-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }, body


def github(payload: dict, event: str, secret: str, delivery: str | None = None) -> tuple[dict, bytes]:
    """GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`."""
    body = compact(payload)
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }, body


def heroku(payload: dict, secret: str) -> tuple[dict, bytes]:
    """Heroku app webhooks: `Heroku-Webhook-Hmac-SHA256` = Base64 of HMAC-SHA256 of the body."""
    body = compact(payload)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "Heroku-Webhook-Hmac-SHA256": base64.b64encode(digest).decode()}, body


def bearer(payload: dict, token: str, idempotency_key: str | None = None) -> tuple[dict, bytes]:
    """Alertmanager and generic senders: `Authorization: Bearer <PULSER_WEBHOOK_TOKEN>`."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers, compact(payload)


# --- samples -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A signed delivery ready to POST to /webhooks/{source}, and the test run it belongs to."""

    source: str
    run_id: str
    headers: dict[str, str]
    body: bytes


TITLE = "Pulser integration test"


def sentry_sample(secret: str, run_id: str, now: datetime) -> Sample:
    """An `issue` `created` delivery, as Sentry's integration platform sends it."""
    issue_id = str(int(hashlib.sha256(run_id.encode()).hexdigest()[:12], 16))
    payload = {
        "action": "created",
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {
            "issue": {
                "id": issue_id,
                "shortId": "PULSER-TEST",
                "title": f"{TITLE}: Sentry issue {run_id}",
                "culprit": "pulser.integrations in send_test",
                "level": "info",
                "status": "unresolved",
                "platform": "python",
                "project": {"id": "1", "name": "pulser-test", "slug": "pulser-test", "platform": "python"},
                "web_url": f"https://sentry.io/organizations/example/issues/{issue_id}/",
                "firstSeen": now.isoformat(),
                "lastSeen": now.isoformat(),
                "count": "1",
                "metadata": {"type": "PulserTest", "value": "a sample delivery from the Send test button"},
            }
        },
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }
    headers, body = sentry(payload, "issue", secret)
    return Sample("sentry", run_id, headers, body)


def alertmanager_sample(token: str, run_id: str, now: datetime) -> Sample:
    """A version 4 webhook with one firing alert."""
    labels = {"alertname": "PulserIntegrationTest", "severity": "info", "service": "pulser-test", "env": "test",
              TEST_LABEL: run_id}
    payload = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="PulserIntegrationTest",{TEST_LABEL}="{run_id}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pulser",
        "groupLabels": {"alertname": "PulserIntegrationTest"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{TITLE}: Alertmanager alert {run_id}"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": f"{TITLE}: Alertmanager alert {run_id}",
                            "description": "A sample delivery from Pulser's Send test button."},
            "startsAt": now.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up%3D%3D0",
            "fingerprint": hashlib.sha256(run_id.encode()).hexdigest()[:16],
        }],
    }
    headers, body = bearer(payload, token)
    return Sample("alertmanager", run_id, headers, body)


def github_sample(secret: str, run_id: str, now: datetime) -> Sample:
    """A `workflow_run` `completed` with conclusion `failure`, on a branch that is not the default
    (medium severity: a test should not page anyone)."""
    run_number = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)
    payload = {
        "action": "completed",
        "workflow_run": {
            "id": run_number,
            "name": f"{TITLE} {run_id}",
            "head_branch": f"pulser-test-{run_id}",
            "head_sha": hashlib.sha1(run_id.encode()).hexdigest(),
            "display_title": f"{TITLE}: GitHub workflow run {run_id}",
            "run_number": 1,
            "run_attempt": 1,
            "event": "push",
            "status": "completed",
            "conclusion": "failure",
            "workflow_id": run_number,
            "html_url": f"https://github.com/example/pulser-test/actions/runs/{run_number}",
            "created_at": now.isoformat(),
            "updated_at": now.isoformat(),
            "actor": {"login": "pulser-test"},
        },
        "workflow": {"id": run_number, "name": f"{TITLE} {run_id}"},
        "repository": {"full_name": "example/pulser-test", "default_branch": "main"},
        "sender": {"login": "pulser-test"},
    }
    headers, body = github(payload, "workflow_run", secret)
    return Sample("github", run_id, headers, body)


def generic_sample(token: str, run_id: str, now: datetime) -> Sample:
    payload = {
        "title": f"{TITLE}: generic webhook {run_id}",
        "service": "pulser-test",
        "env": "test",
        "severity": "info",
        "status": "firing",
        "fingerprint": f"pulser-test:{run_id}",
        "description": "A sample delivery from Pulser's Send test button.",
        "tags": {TEST_LABEL: run_id},
        "occurred_at": now.isoformat(),
        "event_id": f"pulser-test-{run_id}",
    }
    headers, body = bearer(payload, token, idempotency_key=f"pulser-test-{run_id}")
    return Sample("generic", run_id, headers, body)


def heroku_samples(secret: str, run_id: str, now: datetime, *, app: str) -> list[Sample]:
    """Two `api:dyno` deliveries for one dyno of `app`, as Heroku's app webhooks send them: it
    comes up, then it crashes. Heroku detection takes its first look at an app as a silent
    baseline and reports a crash only as a change, so the first delivery gives it that "before";
    the next poll's dyno list, which does not have this dyno, clears it (and resolves the crash)."""
    dyno = f"web.{1000 + int(run_id[:4], 16)}"
    return [
        Sample("heroku", run_id, *heroku(_dyno_event(run_id, now, app, dyno, state="up", action="create"), secret)),
        Sample("heroku", run_id, *heroku(_dyno_event(run_id, now, app, dyno, state="crashed", action="update"), secret)),
    ]


def _dyno_event(run_id: str, now: datetime, app: str, dyno: str, *, state: str, action: str) -> dict:
    dyno_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"pulser-test/{run_id}"))
    return {
        "id": str(uuid.uuid4()),
        "action": action,
        "actor": {"email": f"pulser-test+{run_id}@example.com", "id": str(uuid.uuid4())},
        "created_at": now.isoformat(),
        "data": {
            "app": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, app)), "name": app},
            "attach_url": None,
            "command": "web",
            "created_at": now.isoformat(),
            "exit_status": 1 if state == "crashed" else None,
            "id": dyno_id,
            "name": dyno,
            "release": {"id": str(uuid.uuid4()), "version": 1},
            "size": "Basic",
            "state": state,
            "type": "web",
            "updated_at": now.isoformat(),
        },
        "previous_data": {"state": "up"} if state == "crashed" else {},
        "published_at": now.isoformat(),
        "resource": "dyno",
        "sequence": None,
        "updated_at": now.isoformat(),
        "version": "application/vnd.heroku+json; version=3",
        "webhook_metadata": {"attempt": {"id": str(uuid.uuid4())}, "delivery": {"id": str(uuid.uuid4())},
                             "event": {"id": str(uuid.uuid4()), "include": "api:dyno"},
                             "webhook": {"id": str(uuid.uuid4())}},
    }


SampleBuilder = Callable[[str, str, datetime], Sample]
BUILDERS: dict[str, SampleBuilder] = {
    "sentry": sentry_sample,
    "alertmanager": alertmanager_sample,
    "github": github_sample,
    "generic": generic_sample,
}
