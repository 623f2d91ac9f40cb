"""Log record enrichment: every line carries the current request id (or null outside a request)."""

from __future__ import annotations

import logging

from core.request_id import get_request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_request_id()
        return True
