"""Heroku change detection: what a poll or a webhook saw, compared with the stored state, gives alerts.

Pure (no I/O, no SQL, no Slack). The poller and the webhook worker both turn what they saw into an
`Observation`; `detect(state, observation)` returns the next `AppState` and the `NormalizedAlert`s
for the pipeline. Alerting on *changes of state* instead of on events is what makes the two feeds
safe to combine: a release seen by the webhook and then by the poll alerts once, a restart neither
misses nor repeats an alert, and the first look at an app is a silent baseline.

Rules (source "heroku", service = app name, env "production": Heroku apps carry no environment,
`process_tier` is a dyno tier, and a pipeline stage would need another API call per app):

- **Baseline.** `state is None` → the new state, no alerts. A snapshot part seen for the first
  time in an existing state (the full dyno list, config vars, the add-on list) is baselined silently
  as well, because a snapshot cannot tell an old problem from a new one; releases are baselined
  while no release version is known. Recoveries are still reported during a part's baseline.
- **Crash** (critical, `heroku:crash:<app>`): fires when a dyno becomes "crashed" (again when more
  dynos crash while it is open); resolved when no dyno is crashed any more.
- **Down** (high, `heroku:down:<app>`): a dyno in state "down", or a process type with fewer dynos
  than before and than its formation quantity when known (a scale-down is not an outage). Only a
  full dyno list can start a shortfall (a formation change can end one): one webhook event cannot
  say how many dynos run, and a restart's destroy/create pair may arrive in either order. "starting" and "idle" dynos count as present (a
  restart or a sleeping eco dyno is not an outage); crashed and down dynos count too, because they
  have their own alert. One-off types (run, scheduler, release) never count.
- **Deploy** (info, `heroku:release:<app>:v<n>`) for each release newer than the known one, oldest
  first; **Release failed** (high, `heroku:release-failed:<app>:v<n>`) instead when it failed, and
  when the newest known release turns from pending (or anything) to failed. Only the newest
  release's status is followed: an older one failing after a newer one was seen is not reported.
- **Config** (medium, `heroku:config:<app>:<hash>`): config-var names added, removed or changed.
  Only names reach the alert; the hash is over names and the observation time, never over digests
  (a digest of a low-entropy value such as DEBUG=true could be guessed back from it).
- **Add-ons** (`heroku:addon:<app>:<name>`): a known add-on now deprovisioned (high), missing after
  having been provisioned (high, "removed"), or provisioning longer than `stuck_provisioning`
  (medium); back to "provisioned" → resolved.

`AppState.open_problems` lists the fingerprints alerted as firing and not yet resolved, so each
recovery is emitted exactly once. Callers must run `detect` for one app at a time (read, detect,
write under a per-app lock), in the order observations were received.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from alerts.normalized import NormalizedAlert

SOURCE = "heroku"
ENV = "production"
DASHBOARD_URL = "https://dashboard.heroku.com/apps/"
# Process types of one-off dynos: their count falls whenever a job ends, which is not an outage.
ONE_OFF_TYPES = frozenset({"run", "scheduler", "release"})
# Parts that arrive as complete snapshots, so their first sighting is a silent baseline.
SNAPSHOT_PARTS: tuple[str, ...] = ("dynos", "config", "addons")
RUNNING_STATES = frozenset({"up", "starting", "idle"})


@dataclass(frozen=True)
class Observation:
    """What one poll (or one webhook event) saw of one app; a part left None was not observed.

    - `dynos`: the full list from a poll, each {"name", "type", "state"} (an "id" is kept if given).
    - `dyno_events`: webhook api:dyno changes, each {"id", "name", "type", "state", "action",
      "exit_status"}; "destroy" removes the dyno unless it crashed (a crash is news even when the
      dyno is gone; the next full list, which no longer shows it, resolves it).
    - `formation`: process type → quantity; merged into what is known (a webhook names one type).
    - `releases`: newest first, each {"id", "version", "status", "description", "user" (email, or
      {"email"}), "created_at", "eligible_for_rollback", "current"}.
    - `config_digest`: config-var NAME → sha256 hex of the value (never the value).
    - `addons`: the full list, each {"name", "service", "plan", "state"} (the API's raw
      `addon_service`/`plan` objects are accepted as well).
    - `addon_events`: webhook api:addon changes, each {"name", "service", "plan", "state",
      "action"}; a partial form of `addons` ("destroy" means the add-on is gone).
    """

    app: str
    observed_at: datetime
    dynos: list[dict] | None = None
    dyno_events: list[dict] | None = None
    formation: dict[str, int] | None = None
    releases: list[dict] | None = None
    config_digest: dict[str, str] | None = None
    addons: list[dict] | None = None
    addon_events: list[dict] | None = None

    def __post_init__(self) -> None:
        if not self.app:
            raise ValueError("an observation needs the app name")
        if self.observed_at.tzinfo is None or self.observed_at.utcoffset() is None:
            raise ValueError("observed_at must be timezone-aware")


@dataclass(frozen=True)
class AppState:
    """What detection remembers of one app between observations; stored as JSON (`to_json`).

    - `dynos`: name → {"type", "state"} (plus "id" and "exit_status" when a webhook said so).
    - `up_by_type`: dynos per process type at the last full list where that type was not short:
      the level a drop is measured against (kept unchanged while the type is short).
    - `release_version`/`release_status`/`release_id`: the newest release seen.
    - `addons`: name → {"state", "service", "plan", "since"} (since = when that state was first seen).
    - `open_problems`: fingerprints alerted as firing and not yet resolved.
    - `short_types`: process types currently reported as short by the Down alert.
    - `observed_parts`: which snapshot parts (SNAPSHOT_PARTS) have been seen at least once.
    """

    app: str
    dynos: dict[str, dict]
    formation: dict[str, int]
    up_by_type: dict[str, int]
    release_version: int | None
    release_status: str | None
    config_digest: dict[str, str]
    addons: dict[str, dict]
    open_problems: list[str]
    updated_at: datetime
    release_id: str | None = None
    short_types: list[str] = field(default_factory=list)
    observed_parts: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, app: str, now: datetime) -> "AppState":
        """A state that has seen nothing yet."""
        return cls(app=app, dynos={}, formation={}, up_by_type={}, release_version=None, release_status=None,
                   config_digest={}, addons={}, open_problems=[], updated_at=now)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601), for a jsonb column."""
        return {
            "app": self.app,
            "dynos": {name: dict(dyno) for name, dyno in self.dynos.items()},
            "formation": dict(self.formation),
            "up_by_type": dict(self.up_by_type),
            "release_version": self.release_version,
            "release_status": self.release_status,
            "release_id": self.release_id,
            "config_digest": dict(self.config_digest),
            "addons": {name: dict(addon) for name, addon in self.addons.items()},
            "open_problems": list(self.open_problems),
            "short_types": list(self.short_types),
            "observed_parts": list(self.observed_parts),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AppState":
        """The inverse of `to_json`; keys added after a state was stored take their defaults."""
        return cls(
            app=data["app"],
            dynos={name: dict(dyno) for name, dyno in (data.get("dynos") or {}).items()},
            formation={kind: int(qty) for kind, qty in (data.get("formation") or {}).items()},
            up_by_type={kind: int(count) for kind, count in (data.get("up_by_type") or {}).items()},
            release_version=data.get("release_version"),
            release_status=data.get("release_status"),
            release_id=data.get("release_id"),
            config_digest=dict(data.get("config_digest") or {}),
            addons={name: dict(addon) for name, addon in (data.get("addons") or {}).items()},
            open_problems=list(data.get("open_problems") or []),
            short_types=list(data.get("short_types") or []),
            observed_parts=list(data.get("observed_parts") or []),
            updated_at=datetime.fromisoformat(data["updated_at"]),
        )


def detect(
    state: AppState | None, obs: Observation, *, stuck_provisioning: timedelta = timedelta(minutes=15)
) -> tuple[AppState, list[NormalizedAlert]]:
    """The app's next state and the alerts that the change from `state` to `obs` calls for."""
    if state is not None and state.app != obs.app:
        raise ValueError(f"state is for {state.app!r}, observation for {obs.app!r}")
    run = _Run(state, obs)
    _detect_dynos(run)
    _detect_releases(run)
    _detect_config(run)
    _detect_addons(run, stuck_provisioning)
    return run.result()


def release_alert_details(alert: NormalizedAlert) -> dict | None:
    """{"app", "release_id", "version"} of a Heroku deploy alert (None for any other alert).

    Also "rollback_target_id" / "rollback_target_version" when the alert names a rollback target
    (the id can be missing when only the version is known; fetch the release by version then).
    """
    tags = alert.tags
    if alert.source != SOURCE or tags.get("kind") != "deploy":
        return None
    version = _as_int(tags.get("release_version"))
    if not tags.get("app") or not tags.get("release_id") or version is None:
        return None
    details: dict[str, Any] = {"app": tags["app"], "release_id": tags["release_id"], "version": version}
    if tags.get("rollback_target_id"):
        details["rollback_target_id"] = tags["rollback_target_id"]
    target_version = _as_int(tags.get("rollback_target_version"))
    if target_version is not None:
        details["rollback_target_version"] = target_version
    return details


# --- one detection run ---------------------------------------------------------------------------------


class _Run:
    """The state being built and the alerts emitted, with the baseline rules in one place."""

    def __init__(self, state: AppState | None, obs: Observation) -> None:
        self.first = state is None
        self.before = state or AppState.empty(obs.app, obs.observed_at)
        self.obs = obs
        self.app = obs.app
        self.changes: dict[str, Any] = {}
        self.open = list(self.before.open_problems)
        self.alerts: list[NormalizedAlert] = []
        self.observed = list(self.before.observed_parts)

    def quiet(self, part: str) -> bool:
        """True when firing alerts of this part would report a baseline, not a change: the app's first
        observation, or the first snapshot of a part (webhook events alone are changes, never quiet)."""
        snapshots = {"dynos": self.obs.dynos, "config": self.obs.config_digest, "addons": self.obs.addons}
        first_snapshot = snapshots.get(part) is not None and part not in self.before.observed_parts
        return self.first or first_snapshot

    def saw_snapshot(self, part: str) -> None:
        if part not in self.observed:
            self.observed.append(part)

    def event(self, part: str, alert: NormalizedAlert) -> None:
        """An alert about a one-time change (deploy, config): nothing to resolve later."""
        if not self.quiet(part):
            self.alerts.append(alert)

    def fire(self, part: str, alert: NormalizedAlert) -> None:
        if self.quiet(part):
            return
        self.alerts.append(alert)
        if alert.fingerprint not in self.open:
            self.open.append(alert.fingerprint)

    def resolve(self, alert: NormalizedAlert) -> None:
        if alert.fingerprint in self.open:
            self.alerts.append(alert)
            self.open.remove(alert.fingerprint)

    def is_open(self, fingerprint: str) -> bool:
        return fingerprint in self.open

    def alert(self, *, kind: str, severity: str, fingerprint: str, title: str, description: str,
              status: str = "firing", link: str | None = None, occurred_at: datetime | None = None,
              event_id: str | None = None, tags: dict[str, str] | None = None) -> NormalizedAlert:
        when = occurred_at or self.obs.observed_at
        return NormalizedAlert(
            source=SOURCE,
            source_event_id=event_id or f"{fingerprint}@{when.astimezone(timezone.utc).isoformat()}",
            service=self.app,
            env=ENV,
            severity=severity,
            fingerprint=fingerprint,
            title=title,
            description=description,
            occurred_at=when,
            status=status,
            link=link or DASHBOARD_URL + self.app,
            tags={"app": self.app, "kind": kind, **(tags or {})},
        )

    def result(self) -> tuple[AppState, list[NormalizedAlert]]:
        state = replace(self.before, **self.changes, open_problems=self.open, observed_parts=self.observed,
                        updated_at=self.obs.observed_at)
        return state, self.alerts


# --- dynos: crash and down ------------------------------------------------------------------------------


def _detect_dynos(run: _Run) -> None:
    obs, before = run.obs, run.before
    if obs.dynos is None and obs.dyno_events is None and obs.formation is None:
        return
    dynos = {name: dict(d) for name, d in before.dynos.items()}
    if obs.dynos is not None:
        dynos = {str(d["name"]): _dyno_entry(d) for d in obs.dynos if d.get("name")}
    for event in obs.dyno_events or []:
        _apply_dyno_event(dynos, event)
    formation = dict(before.formation)
    formation.update({str(kind): int(qty) for kind, qty in (obs.formation or {}).items()})

    counts = _dynos_per_type(dynos)
    if obs.dynos is not None:
        short = sorted(kind for kind, level in before.up_by_type.items()
                       if _is_short(counts.get(kind, 0), level, formation.get(kind)))
        up_by_type = {kind: n for kind, n in counts.items() if kind not in short}
        up_by_type.update({kind: before.up_by_type[kind] for kind in short})
    else:  # events and formation alone cannot show a new shortfall; a formation change can end one
        short = [kind for kind in before.short_types
                 if _is_short(counts.get(kind, 0), before.up_by_type.get(kind, 0), formation.get(kind))]
        up_by_type = dict(before.up_by_type)
    run.changes.update(dynos=dynos, formation=formation, up_by_type=up_by_type, short_types=short)

    _crash(run, before.dynos, dynos)
    _down(run, before, dynos, short, counts, up_by_type, formation)
    if obs.dynos is not None:
        run.saw_snapshot("dynos")


def _dyno_entry(dyno: dict) -> dict:
    entry = {"type": str(dyno.get("type") or ""), "state": str(dyno.get("state") or "")}
    if dyno.get("id"):
        entry["id"] = str(dyno["id"])
    if dyno.get("exit_status") is not None:
        entry["exit_status"] = dyno["exit_status"]
    return entry


def _apply_dyno_event(dynos: dict[str, dict], event: dict) -> None:
    name = str(event.get("name") or "")
    if not name:
        return
    entry = _dyno_entry(event)
    if event.get("action") == "destroy" and entry["state"] != "crashed":
        known = dynos.get(name)
        # A restart may create the new web.1 before the old one's destroy arrives: keep the new one.
        if known is not None and (not known.get("id") or not entry.get("id") or known["id"] == entry["id"]):
            del dynos[name]
        return
    dynos[name] = entry


def _dynos_per_type(dynos: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dyno in dynos.values():
        kind = dyno.get("type") or ""
        if kind and kind not in ONE_OFF_TYPES:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _is_short(count: int, level: int, quantity: int | None) -> bool:
    return count < level and (quantity is None or count < quantity)


def _names_in_state(dynos: dict[str, dict], state: str) -> set[str]:
    return {name for name, dyno in dynos.items() if dyno.get("state") == state}


def _crash(run: _Run, before: dict[str, dict], after: dict[str, dict]) -> None:
    fingerprint = f"heroku:crash:{run.app}"
    crashed = _names_in_state(after, "crashed")
    title = f"🚨 Dyno Crash Detected: {run.app}"
    if crashed - _names_in_state(before, "crashed"):
        lines = [f"• {name} ({after[name].get('type') or 'unknown type'})" + _exit_status(after[name])
                 for name in sorted(crashed)]
        run.fire("dynos", run.alert(
            kind="crash", severity="critical", fingerprint=fingerprint, title=title,
            description="Crashed dynos:\n" + "\n".join(lines),
            tags={"dynos": ", ".join(sorted(crashed))},
        ))
    elif not crashed and run.is_open(fingerprint):
        run.resolve(run.alert(
            kind="crash", severity="critical", fingerprint=fingerprint, title=title, status="resolved",
            description="No dyno is crashed any more.",
        ))


def _exit_status(dyno: dict) -> str:
    return f", exit status {dyno['exit_status']}" if dyno.get("exit_status") is not None else ""


def _down(run: _Run, before: AppState, dynos: dict[str, dict], short: list[str], counts: dict[str, int],
          levels: dict[str, int], formation: dict[str, int]) -> None:
    fingerprint = f"heroku:down:{run.app}"
    down = _names_in_state(dynos, "down")
    title = f"⚠️ Dynos Down: {run.app}"
    news = (down - _names_in_state(before.dynos, "down")) or (set(short) - set(before.short_types))
    if news:
        lines = [f"• {name} ({dynos[name].get('type') or 'unknown type'}) is down" for name in sorted(down)]
        for kind in short:
            wanted = f", formation {formation[kind]}" if kind in formation else ""
            lines.append(f"• {kind}: {counts.get(kind, 0)} dynos, {levels[kind]} before{wanted}")
        run.fire("dynos", run.alert(
            kind="down", severity="high", fingerprint=fingerprint, title=title, description="\n".join(lines),
            tags={key: ", ".join(values) for key, values in (("dynos", sorted(down)), ("process_types", short)) if values},
        ))
    elif not down and not short and run.is_open(fingerprint):
        run.resolve(run.alert(
            kind="down", severity="high", fingerprint=fingerprint, title=title, status="resolved",
            description="All process types have their dynos back.",
        ))


# --- releases ---------------------------------------------------------------------------------------------


def _detect_releases(run: _Run) -> None:
    releases = [r for r in (_release(raw) for raw in run.obs.releases or []) if r is not None]
    if not releases:
        return
    before = run.before
    newest = max(releases, key=lambda r: r["version"])
    known = before.release_version
    if known is not None:
        for release in sorted((r for r in releases if r["version"] > known), key=lambda r: r["version"]):
            if release["status"] == "failed":
                run.event("releases", _release_failed(run, release))
            else:
                run.event("releases", _deploy(run, release, releases))
        same = next((r for r in releases if r["version"] == known), None)
        if same is not None and same["status"] == "failed" and before.release_status != "failed":
            run.event("releases", _release_failed(run, same))
    if known is None or newest["version"] >= known:
        same_release = newest["version"] == known
        run.changes.update(release_version=newest["version"], release_status=newest["status"],
                           release_id=newest["id"] or (before.release_id if same_release else None))


def _release(raw: dict) -> dict | None:
    version = _as_int(raw.get("version"))
    if version is None:
        return None
    user = raw.get("user")
    email = user.get("email") if isinstance(user, dict) else user
    return {
        "id": str(raw.get("id") or ""),
        "version": version,
        "status": str(raw.get("status") or ""),
        "description": str(raw.get("description") or ""),
        "user": str(email or ""),
        "created_at": raw.get("created_at"),
        "eligible_for_rollback": raw.get("eligible_for_rollback") is True,
    }


def _deploy(run: _Run, release: dict, releases: list[dict]) -> NormalizedAlert:
    version = release["version"]
    tags = {"release_id": release["id"], "release_version": str(version), "release_status": release["status"]}
    target = _rollback_target(run.before, release, releases)
    if target is not None:
        if target["id"]:
            tags["rollback_target_id"] = target["id"]
        tags["rollback_target_version"] = str(target["version"])
    lines = [f"By: {release['user'] or 'unknown'}"]
    if release["description"]:
        lines.append(release["description"])
    lines.append(f"Status: {release['status'] or 'unknown'}")
    if target is not None:
        lines.append(f"Rollback target: v{target['version']}")
    return run.alert(
        kind="deploy", severity="info", fingerprint=f"heroku:release:{run.app}:v{version}",
        title=f"🚀 New Deploy Detected: {run.app} v{version}", description="\n".join(lines),
        link=f"{DASHBOARD_URL}{run.app}/activity", occurred_at=_when(release, run.obs.observed_at),
        event_id=release["id"] or None, tags={key: value for key, value in tags.items() if value},
    )


def _rollback_target(before: AppState, release: dict, releases: list[dict]) -> dict | None:
    """The newest older release that succeeded and may be rolled back to.

    A webhook carries only the new release, so then the previous newest release in the state is
    used if it succeeded (its eligibility is unknown; Heroku refuses the rollback if it is not)."""
    candidates = [r for r in releases if r["version"] < release["version"]
                  and r["status"] == "succeeded" and r["eligible_for_rollback"]]
    if candidates:
        return max(candidates, key=lambda r: r["version"])
    if (before.release_version is not None and before.release_version < release["version"]
            and before.release_status == "succeeded"):
        return {"id": before.release_id or "", "version": before.release_version}
    return None


def _release_failed(run: _Run, release: dict) -> NormalizedAlert:
    version = release["version"]
    lines = [f"By: {release['user'] or 'unknown'}"]
    if release["description"]:
        lines.append(release["description"])
    return run.alert(
        kind="release_failed", severity="high", fingerprint=f"heroku:release-failed:{run.app}:v{version}",
        title=f"❌ Release Failed: {run.app} v{version}", description="\n".join(lines),
        link=f"{DASHBOARD_URL}{run.app}/activity", occurred_at=run.obs.observed_at,
        tags={key: value for key, value in {"release_id": release["id"], "release_version": str(version),
                                            "release_status": "failed"}.items() if value},
    )


def _when(release: dict, default: datetime) -> datetime:
    value = release.get("created_at")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return default


# --- config vars ------------------------------------------------------------------------------------------


def _detect_config(run: _Run) -> None:
    now = run.obs.config_digest
    if now is None:
        return
    old = run.before.config_digest
    added = sorted(set(now) - set(old))
    removed = sorted(set(old) - set(now))
    changed = sorted(name for name in set(now) & set(old) if now[name] != old[name])
    run.changes["config_digest"] = dict(now)
    if added or removed or changed:
        parts = [("Added", added), ("Removed", removed), ("Changed", changed)]
        # Names and time only: nothing derived from a value may reach a fingerprint or a message.
        change = json.dumps([run.app, run.obs.observed_at.isoformat(), added, removed, changed])
        short_hash = hashlib.sha256(change.encode("utf-8")).hexdigest()[:12]
        run.event("config", run.alert(
            kind="config", severity="medium", fingerprint=f"heroku:config:{run.app}:{short_hash}",
            title=f"⚙️ Config Vars Changed: {run.app}",
            description="\n".join(f"{label}: {', '.join(names)}" for label, names in parts if names)
            + "\n(names only; values are never shown)",
            tags={label.lower(): ", ".join(names) for label, names in parts if names},
        ))
    run.saw_snapshot("config")


# --- add-ons ----------------------------------------------------------------------------------------------


def _detect_addons(run: _Run, stuck_after: timedelta) -> None:
    obs = run.obs
    if obs.addons is None and obs.addon_events is None:
        return
    addons = {name: dict(addon) for name, addon in run.before.addons.items()}
    if obs.addons is not None:
        listed = {str(a["name"]) for a in obs.addons if a.get("name")}
        for name in sorted(set(addons) - listed):
            _addon_gone(run, name, addons.pop(name))
        for addon in obs.addons:
            _addon_seen(run, addons, addon, stuck_after)
    for event in obs.addon_events or []:
        if event.get("action") == "destroy":
            name = str(event.get("name") or "")
            if name in addons:
                _addon_gone(run, name, addons.pop(name))
        else:
            _addon_seen(run, addons, event, stuck_after)
    run.changes["addons"] = addons
    if obs.addons is not None:
        run.saw_snapshot("addons")


def _addon_seen(run: _Run, addons: dict[str, dict], addon: dict, stuck_after: timedelta) -> None:
    name = str(addon.get("name") or "")
    if not name:
        return
    state = str(addon.get("state") or "")
    known = addons.get(name)
    since = known["since"] if known is not None and known.get("state") == state else run.obs.observed_at.isoformat()
    entry = {"state": state, "service": _name_of(addon.get("service") or addon.get("addon_service")),
             "plan": _name_of(addon.get("plan")), "since": since}
    addons[name] = entry
    fingerprint = _addon_fingerprint(run, name)
    if state == "deprovisioned" and known is not None and known.get("state") != "deprovisioned":
        run.fire("addons", _addon_alert(run, name, entry, "deprovisioned", "high"))
    elif state == "provisioning" and not run.is_open(fingerprint) and \
            run.obs.observed_at - datetime.fromisoformat(since) >= stuck_after:
        run.fire("addons", _addon_alert(run, name, entry, "stuck provisioning", "medium"))
    elif state == "provisioned" and run.is_open(fingerprint):
        run.resolve(_addon_alert(run, name, entry, "provisioned", "high", status="resolved"))


def _addon_gone(run: _Run, name: str, known: dict) -> None:
    # Only the loss of a working add-on is news; one that never finished provisioning just goes away.
    if known.get("state") == "provisioned":
        run.fire("addons", _addon_alert(run, name, known, "removed", "high"))


def _addon_fingerprint(run: _Run, name: str) -> str:
    return f"heroku:addon:{run.app}:{name}"


def _addon_alert(run: _Run, name: str, addon: dict, what: str, severity: str, *,
                 status: str = "firing") -> NormalizedAlert:
    details = [f"{label}: {addon[key]}" for label, key in (("Service", "service"), ("Plan", "plan")) if addon.get(key)]
    if what == "stuck provisioning":
        details.append(f"Provisioning since {addon['since']}")
    return run.alert(
        kind="addon", severity=severity, fingerprint=_addon_fingerprint(run, name),
        title=f"🧩 Add-on {name} {what}: {run.app}", description="\n".join(details), status=status,
        tags={"addon": name, "addon_state": "removed" if what == "removed" else addon.get("state") or what,
              **({"addon_service": addon["service"]} if addon.get("service") else {})},
    )


# --- helpers ----------------------------------------------------------------------------------------------


def _name_of(value: Any) -> str:
    """A name given as text, or as the API's {"id", "name"} object (raw add-on lists work too)."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value else ""


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None

