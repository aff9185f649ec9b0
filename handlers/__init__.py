"""Thin entry points: parse, authorize, call a service, reply."""
