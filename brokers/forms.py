"""The shape of a new broker account as typed on the organisation's page (brokers.views); the rules
(which credentials a family needs, duplicates) are brokers.services.accounts'."""

from __future__ import annotations

from django import forms

from brokers.adapters.registry import family, registered_codes
from brokers.services.accounts import credential_label


def credential_field_name(broker: str, name: str) -> str:
    """The form field of one family's credential (families may share names such as api_key)."""
    return f"{broker}-{name}"


def families_with_login() -> list[tuple[str, tuple[str, ...]]]:
    """Return (broker code, the credentials its login names) for each registered family with a login."""
    found = []
    for code in registered_codes():
        login = family(code).login
        if login is not None and login.credentials:
            found.append((code, tuple(login.credentials)))
    return found


class BrokerAccountForm(forms.Form):
    broker = forms.ChoiceField(choices=())
    label = forms.CharField(max_length=100, help_text="How traders see the account, e.g. 'Zerodha main'.")
    client_code = forms.CharField(max_length=64, label="Client code", help_text="The client id at the broker.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["broker"].choices = [(code, code) for code in registered_codes()]
        self.credential_groups: list[tuple[str, list[forms.BoundField]]] = []
        for code, names in families_with_login():
            bound = []
            for name in names:
                field_name = credential_field_name(code, name)
                # Write-only: never rendered back, not even after a refused submission.
                self.fields[field_name] = forms.CharField(
                    required=False,
                    max_length=512,
                    strip=True,
                    label=credential_label(name),
                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
                )
                bound.append(self[field_name])
            self.credential_groups.append((code, bound))

    def credentials(self) -> dict[str, str]:
        """The credentials typed for the chosen broker's family, by their names in its login."""
        broker = self.cleaned_data["broker"]
        login = family(broker).login
        names = login.credentials if login is not None else ()
        return {name: self.cleaned_data.get(credential_field_name(broker, name)) or "" for name in names}
