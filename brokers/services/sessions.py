"""A broker account's session: started by the family's sign-in (its access token sealed like the
account's credentials), ended by the broker's daily cut-off, by the broker refusing the token, or by
signing out. The only code that seals or opens a session's secrets.

A broker plug-in that acts on a sign-in (Kite loads the day's symbol master) registers a callback
with ``register_session_started``; it is called with the account after the session's transaction
commits, and its failure is logged, never the sign-in's."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils import timezone

from brokers import crypto
from brokers.models import BrokerAccount, BrokerSession
from infra.prepared import Prepared

logger = logging.getLogger(__name__)

IST = ZoneInfo("Asia/Kolkata")

SessionStarted = Callable[[BrokerAccount], None]
_on_started: dict[str, SessionStarted] = {}


def register_session_started(name: str, callback: SessionStarted) -> None:
    """Call ``callback(account)`` after every session start commits; a second call with ``name`` replaces it."""
    _on_started[name] = callback


def _session_started(account: BrokerAccount) -> None:
    for name, callback in list(_on_started.items()):
        try:
            callback(account)
        except Exception:  # the sign-in stands whatever a plug-in's follow-up does
            logger.exception("session-started callback %s failed for account %s", name, account.pk)


@dataclass(frozen=True, slots=True)
class SessionState:
    """What pages and the order path need to know of an account's session."""

    live: bool
    expires_at: datetime | None = None
    ended_reason: str = ""


def next_cutoff(after: datetime, at_ist: str) -> datetime:
    """Return the first moment after ``after`` at which the clock in India reads ``at_ist`` ("06:00")."""
    hour, minute = (int(part) for part in at_ist.split(":"))
    local = after.astimezone(IST)
    cutoff = datetime.combine(local.date(), time(hour, minute), tzinfo=IST)
    if cutoff <= local:
        cutoff += timedelta(days=1)
    return cutoff


def session_start(
    *, account: BrokerAccount, secrets: dict[str, str], expires_at: datetime, now: datetime | None = None
) -> BrokerSession:
    """Seal ``secrets`` (string values: the access token...) as the account's live session until
    ``expires_at``, replacing any earlier session; the registered session-started callbacks run
    after commit. Raises ValueError for anything but an object of strings."""
    if not isinstance(secrets, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()):
        raise ValueError("session secrets must be an object of string values")
    now = now or timezone.now()
    session = BrokerSession(account=account)
    sealed = crypto.encrypt(json.dumps(secrets, sort_keys=True).encode(), associated_data=session.secrets_binding)
    session, _ = BrokerSession.objects.update_or_create(
        account=account,
        defaults={
            "state": BrokerSession.State.LIVE,
            "secrets_ciphertext": sealed,
            "started_at": now,
            "expires_at": expires_at,
            "ended_at": None,
            "ended_reason": "",
        },
    )
    transaction.on_commit(lambda: _session_started(account))
    return session


def session_end(*, account_id: int, reason: str) -> bool:
    """End the account's live session (the broker refused its token, or the user signed out); return
    whether one was live."""
    return bool(
        BrokerSession.objects.filter(account_id=account_id, state=BrokerSession.State.LIVE).update(
            state=BrokerSession.State.ENDED, ended_at=timezone.now(), ended_reason=reason[:200]
        )
    )


def session_state(account: BrokerAccount, now: datetime | None = None) -> SessionState:
    """Return whether the account's session is live now (a session past its cut-off is not)."""
    session = BrokerSession.objects.filter(account=account).only("state", "expires_at", "ended_reason").first()
    if session is None:
        return SessionState(live=False, ended_reason="never signed in")
    now = now or timezone.now()
    if session.state != BrokerSession.State.LIVE:
        return SessionState(live=False, expires_at=session.expires_at, ended_reason=session.ended_reason)
    if session.expires_at <= now:
        return SessionState(live=False, expires_at=session.expires_at, ended_reason="expired at the broker's cut-off")
    return SessionState(live=True, expires_at=session.expires_at)


def session_counts(brokers: Iterable[str], now: datetime | None = None) -> dict[tuple[str, str], int]:
    """Count the active accounts of ``brokers`` (codes of families with a daily login) by session
    state, in one grouped query: ``{(broker, "live" | "lapsed"): n}``, both states of every code
    given present (0 included). Lapsed: no live session now (never signed in, signed out, refused
    by the broker, or past the broker's cut-off)."""
    codes = sorted(set(brokers))
    counts = {(code, state): 0 for code in codes for state in ("live", "lapsed")}
    if not codes:
        return counts
    now = now or timezone.now()
    live = Q(session__state=BrokerSession.State.LIVE, session__expires_at__gt=now)
    rows = (
        BrokerAccount.objects.filter(is_active=True, broker__in=codes)
        .annotate(session_now=Case(When(live, then=Value("live")), default=Value("lapsed"), output_field=CharField()))
        .values_list("broker", "session_now")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for broker, state, n in rows:
        counts[(broker, state)] = n
    return counts


# Read for every order a network broker places (twice: before recording it and before sending it),
# compiled once: the queryset's compilation cost several times the statement (bench/orders.py --broker kite).
_SESSION = Prepared(lambda p: BrokerSession.objects.filter(account_id=p.account)[:1], account=int)


def session_secrets(account: BrokerAccount, now: datetime | None = None) -> dict[str, str] | None:
    """Return the live session's secrets, or None when the account has no live session."""
    session = _SESSION.first(account=account.pk)
    now = now or timezone.now()
    if session is None or session.state != BrokerSession.State.LIVE or session.expires_at <= now:
        return None
    return json.loads(crypto.decrypt(session.secrets_ciphertext, associated_data=session.secrets_binding))
