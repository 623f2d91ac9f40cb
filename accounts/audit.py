"""Security events of the accounts domain, all written through one function."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from terminal.lib.client_ip import client_ip

logger = logging.getLogger("accounts.audit")


def record(*, actor, action: str, target=None, payload: Mapping[str, Any], request: HttpRequest | None = None) -> None:
    """Record ``action`` (auth.login, rbac.grant, apikey.revoked, ...) by ``actor`` on ``target``."""
    logger.info(
        action,
        extra={
            "actor": getattr(actor, "pk", actor),
            "target": str(target) if target is not None else None,
            "payload": dict(payload),
            "ip": client_ip(request) if request is not None else None,
        },
    )
