"""Signing a broker account in to its broker for the day. Families with a "totp" or "api_key" login
sign in at once when Connect is pressed, with the account's stored credentials (``login_direct``).
For a "redirect" login (Kite Connect, Upstox, Fyers), Connect sends the trader to the broker's login
page with a signed state naming the account; the broker sends them back to the callback, where the
family turns its parameters into the account's session (sealed, until the broker's cut-off). Either
way the sign-in is audited. The family's steps are its adapter's: this view knows no broker."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.services import audit_record
from brokers.adapters.base import BrokerError, SignIn
from brokers.adapters.registry import UnknownBroker, family
from brokers.crypto import SecretError
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.selectors import account_get_for_user
from brokers.services.sessions import session_start
from core.client_ip import client_ip

_SALT = "broker-session-login"
_MAX_AGE = 600  # seconds a sign-in at the broker may take


@login_required
@require_POST
def connect(request: HttpRequest, account_id: int) -> HttpResponse:
    """Start the account's sign-in at its broker (POST: the page's Connect or Re-login button)."""
    try:
        account = account_get_for_user(user=request.user, account_id=account_id, access="trade")
        adapter_class = family(account.broker)
    except (BrokerAccountNotFound, BrokerAccountForbidden, UnknownBroker) as error:
        # Refused with its status (404, 403, 422), as every page refuses an account the user may not use.
        return render(request, "accounts/error.html", {"error": error}, status=error.status)
    if adapter_class.login is None:
        messages.error(request, f"{account.label} needs no sign-in at its broker.")
        return redirect("home")
    if adapter_class.login.kind != "redirect":  # "totp", "api_key": signed in here with the stored credentials
        try:
            sign_in = adapter_class.login_direct(account)
        except SecretError as error:
            return _failed(request, account, _unreadable(account, error))
        except (BrokerError, ValueError) as error:
            return _failed(request, account, f"The broker refused the sign-in: {getattr(error, 'message', error)}")
        return _started(request, account, sign_in)
    state = signing.dumps({"account": account.pk, "user": request.user.pk}, salt=_SALT)
    try:
        return HttpResponseRedirect(adapter_class.login_start(account, state=state))
    except SecretError as error:
        return _failed(request, account, _unreadable(account, error))
    except ValueError as error:
        messages.error(request, str(error))
        return redirect("home")


@login_required
@require_GET
def callback(request: HttpRequest, broker: str) -> HttpResponse:
    """The broker's redirect after its login page: the account's session starts here."""
    try:
        state = signing.loads(request.GET.get("state", ""), salt=_SALT, max_age=_MAX_AGE)
        if state.get("user") != request.user.pk:
            raise signing.BadSignature("started by another user")
        account = account_get_for_user(user=request.user, account_id=int(state["account"]), access="trade")
    except (signing.BadSignature, BrokerAccountNotFound, BrokerAccountForbidden, KeyError, TypeError, ValueError):
        return _failed(request, None, "The sign-in link is invalid or has expired: press Connect again.")
    if account.broker != broker:
        return _failed(request, account, "The broker's answer does not belong to this account.")
    try:
        sign_in = family(broker).login_finish(account, request.GET)
    except SecretError as error:
        return _failed(request, account, _unreadable(account, error))
    except (BrokerError, ValueError) as error:
        return _failed(request, account, f"The broker refused the sign-in: {getattr(error, 'message', error)}")
    return _started(request, account, sign_in)


def _started(request: HttpRequest, account, sign_in: SignIn) -> HttpResponse:
    """Store the session (sealed), audit the sign-in, and send the trader back to the account."""
    with transaction.atomic():
        session_start(account=account, secrets=sign_in.secrets, expires_at=sign_in.expires_at)
        audit_record(
            actor=request.user,
            action="broker.session_started",
            target=account,
            payload={
                "broker": account.broker,
                "expires_at": sign_in.expires_at.isoformat(),
                "broker_user": sign_in.broker_user,
            },
            ip=client_ip(request),
        )
    # Shown in India's time, whatever zone the family's expiry came in (Kite: 06:00 IST).
    until = timezone.localtime(sign_in.expires_at)
    messages.success(request, f"{account.label} is signed in to its broker until {until:%d %b %H:%M} IST.")
    return redirect(f"/?account={account.pk}")


def _unreadable(account, error: SecretError) -> str:
    """The message for stored credentials that cannot be opened (unknown or retired key, tampered)."""
    return f"The stored credentials of {account.label} cannot be read ({error.code}): enter them again."


def _failed(request: HttpRequest, account, message: str) -> HttpResponse:
    audit_record(
        actor=request.user,
        action="broker.session_refused",
        target=account,
        payload={"message": message},
        ip=client_ip(request),
    )
    messages.error(request, message)
    return redirect("home")
