"""Log record enrichment and redaction, applied by the console handler (settings.LOGGING) to every
record of every logger:

- every line carries the current request id (or null outside a request);
- no line carries a secret: a request attached to a record (``django.request`` and
  ``django.security`` pass ``extra={"request": ...}``, which the JSON formatter writes out, and whose
  repr holds the full query string: a broker login's callback carries its ``request_token`` there)
  is written as its method and path only, and token-bearing parameters (``request_token=...``,
  ``"checksum": "..."``) are redacted from the message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from core.request_id import get_request_id

REDACTED = "[redacted]"
# Names whose values are secrets wherever they appear: broker tokens, secrets and signatures.
SECRET_NAMES = ("access_token", "request_token", "refresh_token", "public_token", "api_secret", "checksum")
_NAMES = "|".join(SECRET_NAMES)
# name=value in a query string or a form body; "name": "value" (JSON) or 'name': 'value' (a dict's repr).
_QUERY = re.compile(rf"((?<![A-Za-z0-9_])(?:{_NAMES})=)[^&\s\"'>]+", re.IGNORECASE)
_MAPPING = re.compile(rf"""((["'])(?:{_NAMES})\2\s*:\s*)(["'])[^"']*\3""", re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with the values of secret parameters and fields replaced by ``[redacted]``."""
    return _MAPPING.sub(rf"\1\3{REDACTED}\3", _QUERY.sub(rf"\1{REDACTED}", text))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_request_id()
        return True


class RedactSecretsFilter(logging.Filter):
    """Keep secrets out of the log line (see the module docstring); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = _describe(request)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the formatter's own error handling
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _describe(request: Any) -> str:
    """A request as a log line may show it: its class, method and path, never its query string."""
    method = getattr(request, "method", "") or ""
    path = getattr(request, "path", "") or ""
    return f"<{type(request).__name__}: {method} {path!r}>"
