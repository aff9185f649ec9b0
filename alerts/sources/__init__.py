"""One parser per integration: payload in, NormalizedAlerts out; no Slack, no SQL."""
