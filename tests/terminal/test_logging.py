import json
import logging

from core.request_id import reset_request_id, set_request_id


def test_a_log_line_is_one_json_object_carrying_the_request_id():
    from django.conf import settings

    config = settings.LOGGING
    from pythonjsonlogger.json import JsonFormatter

    from core.logging import RequestIdFilter

    fmt = config["formatters"]["json"]
    formatter = JsonFormatter(fmt["fmt"], rename_fields=fmt["rename_fields"], timestamp=fmt["timestamp"])
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, "order placed", None, None)
    token = set_request_id("req-abcdef123")
    try:
        RequestIdFilter().filter(record)
    finally:
        reset_request_id(token)
    line = formatter.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "order placed"
    assert parsed["request_id"] == "req-abcdef123"
    assert parsed["level"] == "INFO" and parsed["logger"] == "orders"
    assert parsed["time"].endswith("+00:00")


def test_a_malformed_incoming_request_id_is_replaced(client):
    response = client.get("/api/health", HTTP_X_REQUEST_ID="bad id\r\nwith spaces")
    assert response["X-Request-ID"] != "bad id\r\nwith spaces" and len(response["X-Request-ID"]) == 32
