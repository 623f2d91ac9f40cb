"""Prometheus metrics of sign-in and API credentials, exported by /metrics from start-up (imported in ready())."""

from __future__ import annotations

from prometheus_client import Counter

security_events_total = Counter(
    "terminal_auth_security_events_total",
    "Sign-in, role and credential events by action (auth.login, auth.otp_failed, apikey.denied, ...).",
    ["action"],
)
failures_refused_total = Counter(
    "terminal_auth_failures_refused_total",
    "Requests refused with 429 too_many_failures, unexamined, because their source failed too often.",
)
failures_uncounted_total = Counter(
    "terminal_auth_failures_uncounted_total",
    "Failed credentials refused with 503 rate_limiter_unavailable because the counters could not be reached.",
)
