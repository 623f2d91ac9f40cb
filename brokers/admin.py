import json

from django import forms
from django.contrib import admin

from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_set


class BrokerAccountForm(forms.ModelForm):
    new_credentials = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='Write-only. A JSON object of strings, e.g. {"api_key": "...", "api_secret": "..."}. '
        "Leave empty to keep the stored credentials. They are encrypted (AES-256-GCM) and never shown.",
    )

    class Meta:
        model = BrokerAccount
        fields = ["organisation", "label", "broker", "client_code", "is_active"]

    def clean_new_credentials(self):
        raw = self.cleaned_data["new_credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} at position {exc.pos}.") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise forms.ValidationError("Credentials must be a JSON object whose values are all strings.")
        return value


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    form = BrokerAccountForm
    list_display = ["label", "organisation", "broker", "client_code", "is_active", "has_credentials"]
    list_filter = ["broker", "is_active", "organisation"]
    search_fields = ["label", "client_code"]

    def get_readonly_fields(self, request, obj=None):
        # An account's broker, and so its mode (paper or live), is fixed when it is created.
        return ["broker"] if obj is not None else []

    @admin.display(boolean=True, description="Credentials stored")
    def has_credentials(self, obj: BrokerAccount) -> bool:
        return bool(obj.credentials_ciphertext)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("new_credentials"):
            broker_credentials_set(account=obj, credentials=form.cleaned_data["new_credentials"], actor=request.user)
