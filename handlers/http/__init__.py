"""Sidecar HTTP handlers (heartbeats, webhooks, API, health, metrics)."""
