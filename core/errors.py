"""The base of every domain error: a machine-readable code, a human message and details.

Each app subclasses it in its own ``errors.py``. The API renders it as
``{"code", "message", "extra"}`` with the class's 4xx status; HTMX views render the message into
the form fragment.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code: str = "application_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "extra": self.extra}
