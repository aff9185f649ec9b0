"""`pulser config export`: today's state as a config file that `pulser config check` accepts and
whose apply leaves the state as it is (every object adopted by name, nothing recreated).

Defaults are left out (a rule's mention_min_severity high, escalation_levels 1, …), so the file
reads like one a person wrote; the validators put them back. Entries name each other (a rule its
policy, a step its channel), never by id.

No secret is written: each secret setting of an outbound channel becomes
`${PULSER_<CHANNEL>_<FIELD>}`, and the file's top lists those variables, to be set (with the
values the channels have now) where Pulser runs before the file is applied.
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from alerts.config_env import escaped, variable_name
from alerts.config_file import matcher_texts
from alerts.oncall.validation import LayerSpec
from alerts.outbound.channels import KINDS
from alerts.routing import DEFAULT_MENTION_MIN_SEVERITY, RoutingRule

HEADER = (
    "# Pulser configuration (PULSER_CONFIG), exported by `pulser config export`.\n"
    "# Check it with `pulser config check FILE`; its JSON Schema is `pulser config schema`.\n"
)
SECRETS_HEADER = (
    "#\n"
    "# Secrets are not in this file. Set these environment variables where Pulser runs (and where you\n"
    "# run `pulser config check`), with the values the channels have now, before applying it:\n"
)
_RULE_DEFAULTS: dict[str, Any] = {
    "mention_min_severity": DEFAULT_MENTION_MIN_SEVERITY, "escalation_levels": 1, "continue_matching": False,
}  # fmt: skip


def export_document(state: Mapping[str, list[dict]]) -> dict[str, Any]:
    """The file's content for `storage.managed_config.current_state`'s rows."""
    document: dict[str, Any] = {"version": 1}
    policy_names = {row["id"]: row["name"] for row in state.get("escalation_policies", [])}
    rules = [_rule(row, policy_names) for row in state["routing_rules"]]
    if rules:
        document["routing_rules"] = rules
    silences = [_silence(row) for row in state["silences"]]
    if silences:
        document["silences"] = silences
    inhibitions = [
        _compact({
            "name": row["name"],
            "source_matchers": matcher_texts(row["source_matchers"]),
            "target_matchers": matcher_texts(row["target_matchers"]),
            "equal": list(row["equal"]),
        })
        for row in state["inhibition_rules"]
    ]
    if inhibitions:
        document["inhibition_rules"] = inhibitions
    if state["event_routes"]:
        document["event_routes"] = {row["event_type"]: row["channel"] for row in state["event_routes"]}
    services = [
        _compact({
            "name": row["name"], "action_type": row["action_type"], "action": dict(row["action"]),
            "default_env": row["default_env"], "requires_approval": row["requires_approval"] or None,
            "channel": row["channel"],
        })
        for row in state["deploy_services"]
    ]
    if services:
        document["deploy_services"] = services
    variables = secret_variables(state.get("outbound_channels", []))
    channels = [_channel(row, variables) for row in state.get("outbound_channels", [])]
    if channels:
        document["outbound_channels"] = channels
    schedules = [
        {"name": row["name"], "time_zone": row["time_zone"], "layers": [_layer(layer) for layer in row["layers"]]}
        for row in state.get("schedules", [])
    ]
    if schedules:
        document["schedules"] = schedules
    channel_names = {row["id"]: row["name"] for row in state.get("outbound_channels", [])}
    policies = [_policy(row, channel_names) for row in state.get("escalation_policies", [])]
    if policies:
        document["escalation_policies"] = policies
    return document


def export_text(state: Mapping[str, list[dict]]) -> str:
    variables = secret_variables(state.get("outbound_channels", []))
    listed = "".join(f"#   {name}\n" for name in variables.values())
    body = yaml.safe_dump(export_document(state), sort_keys=False, allow_unicode=True, width=120)
    return HEADER + (SECRETS_HEADER + listed if listed else "") + body


def secret_variables(channels: list[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(channel name, secret field) → the variable export writes for it, for every secret that is
    set. Two channels whose names read the same once upper-cased (ops-mail, ops mail) get _2, _3 …"""
    found: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for row in channels:
        for secret in KINDS[row["kind"]].secret_fields:
            if row["settings"].get(secret) in (None, ""):
                continue
            base = name = variable_name(row["name"], secret)
            n = 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            taken.add(name)
            found[(row["name"], secret)] = name
    return found


def _rule(row: Mapping[str, Any], policy_names: Mapping[int, str]) -> dict[str, Any]:
    spec = RoutingRule.from_row(row).spec.as_json()
    policy_id = spec.pop("escalation_policy_id", None)
    if policy_id is not None:
        spec["escalation_policy"] = policy_names[policy_id]
    return _compact({k: v for k, v in spec.items() if _RULE_DEFAULTS.get(k, object()) != v})


def _channel(row: Mapping[str, Any], variables: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    secret_fields = KINDS[row["kind"]].secret_fields
    settings = {}
    for key, value in row["settings"].items():
        if key in secret_fields and value not in (None, ""):
            settings[key] = "${" + variables[(row["name"], key)] + "}"
        else:
            settings[key] = escaped(value)
    return _compact({"name": row["name"], "kind": row["kind"], "settings": settings})


def _layer(row: Mapping[str, Any]) -> dict[str, Any]:
    shown = LayerSpec.from_row(row).as_json()
    shown.pop("kind")  # members or an ical_url say which
    return _compact(shown)


def _policy(row: Mapping[str, Any], channel_names: Mapping[int, str]) -> dict[str, Any]:
    steps = []
    for step in row["steps"]:
        shown = {"kind": step["kind"], "wait_minutes": step["wait_minutes"], "target": step["target"],
                 "channel": channel_names.get(step["channel_id"]) if step["channel_id"] else None,
                 "mention": step["mention"], "min_severity": step["min_severity"]}
        steps.append(_compact(shown))
    return _compact({"name": row["name"], "repeat": row["repeat"] or None, "steps": steps})


def _silence(row: Mapping[str, Any]) -> dict[str, Any]:
    return _compact({
        "matchers": matcher_texts(row["matchers"]),
        "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(),
        "comment": row["comment"],
        "created_by": row["created_by"],
    })


def _compact(entry: dict[str, Any]) -> dict[str, Any]:
    """Without the keys that say nothing: None, empty text, lists and mappings."""
    return {k: v for k, v in entry.items() if v not in (None, "", [], {})}
