"""A local Telegram Bot API server on loopback, speaking the documented JSON
(https://core.telegram.org/bots/api#making-requests): ``/bot<token>/getMe`` and
``/bot<token>/sendMessage``, answered ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code", "description"[, "parameters": {"retry_after"}]}``. One token is valid; faults are queued
per method (``fail_next``) and every request is recorded."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALID_TOKEN = "123456789:AAHvalidTokenForTheLocalBotApiServer_x"

FAULTS = {
    "rate_limited": (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    ),
    "server_error": (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    "chat_not_found": (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
}


@dataclass
class Call:
    method: str
    token: str
    body: dict


@dataclass
class BotApiServer:
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    message_id: int = 0

    def start(self) -> BotApiServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._answer({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = None
                self._answer(body)

            def _answer(self, body) -> None:
                status, answer = server.handle(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fail_next(self, method: str, fault: str, times: int = 1) -> None:
        self.faults.setdefault(method, []).extend([fault] * times)

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.method == "sendMessage"]

    def handle(self, path: str, body) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = parts[0][3:], parts[1]
        if body is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid JSON"}
        self.calls.append(Call(method, token, body))
        if token != VALID_TOKEN:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        queued = self.faults.get(method)
        if queued:
            return FAULTS[queued.pop(0)]
        if method == "getMe":
            return 200, {
                "ok": True,
                "result": {"id": 123456789, "is_bot": True, "first_name": "Alerts", "username": "acme_alerts_bot"},
            }
        if method == "sendMessage":
            if not body.get("chat_id") or not isinstance(body.get("text"), str) or not body["text"]:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            self.message_id += 1
            return 200, {
                "ok": True,
                "result": {
                    "message_id": self.message_id,
                    "chat": {"id": body["chat_id"]},
                    "date": 0,
                    "text": body["text"],
                },
            }
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
