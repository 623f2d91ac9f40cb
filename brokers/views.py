"""The organisation's broker accounts page (Owner and Admin): each account with its broker, mode
(paper or live) and session at the broker, Connect for families with a daily login, and adding an
account with the credentials its family needs (sealed at once, never shown again).

It lives in brokers, not accounts, for the same reason as the risk limits page lives in rms: brokers
reads accounts (the organisation's gate), and accounts must not reach up into brokers' services."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST
from django_otp.decorators import otp_required

from accounts.selectors import organisation_get_for_user
from brokers import catalogue
from brokers.errors import BrokerAccountDuplicate, BrokerAccountInvalid, BrokerAccountNotFound
from brokers.forms import BrokerAccountForm, CredentialsForm, credential_field_name
from brokers.models import BrokerAccount
from brokers.selectors import organisation_account_list
from brokers.services.accounts import broker_account_create, broker_account_credentials_replace
from core.client_ip import client_ip
from core.errors import ApplicationError

verified_required = otp_required(if_configured=False)
TEMPLATE = "brokers/accounts.html"


def _page(request: HttpRequest, organisation, membership, form: BrokerAccountForm, *, error=None, status=200):
    counts = catalogue.status_counts()
    context = {
        "organisation": organisation,
        "membership": membership,
        "rows": organisation_account_list(organisation=organisation),
        "form": form,
        "error": error,
        "registry": list(catalogue.entries().values()),
        "registry_counts": counts,
        "registry_total": sum(counts.values()),
    }
    return render(request, TEMPLATE, context, status=status)


def _refused(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return render(request, "accounts/error.html", {"error": exc}, status=exc.status)


@verified_required
@require_GET
def accounts(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return _refused(request, exc)
    return _page(request, organisation, membership, BrokerAccountForm())


@verified_required
@sensitive_post_parameters()  # the API secret never reaches an error report
@require_POST
def account_add(request: HttpRequest, slug: str) -> HttpResponse:
    """Add an account. Refused input comes back in the form: 400 for its shape, 422 for a missing
    credential or bad client code, 409 for a client code the broker already has."""
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return _refused(request, exc)
    form = BrokerAccountForm(request.POST)
    if not form.is_valid():
        return _page(request, organisation, membership, form, status=400)
    try:
        account = broker_account_create(
            actor=request.user,
            organisation=organisation,
            broker=form.cleaned_data["broker"],
            label=form.cleaned_data["label"],
            client_code=form.cleaned_data["client_code"],
            credentials=form.credentials(),
            ip=client_ip(request),
        )
    except (BrokerAccountInvalid, BrokerAccountDuplicate) as exc:
        field = exc.extra.get("field")
        if field not in form.fields:
            field = credential_field_name(form.cleaned_data["broker"], field) if field else None
        form.add_error(field if field in form.fields else None, exc.message)
        return _page(request, organisation, membership, form, error=exc, status=exc.status)
    messages.success(request, f"{account.label} was added. Its credentials are stored encrypted and never shown.")
    return redirect(reverse("brokers:accounts", args=[organisation.slug]) + f"#broker-account-{account.pk}")


@verified_required
@sensitive_post_parameters()
def account_credentials(request: HttpRequest, slug: str, account_id: int) -> HttpResponse:
    """Replace an account's credentials (a rotated API secret, or ones that no longer open): GET the
    form, POST them. Different credentials end the account's session: it signs in again with them.
    404 for an account of another organisation, 400 for the form's shape, 422 for a missing credential."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
        account = BrokerAccount.objects.filter(organisation=organisation, pk=account_id).first()
        if account is None:
            raise BrokerAccountNotFound("No such broker account.")
    except ApplicationError as exc:
        return _refused(request, exc)
    form = CredentialsForm(request.POST or None, broker=account.broker)
    context = {"organisation": organisation, "membership": membership, "account": account, "form": form}
    if request.method == "GET":
        return render(request, "brokers/credentials.html", context)
    if not form.is_valid():
        return render(request, "brokers/credentials.html", context, status=400)
    try:
        stored = broker_account_credentials_replace(
            actor=request.user, account=account, credentials=form.credentials(), ip=client_ip(request)
        )
    except BrokerAccountInvalid as exc:
        field = exc.extra.get("field")
        form.add_error(field if field in form.fields else None, exc.message)
        return render(request, "brokers/credentials.html", {**context, "error": exc}, status=exc.status)
    if stored:
        messages.success(request, f"{account.label}'s credentials were replaced: sign it in again with them.")
    else:
        messages.info(request, f"{account.label} signs in without credentials: nothing was stored.")
    return redirect(reverse("brokers:accounts", args=[organisation.slug]) + f"#broker-account-{account.pk}")
