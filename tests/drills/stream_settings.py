"""The terminal's settings with the broker endpoints a drill points at its local servers
(``DRILL_BROKER_ENDPOINTS``, JSON: ``{"fyers": {"order_ws": "ws://127.0.0.1:PORT/trade/v3"}}``), for
a management command run as its own process (``BROKER_ENDPOINTS`` has no environment variable)."""

import json
import os

from config.settings import *  # noqa: F403

BROKER_ENDPOINTS = json.loads(os.environ.get("DRILL_BROKER_ENDPOINTS", "{}"))
