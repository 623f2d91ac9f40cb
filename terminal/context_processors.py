"""What every signed-in page shows beside its own content: the user's broker sessions (accounts whose
broker has a daily login), live or lapsed with a one-click sign-in again."""

from __future__ import annotations

from django.http import HttpRequest

from brokers.selectors import AccountSession, account_session_list_for_user


class _Sessions:
    """The request user's broker sessions, read on first use by the page (one query) and kept for the
    rest of the request; a fragment that does not show them (an HTMX partial) costs nothing."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request
        self._sessions: list[AccountSession] | None = None

    def _read(self) -> list[AccountSession]:
        if self._sessions is None:
            self._sessions = account_session_list_for_user(user=self._request.user)
        return self._sessions

    def __iter__(self):
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __bool__(self) -> bool:
        return bool(self._read())

    @property
    def lapsed(self) -> int:
        return sum(1 for session in self._read() if not session.live)


def broker_sessions(request: HttpRequest) -> dict[str, object]:
    """``broker_sessions``: the request user's broker sessions (lazy, at most one query per request)."""
    sessions = getattr(request, "_broker_sessions", None)
    if sessions is None:
        sessions = request._broker_sessions = _Sessions(request)  # type: ignore[attr-defined]
    return {"broker_sessions": sessions}
