"""Escalation policies: who is paged, how, and when, until somebody acknowledges.

- `policies` — a policy's steps as people write them, checked;
- `lifecycle` — what posting, acknowledging, resolving and reopening an incident do to its runs;
- `engine` — the sweep that takes due steps and walks people through their notification rules.

Deliveries beyond Slack go through the outbound outbox (`alerts/outbound/dispatch.py`).
"""
