"""The console handler's redaction: no token, secret or checksum and no request's query string in a
log line, whichever logger wrote it."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from core.logging import RedactSecretsFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /brokers/kite/callback/?status=success&request_token=abc123&state=x",
            "GET /brokers/kite/callback/?status=success&request_token=[redacted]&state=x",
        ),
        ("api_key=k&access_token=tok checksum=ff00", "api_key=k&access_token=[redacted] checksum=[redacted]"),
        ('{"order_id": "1", "checksum": "ab12"}', '{"order_id": "1", "checksum": "[redacted]"}'),
        ("{'public_token': 'p', 'x': 'y'}", "{'public_token': '[redacted]', 'x': 'y'}"),
        ("kite postback refused: postback_checksum_invalid", "kite postback refused: postback_checksum_invalid"),
        ("my_access_token=1 is not ours", "my_access_token=1 is not ours"),
    ],
)
def test_secret_values_are_redacted_and_nothing_else(text, expected):
    assert redact(text) == expected


def _record(msg, *args, **extra):
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_request_attached_to_a_record_keeps_its_method_and_path_only():
    request = RequestFactory().get("/brokers/kite/callback/", {"request_token": "abc123", "state": "s"})
    record = _record("Method Not Allowed (%s): %s", "GET", request.path, request=request, status_code=405)
    assert RedactSecretsFilter().filter(record)
    assert record.request == "<WSGIRequest: GET '/brokers/kite/callback/'>"
    assert record.getMessage() == "Method Not Allowed (GET): /brokers/kite/callback/"


def test_a_message_with_a_secret_in_its_arguments_is_written_redacted():
    record = _record("calling %s", "https://api.kite.trade/session/token?api_key=k&access_token=secret1")
    assert RedactSecretsFilter().filter(record)
    assert "secret1" not in record.getMessage() and "access_token=[redacted]" in record.getMessage()


def test_the_console_handler_applies_the_redaction():
    handler = next(h for h in logging.getLogger().handlers if type(h.formatter).__name__ == "JsonFormatter")
    assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters)
