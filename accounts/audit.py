"""Security events of the accounts domain, all written to the audit trail through one function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from accounts.metrics import security_events_total
from audit.services import audit_record
from core.client_ip import client_ip


def record(
    *,
    actor,
    action: str,
    target=None,
    payload: Mapping[str, Any],
    request: HttpRequest | None = None,
    ip: str | None = None,
) -> None:
    """Append ``action`` (auth.login, rbac.grant, apikey.revoked, ...) by ``actor`` on ``target``.

    ``actor`` is a user or a label such as ``"anonymous"``; the client address comes from the
    request (through the trusted proxies), else ``ip``, and the request id from the request being served.
    """
    audit_record(
        actor=actor,
        action=action,
        target=target,
        payload=payload,
        ip=client_ip(request) if request is not None else ip,
    )
    security_events_total.labels(action=action).inc()
