"""Errors raised by the compliance services: each has a stable code, a message and extra detail."""

from __future__ import annotations

from typing import Any


class ComplianceError(Exception):
    """Base of the compliance errors; the API renders it as ``{"code", "message", "extra"}``."""

    code = "compliance_error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.extra = extra or {}


class AuditInputError(ComplianceError):
    """An audit event was refused before anything was written (bad actor, action, target or payload)."""

    code = "audit_invalid"


class CheckpointError(ComplianceError):
    """A checkpoint could not be made, read or trusted (no signing key, bad file, bad signature)."""

    code = "audit_checkpoint_invalid"
