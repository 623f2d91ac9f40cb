"""Prometheus metrics of sign-in and API credentials, exported by /metrics from start-up (imported in ready())."""

from __future__ import annotations

from prometheus_client import Counter

security_events_total = Counter(
    "terminal_auth_security_events_total",
    "Sign-in, role and credential events by action (auth.login, auth.otp_failed, apikey.denied, ...).",
    ["action"],
)
