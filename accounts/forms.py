"""Shapes of the account pages' input; the rules live in accounts.services and accounts.credentials."""

from __future__ import annotations

from django import forms

from accounts.models import ApiKeyScope, Role


class OtpForm(forms.Form):
    token = forms.CharField(max_length=32, label="One-time code or backup code")


class EnrolForm(forms.Form):
    token = forms.RegexField(regex=r"^\s*\d{6}\s*$", max_length=12, label="Code from your authenticator app")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=ApiKeyScope.choices)
    allowed_ips = forms.CharField(
        required=False,
        label="Allowed source addresses",
        help_text="Comma-separated addresses or CIDR networks; empty allows any address.",
    )

    def cleaned_ips(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["allowed_ips"].split(",") if part.strip()]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class GrantForm(forms.Form):
    user_id = forms.IntegerField(min_value=1)
    access = forms.ChoiceField(choices=[("view", "View"), ("trade", "Trade")])
