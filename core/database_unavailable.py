"""What a request answers when the database is gone from under it: 503 ``database_unavailable``.

A primary killed mid-request, a failover to the standby, a refused connection or the pool's timeout
all surface as Django's ``OperationalError`` (or ``InterfaceError`` on a connection already closed).
They are not bugs, and a 500 reads like one; worse, a client that takes a 500 as "not placed" may
place an order twice. Whatever the request wrote may or may not have been committed before the
connection went, so the answer says how to find out: an order sent again under the same
Idempotency-Key is placed at most once. Under /api/ and /hooks/ the answer is JSON in the house shape
(``config.api`` renders it for the API's routes, ``DatabaseUnavailableMiddleware`` for the rest), a
short page elsewhere. Measured in tests/drills/test_db_failover_under_load.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from core.request_guard import JSON_PATHS, error_response

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait before sending again: a failover to the standby takes about a
# second (docs/runbooks/failover.md).
RETRY_AFTER_SECONDS = 1
DATABASE_ERRORS = (OperationalError, InterfaceError)
MESSAGE = (
    "The database did not answer. What this request wrote may or may not have been saved: send it again "
    "with the same Idempotency-Key, or look it up, before sending a new one."
)
PAGE_MESSAGE = (
    "The database did not answer. An order you just sent may or may not have been placed: check the order "
    "book in a moment before sending it again."
)


def database_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 ``database_unavailable`` with Retry-After, logged as a warning naming the error."""
    logger.warning(
        "database unavailable: %s %s: %s: %s", request.method, request.path, type(exc).__name__, str(exc).strip()
    )
    message = MESSAGE if request.path.startswith(JSON_PATHS) else PAGE_MESSAGE
    response = error_response(request, 503, "database_unavailable", message, retry_after_seconds=RETRY_AFTER_SECONDS)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A view (page, form, webhook) that raised a database connection error answers 503
    ``database_unavailable`` instead of the 500 page. Listed just before Prometheus's after-middleware,
    which counts the exception first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            return database_unavailable(request, exception)
        return None
