"""Scheduled and background work: the ledger worker, and later the heartbeat watcher, pollers, sweeps."""
