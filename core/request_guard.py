"""One gate for input no view can take: a NUL byte anywhere a client can put text.

PostgreSQL's text types cannot hold NUL, and psycopg refuses such a parameter with an error that
would surface as a 500 from whichever query first met it (an order's tag, a search box, a slug, a
username). No input of this terminal has a use for NUL, so ``RequestGuardMiddleware`` refuses a
request that carries one, in the path, the query string, a form body or a JSON body (as a raw byte or
the ``\\u0000`` escape) or a multipart form's fields, with 400 ``nul_byte`` before any view runs.
Uploaded files are left to their views.

``error_response`` renders an error in the house shape: JSON ``{"code", "message", "extra"}`` under
``/api/``, a short page elsewhere. The project's 400/403/404/500 handlers answer ``/api/`` in it (pages
keep Django's), so a refusal Django raises before a view (an oversized body, an unknown route) reads
like every other API error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.views import defaults

# \u0000 as a JSON escape: preceded by an even number of backslashes (an odd number escapes the "\").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "text/plain")
# Paths whose callers are programs, answered in JSON: the API and the strategies' webhooks.
JSON_PATHS = ("/api/", "/hooks/")


def error_response(request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    """Return the error as JSON under /api/ and /hooks/ and as a small HTML page elsewhere."""
    if request.path.startswith(JSON_PATHS):
        return JsonResponse({"code": code, "message": message, "extra": extra}, status=status)
    page = f"<!doctype html><title>{status}</title><h1>{escape(message)}</h1><p>Code: {escape(code)}</p>"
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")


def _carries_nul(request: HttpRequest) -> str | None:
    """Return where a NUL byte is (path, query, body), or None."""
    if "\x00" in request.path:
        return "path"
    if b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return "query"
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type.endswith("+json") or content_type in _TEXT_BODIES:
        body = request.body  # bounded by DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig is a 400)
        if b"\x00" in body:
            return "body"
        if content_type == "application/x-www-form-urlencoded" and b"%00" in body:
            return "body"
        if b"\\u0000" in body and _JSON_NUL.search(body):
            return "body"
    elif content_type == "multipart/form-data" and _form_fields_carry_nul(request):
        return "body"
    return None


def _form_fields_carry_nul(request: HttpRequest) -> bool:
    """The fields of a multipart form, not its files, parsed as the CSRF check would parse them."""
    try:
        fields = request.POST
    except Exception:  # a malformed body: Django marks it empty and its own handling answers
        return False
    return any("\x00" in value for _, values in fields.lists() for value in values)


class RequestGuardMiddleware:
    """Refuse a request carrying a NUL byte with 400 ``nul_byte``, before any view or query runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = _carries_nul(request)
        if where is not None:
            return error_response(
                request, 400, "nul_byte", "The request contains a NUL character, which no field accepts.", where=where
            )
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not request.path.startswith(JSON_PATHS):
        return defaults.bad_request(request, exception)
    name = type(exception).__name__
    if name == "RequestDataTooBig":
        return error_response(request, 400, "body_too_large", "The request body is larger than this server accepts.")
    if name == "TooManyFieldsSent":
        return error_response(request, 400, "too_many_fields", "The request has more fields than this server accepts.")
    return error_response(request, 400, "bad_request", "The request is malformed.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not request.path.startswith(JSON_PATHS):
        return defaults.permission_denied(request, exception)
    return error_response(request, 403, "forbidden", "You may not do this.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(JSON_PATHS):
        return defaults.page_not_found(request, exception)
    return error_response(request, 404, "not_found", "No such route or object.")


def server_error(request: HttpRequest) -> HttpResponse:
    if not request.path.startswith(JSON_PATHS):
        return defaults.server_error(request)
    return error_response(request, 500, "server_error", "Something went wrong on our side; it has been logged.")
