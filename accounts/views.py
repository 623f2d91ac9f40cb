"""Account pages: second factor (verify, enrol, backup codes), profile with API keys, members."""

from __future__ import annotations

import django_otp
import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.decorators import otp_required
from guardian.shortcuts import get_users_with_perms

from accounts import audit, credentials, services
from accounts.forms import ApiKeyForm, EnrolForm, GrantForm, OtpForm, RoleForm
from accounts.models import Role, SealedTOTPDevice
from accounts.otp import backup_codes_issue, otp_check
from accounts.selectors import (
    api_key_list,
    member_list,
    organisation_get_for_user,
    organisation_list_for_user,
    user_has_confirmed_totp,
)
from brokers.models import BrokerAccount
from brokers.selectors import account_get_for_user
from core.errors import ApplicationError

verified_required = otp_required(if_configured=False)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _error_page(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return render(request, "accounts/error.html", {"error": exc}, status=exc.status)


def locked_out(request: HttpRequest, original_response=None, credentials_=None) -> HttpResponse:
    """The response django-axes sends once a username is locked out (JSON under /api/)."""
    message = "Too many failed sign-ins; try again later."
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "locked_out", "message": message, "extra": {}}, status=429)
    return render(request, "accounts/locked_out.html", {"message": message}, status=429)


# --- Second factor -------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Ask a password-verified user for a TOTP or backup code; on success the session is fully signed in."""
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not user_has_confirmed_totp(user=request.user):
        return redirect("accounts:otp-enrol")
    form = OtpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = otp_check(user=request.user, token=form.cleaned_data["token"], request=request)
        if device is not None:
            django_otp.login(request, device)
            request.session.cycle_key()  # a fresh session id for the fully signed-in session
            audit.record(
                actor=request.user,
                action="auth.login",
                target=request.user,
                payload={"channel": "web", "factor": type(device).__name__},
                request=request,
            )
            return redirect(_next_url(request))
        if getattr(request, "axes_locked_out", False):
            from django.contrib.auth import logout

            logout(request)
            return locked_out(request)
        form.add_error("token", "That code is wrong or was already used.")
    return render(request, "accounts/otp_verify.html", {"form": form, "next": _next_url(request)})


def _qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@login_required
@require_http_methods(["GET", "POST"])
def otp_enrol(request: HttpRequest) -> HttpResponse:
    """Set up the authenticator app: show the QR code (SVG) and confirm it with one code."""
    if user_has_confirmed_totp(user=request.user):
        return redirect("accounts:profile" if request.user.is_verified() else "accounts:otp-verify")
    device = SealedTOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = SealedTOTPDevice.objects.create(user=request.user, name="authenticator", confirmed=False)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            django_otp.login(request, device)
            request.session.cycle_key()
            codes = backup_codes_issue(user=request.user)
            audit.record(
                actor=request.user, action="auth.otp_enrolled", target=request.user, payload={}, request=request
            )
            return render(request, "accounts/backup_codes.html", {"codes": codes, "next": _next_url(request)})
        audit.record(
            actor=request.user,
            action="auth.otp_failed",
            target=request.user,
            payload={"channel": "web", "kind": "enrol"},
            request=request,
        )
        form.add_error("token", "That code does not match; check the time on your phone and try again.")
    from base64 import b32encode

    context = {
        "form": form,
        "qr_svg": _qr_svg(device.config_url),
        "secret": b32encode(device.bin_key).decode(),
        "next": _next_url(request),
    }
    return render(request, "accounts/otp_enrol.html", context)


@verified_required
@require_POST
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Replace the backup codes and show the new ones, once."""
    codes = backup_codes_issue(user=request.user)
    audit.record(
        actor=request.user, action="auth.backup_codes_issued", target=request.user, payload={}, request=request
    )
    return render(request, "accounts/backup_codes.html", {"codes": codes, "next": "/account/"})


# --- Profile and API keys ---------------------------------------------------------------------------
def _profile(request: HttpRequest, *, form: ApiKeyForm | None = None, new_secret: str | None = None, status=200):
    context = {
        "form": form or ApiKeyForm(),
        "keys": api_key_list(user=request.user),
        "memberships": organisation_list_for_user(user=request.user),
        "new_secret": new_secret,
    }
    return render(request, "accounts/profile.html", context, status=status)


@verified_required
@require_http_methods(["GET"])
def profile(request: HttpRequest) -> HttpResponse:
    return _profile(request)


@verified_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    """Create an API key and show its secret on this response only."""
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _profile(request, form=form, status=400)
    try:
        _, secret = credentials.api_key_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            allowed_ips=form.cleaned_ips(),
            request=request,
        )
    except ApplicationError as exc:
        form.add_error(exc.extra.get("field") or None, exc.message)
        return _profile(request, form=form, status=exc.status)
    return _profile(request, new_secret=secret)


@verified_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = credentials.api_key_revoke(user=request.user, key_id=key_id, request=request)
    except ApplicationError as exc:
        return _error_page(request, exc)
    messages.success(request, f"API key {key.name} was revoked.")
    return redirect("accounts:profile")


# --- Organisation members (Owner and Admin) -----------------------------------------------------------
@verified_required
@require_http_methods(["GET"])
def members(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return _error_page(request, exc)
    accounts = []
    for account in BrokerAccount.objects.filter(organisation=organisation).order_by("label"):
        perms = get_users_with_perms(account, attach_perms=True, with_group_users=False)
        accounts.append({"account": account, "grants": sorted(perms.items(), key=lambda item: item[0].username)})
    context = {
        "organisation": organisation,
        "membership": membership,
        "members": member_list(organisation=organisation),
        "accounts": accounts,
        "roles": Role.choices,
    }
    return render(request, "accounts/members.html", context)


def _members_action(request: HttpRequest, slug: str, action) -> HttpResponse:
    try:
        organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return _error_page(request, exc)
    try:
        message = action(organisation)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, message)
    return redirect("accounts:members", slug=slug)


@verified_required
@require_POST
def member_role(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    def action(organisation):
        form = RoleForm(request.POST)
        role = form.cleaned_data["role"] if form.is_valid() else request.POST.get("role", "")
        services.membership_set_role(
            actor=request.user, organisation=organisation, user_id=user_id, role=role, request=request
        )
        return "The role was changed."

    return _members_action(request, slug, action)


@verified_required
@require_POST
def member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    def action(organisation):
        services.membership_remove(actor=request.user, organisation=organisation, user_id=user_id, request=request)
        return "The member was removed."

    return _members_action(request, slug, action)


def _grant_action(request: HttpRequest, account_id: int, service) -> HttpResponse:
    try:
        account = account_get_for_user(user=request.user, account_id=account_id, access="manage")
    except ApplicationError as exc:
        return _error_page(request, exc)
    form = GrantForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a member and an access level.")
    else:
        try:
            service(
                actor=request.user,
                account_id=account.pk,
                user_id=form.cleaned_data["user_id"],
                access=form.cleaned_data["access"],
                request=request,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Access to the broker account was updated.")
    return redirect("accounts:members", slug=account.organisation.slug)


@verified_required
@require_POST
def account_grant(request: HttpRequest, account_id: int) -> HttpResponse:
    return _grant_action(request, account_id, services.grant_account)


@verified_required
@require_POST
def account_revoke(request: HttpRequest, account_id: int) -> HttpResponse:
    return _grant_action(request, account_id, services.revoke_account)
