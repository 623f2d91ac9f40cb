"""A client of the Telegram Bot API (https://core.telegram.org/bots/api): ``getMe`` to verify a bot
token, ``sendMessage`` to a chat. Every answer is ``{"ok": bool, "result" | "description",
"error_code", "parameters"}``; the base URL is ``settings.ALERTS_TELEGRAM_API_URL``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from django.conf import settings

TOKEN_SHAPE = re.compile(r"^[0-9]{3,12}:[A-Za-z0-9_-]{30,64}$")
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class TelegramAnswer:
    ok: bool
    result: dict | None
    description: str
    error_code: int | None
    retry_after: int | None = None

    @property
    def retryable(self) -> bool:
        """Worth another try later: rate limited, the server's own trouble, or no answer at all."""
        return self.error_code is None or self.error_code == 429 or self.error_code >= 500


class TelegramClient:
    def __init__(self, token: str, *, base_url: str | None = None) -> None:
        self._token = token
        self._base = (base_url or settings.ALERTS_TELEGRAM_API_URL).rstrip("/")

    def get_me(self) -> TelegramAnswer:
        """The bot's own user (``result["username"]``) when the token is good."""
        return self._call("getMe", None)

    def send_message(self, *, chat_id: str, text: str) -> TelegramAnswer:
        return self._call("sendMessage", {"chat_id": chat_id, "text": text, "disable_web_page_preview": True})

    def _call(self, method: str, payload: dict | None) -> TelegramAnswer:
        url = f"{self._base}/bot{self._token}/{method}"
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                response = client.post(url, json=payload) if payload is not None else client.get(url)
        except httpx.HTTPError as exc:
            return TelegramAnswer(False, None, f"Telegram did not answer ({type(exc).__name__}).", None)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return TelegramAnswer(False, None, f"Telegram answered HTTP {response.status_code}.", response.status_code)
        parameters: dict = body["parameters"] if isinstance(body.get("parameters"), dict) else {}
        result = body.get("result") if isinstance(body.get("result"), dict) else None
        return TelegramAnswer(
            ok=body.get("ok") is True and response.status_code == 200,
            result=result,
            description=str(body.get("description", ""))[:200],
            error_code=body.get("error_code") if isinstance(body.get("error_code"), int) else response.status_code,
            retry_after=parameters.get("retry_after") if isinstance(parameters.get("retry_after"), int) else None,
        )
