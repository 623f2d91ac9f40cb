"""Prometheus metrics of the audit trail, exported by /metrics from start-up (imported in ready())."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

audit_events_total = Counter(
    "terminal_audit_events_total",
    "Audit events committed, by the first part of the action (order, rms, auth, ...).",
    ["action_prefix"],
)
audit_chain_length = Gauge(
    "terminal_audit_chain_length",
    "Sequence number of the newest event of each chain this process has committed or verified.",
    ["chain"],
)
audit_last_verification_ok = Gauge(
    "terminal_audit_last_verification_ok",
    "1 if the last chain verification in this process passed, 0 if it found a break.",
)
audit_last_verification_timestamp = Gauge(
    "terminal_audit_last_verification_timestamp_seconds",
    "Unix time at which the last chain verification in this process finished.",
)
audit_last_checkpoint_seq = Gauge(
    "terminal_audit_last_checkpoint_seq",
    "Sequence number recorded by the newest signed checkpoint this process wrote.",
)
