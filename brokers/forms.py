"""The shape of a new broker account as typed on the organisation's page (brokers.views); the rules
(which credentials a family needs, duplicates) are brokers.services.accounts'.

The broker is chosen from the registry's brokers whose family is installed (``brokers.catalogue``),
grouped by family; choosing one picks its family, whose credentials the form asks for. Credentials
are grouped by family (one fieldset each, shown for the chosen broker's family by the page's script),
so a NorenOMS account at Shoonya and one at Zebu type the same fields."""

from __future__ import annotations

from typing import Any

from django import forms

from brokers import catalogue
from brokers.adapters.registry import family, registered_codes
from brokers.services.accounts import credential_label


def credential_group(adapter_class: Any) -> str:
    """The key of a family's credentials on the form (its code; a login variant of a family names its own)."""
    return str(getattr(adapter_class, "credential_group", "") or adapter_class.code)


def credential_field_name(broker: str, name: str) -> str:
    """The form field of one credential of ``broker``'s family (families may share names such as api_key)."""
    return f"{credential_group(family(broker))}-{name}"


def families_with_login() -> list[tuple[str, str, tuple[str, ...], list[str]]]:
    """(group key, family code, the credentials its login names, the broker names using it) for each
    installed family (or login variant) with credentials, in registry order."""
    groups: dict[str, tuple[str, str, tuple[str, ...], list[str]]] = {}
    for code in _broker_codes():
        adapter_class = family(code)
        login = adapter_class.login
        if login is None or not login.credentials:
            continue
        key = credential_group(adapter_class)
        group = groups.setdefault(key, (key, adapter_class.code, tuple(login.credentials), []))
        group[3].append(_name(code))
    return list(groups.values())


def _broker_codes() -> list[str]:
    """The brokers an account can be added for: the registry's whose family is installed and whose API
    host it knows, in its order; then any installed broker the registry lacks."""
    installed = set(registered_codes())
    entries = catalogue.entries()
    ordered = [code for code, entry in entries.items() if code in installed and entry.status in ("tested", "untested")]
    return ordered + sorted(installed - set(entries))


def _name(code: str) -> str:
    known = catalogue.entries().get(code)
    return known.name if known is not None else code


def broker_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The broker select's options, grouped by family: (family, [(broker code, broker name)])."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for code in _broker_codes():
        grouped.setdefault(catalogue.family_name(family(code).code), []).append((code, _name(code)))
    return list(grouped.items())


class BrokerAccountForm(forms.Form):
    broker = forms.ChoiceField(choices=())
    label = forms.CharField(max_length=100, help_text="How traders see the account, e.g. 'Zerodha main'.")
    client_code = forms.CharField(max_length=64, label="Client code", help_text="The client id at the broker.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["broker"].choices = broker_choices()
        # Each option names its credentials' group, so the page shows the chosen broker's fields.
        self.fields["broker"].widget.attrs["data-groups"] = " ".join(
            f"{code}={credential_group(family(code))}" for code in _broker_codes()
        )
        self.credential_groups: list[tuple[str, str, list[str], list[forms.BoundField]]] = []
        for key, family_code, names, brokers in families_with_login():
            bound = []
            for name in names:
                field_name = f"{key}-{name}"
                # Write-only: never rendered back, not even after a refused submission.
                self.fields[field_name] = forms.CharField(
                    required=False,
                    max_length=512,
                    strip=True,
                    label=credential_label(name),
                    widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
                )
                bound.append(self[field_name])
            self.credential_groups.append((key, catalogue.family_name(family_code), brokers, bound))

    def credentials(self) -> dict[str, str]:
        """The credentials typed for the chosen broker's family, by their names in its login."""
        broker = self.cleaned_data["broker"]
        login = family(broker).login
        names = login.credentials if login is not None else ()
        return {name: self.cleaned_data.get(credential_field_name(broker, name)) or "" for name in names}


class CredentialsForm(forms.Form):
    """New credentials for one account: the fields its family's login names, write-only."""

    def __init__(self, *args, broker: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        login = family(broker).login
        self.names = tuple(login.credentials) if login is not None else ()
        for name in self.names:
            self.fields[name] = forms.CharField(
                max_length=512,
                strip=True,
                label=credential_label(name),
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
            )

    def credentials(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in self.names}
