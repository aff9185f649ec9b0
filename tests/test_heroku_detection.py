"""Heroku detection: what a poll or a webhook saw, compared with the stored state, alerts once per change."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from alerts.heroku_detection import AppState, Observation, detect, release_alert_details
from alerts.sources import heroku
from tests.fixtures import load_fixture

APP = "shop-api"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seen(minutes: float = 0, *, app: str = APP, **parts) -> Observation:
    return Observation(app=app, observed_at=at(minutes), **parts)


def dyno(name: str, state: str = "up") -> dict:
    return {"name": name, "type": name.split(".")[0], "state": state}


def release(version: int, status: str = "succeeded", *, eligible: bool = True, description: str = "") -> dict:
    """A release in the Platform API's shape (the reference schema example, renumbered)."""
    [example] = load_fixture("heroku", "api-releases-list.schema-example.json")
    return {**example, "id": f"release-{version}", "version": version, "status": status,
            "eligible_for_rollback": eligible, "description": description or f"Deploy v{version}"}


def addon(name: str, state: str = "provisioned") -> dict:
    """An add-on in the Platform API's shape (the reference schema example, renamed)."""
    [example] = load_fixture("heroku", "api-addons-list.schema-example.json")
    return {**example, "name": name, "state": state}


def digests(values: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(value.encode()).hexdigest() for name, value in values.items()}


def baseline(*, app: str = APP, **parts) -> AppState:
    state, alerts = detect(None, seen(0, app=app, **parts))
    assert alerts == []
    return state


def steps(state: AppState, *observations: Observation) -> tuple[AppState, list[list]]:
    """Feed observations in order; the alerts of each step."""
    emitted = []
    for observation in observations:
        state, alerts = detect(state, observation)
        emitted.append(alerts)
    return state, emitted


def all_text(alert) -> str:
    return " ".join([alert.title, alert.description, alert.fingerprint, alert.source_event_id,
                     alert.link or "", *alert.tags.keys(), *alert.tags.values()])


# --- baseline and state ------------------------------------------------------------------------------------


def test_first_observation_is_a_silent_baseline_even_with_problems_in_it():
    state, alerts = detect(None, seen(
        0,
        dynos=[dyno("web.1", "crashed"), dyno("worker.1", "down")],
        releases=[release(12, "failed"), release(11)],
        config_digest=digests({"FOO": "bar"}),
        addons=[addon("db", "deprovisioned")],
    ))
    assert alerts == []
    assert state.dynos["web.1"]["state"] == "crashed"
    assert state.release_version == 12
    assert state.config_digest == digests({"FOO": "bar"})
    assert state.open_problems == []


def test_state_survives_a_json_round_trip():
    state, _ = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2")], releases=[release(11)], config_digest=digests({"A": "1"}),
                 addons=[addon("db")], formation={"web": 2}),
        seen(5, dynos=[dyno("web.1", "crashed"), dyno("web.2")]),
    )
    stored = json.loads(json.dumps(state.to_json()))
    assert AppState.from_json(stored) == state
    assert AppState.from_json(stored).open_problems == [f"heroku:crash:{APP}"]


def test_partial_observation_leaves_the_rest_of_the_state_alone():
    before, _ = steps(
        baseline(dynos=[dyno("web.1")], releases=[release(11)], config_digest=digests({"A": "1"}),
                 addons=[addon("db")], formation={"web": 1}),
        seen(5, dynos=[dyno("web.1", "crashed")]),
    )
    after, alerts = detect(before, seen(6, releases=[release(11)]))
    assert alerts == []
    assert after.dynos == before.dynos
    assert after.config_digest == before.config_digest
    assert after.addons == before.addons
    assert after.formation == before.formation
    assert after.open_problems == [f"heroku:crash:{APP}"]
    assert after.updated_at == at(6)


def test_every_alert_names_the_app_kind_service_env_and_dashboard():
    _, [[crash]] = steps(baseline(dynos=[dyno("web.1")]), seen(5, dynos=[dyno("web.1", "crashed")]))
    assert crash.source == "heroku"
    assert crash.service == APP
    assert crash.env == "production"
    assert crash.tags["app"] == APP and crash.tags["kind"] == "crash"
    assert crash.link == f"https://dashboard.heroku.com/apps/{APP}"
    assert crash.occurred_at == at(5)


# --- crashes ------------------------------------------------------------------------------------------------


def test_crash_fires_once_while_the_dyno_stays_crashed():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("worker.1")]),
        seen(5, dynos=[dyno("web.1", "crashed"), dyno("worker.1")]),
        seen(10, dynos=[dyno("web.1", "crashed"), dyno("worker.1")]),
    )
    [crash] = emitted[0]
    assert crash.status == "firing"
    assert crash.severity == "critical"
    assert crash.title == f"🚨 Dyno Crash Detected: {APP}"
    assert crash.fingerprint == f"heroku:crash:{APP}"
    assert "web.1 (web)" in crash.description
    assert "worker.1" not in crash.description
    assert emitted[1] == []


def test_recovery_resolves_the_crash_once():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1")]),
        seen(5, dynos=[dyno("web.1", "crashed")]),
        seen(10, dynos=[dyno("web.1", "up")]),
        seen(15, dynos=[dyno("web.1", "up")]),
    )
    [crash], [recovery], nothing = emitted[0], emitted[1], emitted[2]
    assert recovery.status == "resolved"
    assert recovery.fingerprint == crash.fingerprint
    assert nothing == []


def test_a_second_dyno_crashing_while_the_first_is_down_updates_the_alert():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2")]),
        seen(5, dynos=[dyno("web.1", "crashed"), dyno("web.2")]),
        seen(10, dynos=[dyno("web.1", "crashed"), dyno("web.2", "crashed")]),
    )
    [again] = emitted[1]
    assert again.status == "firing"
    assert "web.1 (web)" in again.description and "web.2 (web)" in again.description


def test_crash_reported_by_a_webhook_is_resolved_by_the_next_poll():
    crashed_event = heroku.observation_from_event(
        load_fixture("heroku", "webhook-real-dyno-destroy-crashed-2023.json"), at(5)
    )
    state = baseline(app="my-app", dynos=[dyno("web.1")])
    _, emitted = steps(state, crashed_event, seen(10, app="my-app", dynos=[dyno("web.1")]))
    [crash], [recovery] = emitted
    assert "scheduler.8375 (scheduler), exit status 137" in crash.description
    assert recovery.status == "resolved"


def test_crash_event_alerts_when_only_webhooks_have_been_seen():
    started, _ = detect(None, heroku.observation_from_event(
        load_fixture("heroku", "webhook-real-dyno-create-starting-2023.json"), at(0)))
    crashed_event = heroku.observation_from_event(
        load_fixture("heroku", "webhook-real-dyno-destroy-crashed-2023.json"), at(5))
    _, [[crash]] = steps(started, crashed_event)
    assert crash.tags["kind"] == "crash"


def test_first_dyno_list_after_webhooks_started_the_state_is_a_baseline():
    started, _ = detect(None, heroku.observation_from_event(
        load_fixture("heroku", "webhook-real-release-update-2023.json"), at(0)))
    _, emitted = steps(started, seen(5, app="my-app", dynos=[dyno("web.1", "crashed")]))
    assert emitted == [[]]


# --- dynos down ---------------------------------------------------------------------------------------------


def test_dyno_in_state_down_fires_down_and_recovers():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("worker.1")]),
        seen(5, dynos=[dyno("web.1"), dyno("worker.1", "down")]),
        seen(10, dynos=[dyno("web.1"), dyno("worker.1", "down")]),
        seen(15, dynos=[dyno("web.1"), dyno("worker.1")]),
    )
    [down] = emitted[0]
    assert down.severity == "high"
    assert down.title == f"⚠️ Dynos Down: {APP}"
    assert down.fingerprint == f"heroku:down:{APP}"
    assert "worker.1 (worker) is down" in down.description
    assert emitted[1] == []
    assert [a.status for a in emitted[2]] == ["resolved"]


def test_fewer_dynos_of_a_type_than_before_fires_down_until_they_are_back():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2"), dyno("web.3")]),
        seen(5, dynos=[dyno("web.1")]),
        seen(10, dynos=[dyno("web.1")]),
        seen(15, dynos=[dyno("web.1"), dyno("web.2"), dyno("web.3")]),
    )
    [down] = emitted[0]
    assert "web: 1 dynos, 3 before" in down.description
    assert down.tags["process_types"] == "web"
    assert emitted[1] == []  # still short: the level it is measured against did not drop
    assert [a.status for a in emitted[2]] == ["resolved"]


def test_a_crashed_dyno_is_reported_as_a_crash_not_also_as_down():
    _, [alerts] = steps(baseline(dynos=[dyno("web.1"), dyno("web.2")]),
                        seen(5, dynos=[dyno("web.1"), dyno("web.2", "crashed")]))
    assert [a.tags["kind"] for a in alerts] == ["crash"]


def test_scale_down_shown_by_the_formation_is_not_down():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2")], formation={"web": 2}),
        heroku.observation_from_event(_formation_event("web", 1), at(4)),
        seen(5, dynos=[dyno("web.1")]),
    )
    assert emitted == [[], []]


def test_formation_scale_down_ends_a_down_alert_for_the_missing_dynos():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2")]),
        seen(5, dynos=[dyno("web.1")]),
        seen(6, formation={"web": 1}),
    )
    assert [a.status for a in emitted[0]] == ["firing"]
    assert [a.status for a in emitted[1]] == ["resolved"]


def test_dynos_restarting_or_one_off_jobs_ending_are_not_down():
    _, emitted = steps(
        baseline(dynos=[dyno("web.1"), dyno("web.2"), dyno("run.1"), dyno("scheduler.3540")]),
        seen(5, dynos=[dyno("web.1"), dyno("web.2", "starting")]),
        seen(10, dynos=[dyno("web.1"), dyno("web.2")]),
    )
    assert emitted == [[], []]


def test_restart_events_arriving_in_either_order_raise_nothing():
    state = baseline(dynos=[{**dyno("web.1"), "id": "old"}])
    new_first = [
        seen(1, dyno_events=[{"id": "new", "name": "web.1", "type": "web", "state": "starting", "action": "create"}]),
        seen(2, dyno_events=[{"id": "old", "name": "web.1", "type": "web", "state": "down", "action": "destroy"}]),
    ]
    state, emitted = steps(state, *new_first)
    assert emitted == [[], []]
    assert state.dynos["web.1"]["state"] == "starting"


# --- releases -----------------------------------------------------------------------------------------------


def test_new_release_is_a_deploy_alert_with_a_rollback_target():
    _, [[deploy]] = steps(
        baseline(releases=[release(11), release(10)]),
        seen(5, releases=[release(12, description="Deploy 69eec518"), release(11), release(10)]),
    )
    assert deploy.severity == "info"
    assert deploy.title == f"🚀 New Deploy Detected: {APP} v12"
    assert deploy.fingerprint == f"heroku:release:{APP}:v12"
    assert deploy.link == f"https://dashboard.heroku.com/apps/{APP}/activity"
    assert "username@example.com" in deploy.description
    assert "Deploy 69eec518" in deploy.description
    assert "succeeded" in deploy.description
    assert deploy.tags["release_id"] == "release-12"
    assert deploy.tags["release_version"] == "12"
    assert deploy.tags["rollback_target_id"] == "release-11"
    assert deploy.tags["rollback_target_version"] == "11"
    assert release_alert_details(deploy) == {
        "app": APP, "release_id": "release-12", "version": 12,
        "rollback_target_id": "release-11", "rollback_target_version": 11,
    }


def test_rollback_target_skips_releases_that_failed_or_cannot_be_rolled_back_to():
    older = [release(11, "failed"), release(10, eligible=False), release(9)]
    _, [[deploy]] = steps(baseline(releases=older), seen(5, releases=[release(12), *older]))
    assert deploy.tags["rollback_target_version"] == "9"


def test_deploy_without_any_older_release_known_has_no_rollback_target():
    state = baseline(releases=[release(11, "failed")])
    _, [[deploy]] = steps(state, seen(5, releases=[release(12)]))
    assert "rollback_target_id" not in deploy.tags and "rollback_target_version" not in deploy.tags


def test_failed_release_is_its_own_alert():
    _, [[failed]] = steps(baseline(releases=[release(11)]), seen(5, releases=[release(12, "failed"), release(11)]))
    assert failed.tags["kind"] == "release_failed"
    assert failed.severity == "high"
    assert failed.title == f"❌ Release Failed: {APP} v12"
    assert failed.fingerprint == f"heroku:release-failed:{APP}:v12"
    assert release_alert_details(failed) is None


def test_pending_release_that_later_fails_alerts_once_more():
    _, emitted = steps(
        baseline(releases=[release(11)]),
        seen(5, releases=[release(12, "pending"), release(11)]),
        seen(10, releases=[release(12, "failed"), release(11)]),
        seen(15, releases=[release(12, "failed"), release(11)]),
    )
    [deploy], [failed], nothing = emitted
    assert deploy.tags["kind"] == "deploy" and "pending" in deploy.description
    assert failed.title == f"❌ Release Failed: {APP} v12"
    assert nothing == []


def test_several_new_releases_alert_one_each_oldest_first():
    _, [alerts] = steps(
        baseline(releases=[release(10)]),
        seen(5, releases=[release(13), release(12, "failed"), release(11), release(10)]),
    )
    assert [(a.tags["kind"], a.tags["release_version"]) for a in alerts] == [
        ("deploy", "11"), ("release_failed", "12"), ("deploy", "13"),
    ]


def test_release_seen_by_the_webhook_and_then_by_the_poll_alerts_once():
    event = heroku.observation_from_event(load_fixture("heroku", "webhook-real-release-update-2023.json"), at(1))
    state = baseline(app="my-app", releases=[release(6643)])
    _, emitted = steps(state, event, seen(5, app="my-app", releases=[release(6644), release(6643)]))
    [deploy], nothing = emitted
    assert deploy.title == "🚀 New Deploy Detected: my-app v6644"
    assert "hodor@unsplash.com" in deploy.description
    assert deploy.occurred_at == datetime(2023, 8, 3, 10, 0, 30, tzinfo=timezone.utc)
    # The webhook carries one release: the previous one known to have succeeded is the target.
    assert deploy.tags["rollback_target_id"] == "release-6643"
    assert nothing == []


def test_a_release_older_than_the_newest_known_changes_nothing():
    state = baseline(releases=[release(12)])
    after, alerts = detect(state, seen(5, releases=[release(11, "failed")]))
    assert alerts == []
    assert (after.release_version, after.release_status) == (12, "succeeded")


# --- config vars --------------------------------------------------------------------------------------------


def test_config_changes_report_names_only_never_values_or_digests():
    values = load_fixture("heroku", "api-config-vars.schema-example.json")  # FOO=bar, BAZ=qux
    changed = {"FOO": "s3cr3t-new-value", "NEW_KEY": "hunter2"}  # BAZ removed
    _, [[config]] = steps(baseline(config_digest=digests(values)), seen(5, config_digest=digests(changed)))
    assert config.severity == "medium"
    assert config.title == f"⚙️ Config Vars Changed: {APP}"
    assert config.fingerprint.startswith(f"heroku:config:{APP}:")
    assert "Added: NEW_KEY" in config.description
    assert "Removed: BAZ" in config.description
    assert "Changed: FOO" in config.description
    text = all_text(config)
    for secret in [*values.values(), *changed.values(), *digests(values).values(), *digests(changed).values()]:
        assert secret not in text
    for digest in [*digests(values).values(), *digests(changed).values()]:
        assert digest[:12] not in text


def test_unchanged_config_is_silent():
    state = baseline(config_digest=digests({"FOO": "bar"}))
    _, emitted = steps(state, seen(5, config_digest=digests({"FOO": "bar"})))
    assert emitted == [[]]


def test_config_first_seen_after_a_webhook_started_the_state_is_a_baseline():
    event = heroku.observation_from_event(load_fixture("heroku", "webhook-real-dyno-create-starting-2023.json"), at(0))
    state, _ = detect(None, event)
    _, emitted = steps(state, seen(5, app="my-app", config_digest=digests({"FOO": "bar"})))
    assert emitted == [[]]


# --- add-ons ------------------------------------------------------------------------------------------------


def test_addon_deprovisioned_fires_and_provisioned_again_resolves():
    _, emitted = steps(
        baseline(addons=[addon("db")]),
        seen(5, addons=[addon("db", "deprovisioned")]),
        seen(10, addons=[addon("db", "deprovisioned")]),
        seen(15, addons=[addon("db", "provisioned")]),
    )
    [gone], nothing, [back] = emitted
    assert gone.severity == "high"
    assert gone.title == f"🧩 Add-on db deprovisioned: {APP}"
    assert gone.fingerprint == f"heroku:addon:{APP}:db"
    assert "heroku-postgresql" in gone.description
    assert nothing == []
    assert back.status == "resolved" and back.fingerprint == gone.fingerprint


def test_addon_missing_after_being_provisioned_is_removed():
    _, [[removed]] = steps(baseline(addons=[addon("db"), addon("cache")]), seen(5, addons=[addon("cache")]))
    assert removed.severity == "high"
    assert removed.title == f"🧩 Add-on db removed: {APP}"


def test_addon_provisioning_longer_than_the_limit_fires_once_and_recovers():
    _, emitted = steps(
        baseline(addons=[addon("db")]),
        seen(5, addons=[addon("db"), addon("search", "provisioning")]),
        seen(15, addons=[addon("db"), addon("search", "provisioning")]),
        seen(21, addons=[addon("db"), addon("search", "provisioning")]),
        seen(30, addons=[addon("db"), addon("search", "provisioning")]),
        seen(35, addons=[addon("db"), addon("search", "provisioned")]),
    )
    assert emitted[0] == [] and emitted[1] == []  # 10 minutes is within the 15-minute limit
    [stuck] = emitted[2]
    assert stuck.severity == "medium"
    assert stuck.title == f"🧩 Add-on search stuck provisioning: {APP}"
    assert emitted[3] == []
    assert [a.status for a in emitted[4]] == ["resolved"]


def test_addon_destroyed_by_webhook_event_is_removed():
    state = baseline(addons=[addon("db")])
    destroy = seen(5, addon_events=[{"name": "db", "service": "heroku-postgresql", "plan": "mini",
                                     "state": "deprovisioned", "action": "destroy"}])
    _, [[removed]] = steps(state, destroy)
    assert removed.title == f"🧩 Add-on db removed: {APP}"


def _formation_event(kind: str, quantity: int) -> dict:
    payload = load_fixture("heroku", "webhook-api-formation-update.json")
    payload["data"].update(type=kind, quantity=quantity, app={"id": "x", "name": APP})
    return payload
