"""The organisation's risk limits page (Owner and Admin): one form per scope, saved one at a time."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_otp.decorators import otp_required

from accounts.selectors import organisation_get_for_user
from core.client_ip import client_ip
from core.errors import ApplicationError
from rms.errors import RiskLimitInvalid
from rms.models import LIMIT_FIELDS, LimitScope
from rms.selectors import limit_choices, risk_limit_scope_find, risk_limit_scopes
from rms.services import risk_limit_set

verified_required = otp_required(if_configured=False)
TEMPLATE = "rms/limits.html"
SET_FIELDS = ("allowed_exchanges", "allowed_products")  # ticked codes; none ticked: no restriction


NUMBER_FIELDS = tuple(field for field in LIMIT_FIELDS if field not in SET_FIELDS)
SAVE_ROUTES = {
    LimitScope.ORGANISATION: "rms:limits-organisation",
    LimitScope.ACCOUNT: "rms:limits-account",
    LimitScope.USER: "rms:limits-member",
}


def _form(organisation, entry: dict) -> dict:
    """Add to a scope (rms.selectors.risk_limit_scopes) what its form shows: where it posts, and each
    input with its value (saved, or as typed when refused) and its error."""
    values, errors = entry["values"], entry.get("errors", {})
    args = [organisation.slug] + ([entry["target_id"]] if entry["target_id"] is not None else [])
    entry["action"] = reverse(SAVE_ROUTES[entry["scope"]], args=args)
    entry["inputs"] = [
        {"name": f, "label": LIMIT_FIELDS[f], "value": values.get(f), "error": errors.get(f)} for f in NUMBER_FIELDS
    ]
    entry["sets"] = [
        {
            "name": f,
            "label": LIMIT_FIELDS[f],
            "choices": [(code, code in (values.get(f) or ())) for code in limit_choices(f)],
            "error": errors.get(f),
        }
        for f in SET_FIELDS
    ]
    return entry


def _page_context(organisation, membership, scopes: dict) -> dict:
    for entry in (scopes["organisation"], *scopes["accounts"], *scopes["members"]):
        _form(organisation, entry)
    everyone = []
    for field, label in LIMIT_FIELDS.items():
        value = scopes["everyone"][field]
        everyone.append((label, ", ".join(value) if isinstance(value, list) else value))
    return {"organisation": organisation, "membership": membership, "scopes": scopes, "everyone": everyone}


def _posted_values(request: HttpRequest) -> dict:
    """Every limit of the form: numbers as typed, the ticked codes (none ticked: no restriction)."""
    values = {field: request.POST.get(field, "") for field in LIMIT_FIELDS if field not in SET_FIELDS}
    values.update({field: request.POST.getlist(field) for field in SET_FIELDS})
    return values


@verified_required
@require_GET
def limits(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    return render(
        request, TEMPLATE, _page_context(organisation, membership, risk_limit_scopes(organisation=organisation))
    )


@verified_required
@require_POST
def limits_save(
    request: HttpRequest, slug: str, scope: str, account_id: int | None = None, user_id: int | None = None
) -> HttpResponse:
    """Save one scope's limits (the organisation's, an account's or a member's). HTMX gets that scope's
    form back: the saved values, or what was typed with each refused field marked (422). A plain POST
    is redirected to the page, or gets the page with the form's errors (422)."""
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    target_id = account_id if account_id is not None else user_id
    posted = _posted_values(request)
    error = None
    try:
        risk_limit_set(
            actor=request.user,
            organisation=organisation,
            scope=scope,
            target_id=target_id,
            values=posted,
            ip=client_ip(request),
        )
    except RiskLimitInvalid as exc:
        error = exc
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    scopes = risk_limit_scopes(organisation=organisation)
    entry = risk_limit_scope_find(scopes, scope=scope, target_id=target_id)
    if entry is None:  # removed between the save and this read
        raise Http404("No such scope.")
    if error is None:
        entry["saved"] = True
        if not request.htmx:
            messages.success(request, f"The limits of {entry['label']} were saved.")
            return redirect(reverse("rms:limits", args=[organisation.slug]) + f"#{entry['form_id']}")
    else:
        entry.update(values=posted, error=error, errors=error.extra.get("fields", {}))
    context = _page_context(organisation, membership, scopes) | {"entry": entry}
    template = f"{TEMPLATE}#scope-form" if request.htmx else TEMPLATE
    return render(request, template, context, status=error.status if error else 200)
