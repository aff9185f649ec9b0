"""The domain: NormalizedAlert, sources, grouping, routing, silences, escalation, the notifier."""
