"""`pulser config export`: today's state as a config file that `pulser config check` accepts and
whose apply leaves the state as it is (every object adopted by name, nothing recreated).

Defaults are left out (a rule's mention_min_severity high, escalation_levels 1, …), so the file
reads like one a person wrote; the validators put them back.
"""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from alerts.config_file import matcher_texts
from alerts.routing import DEFAULT_MENTION_MIN_SEVERITY, RoutingRule

HEADER = (
    "# Pulser configuration (PULSER_CONFIG), exported by `pulser config export`.\n"
    "# Check it with `pulser config check FILE`; its JSON Schema is `pulser config schema`.\n"
)
_RULE_DEFAULTS: dict[str, Any] = {
    "mention_min_severity": DEFAULT_MENTION_MIN_SEVERITY, "escalation_levels": 1, "continue_matching": False,
}  # fmt: skip


def export_document(state: Mapping[str, list[dict]]) -> dict[str, Any]:
    """The file's content for `storage.managed_config.current_state`'s rows."""
    document: dict[str, Any] = {"version": 1}
    rules = [_rule(row) for row in state["routing_rules"]]
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
    return document


def export_text(state: Mapping[str, list[dict]]) -> str:
    return HEADER + yaml.safe_dump(export_document(state), sort_keys=False, allow_unicode=True, width=120)


def _rule(row: Mapping[str, Any]) -> dict[str, Any]:
    spec = RoutingRule.from_row(row).spec.as_json()
    return _compact({k: v for k, v in spec.items() if _RULE_DEFAULTS.get(k, object()) != v})


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
