"""The holdings page: the account's delivery holdings at its broker (``orders.reports.holdings``, through
the broker contract), with average cost, last price, current value, P&L and the day's change. Last prices
arrive live over the quotes socket; the row's value, P&L and day change follow them in the page
(static/js/holdings.js), and the panel re-renders from the server every few seconds."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from brokers.selectors import account_list_for_user
from core.errors import ApplicationError
from orders.reports.holdings import Holdings, holdings_get
from terminal.views.trading import _account_for_panel, current_account

TEMPLATE = "terminal/holdings.html"


@login_required
@require_GET
def holdings_home(request: HttpRequest) -> HttpResponse:
    account = current_account(request)
    if account is None:
        return render(request, TEMPLATE, {"account": None})
    return redirect("holdings", account_id=account.pk)


def _context(request: HttpRequest, account) -> dict:
    """The account's holdings, or the broker's refusal (signed out, unreachable) to show instead."""
    try:
        return {"account": account, "holdings": holdings_get(account=account), "error": None}
    except ApplicationError as error:
        return {"account": account, "holdings": Holdings([]), "error": error}


@login_required
@require_GET
def holdings_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account_for_panel(request, account_id, "view")
    context = _context(request, account) | {
        "accounts": list(account_list_for_user(user=request.user, access="view").order_by("pk"))
    }
    return render(request, TEMPLATE, context)


@login_required
@require_GET
def holdings_panel(request: HttpRequest, account_id: int) -> HttpResponse:
    """The holdings table alone (the page's refresh and its polling fallback)."""
    account = _account_for_panel(request, account_id, "view")
    return render(request, f"{TEMPLATE}#holdings", _context(request, account))
