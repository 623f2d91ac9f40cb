"""The strategies pages' forms. They check shape (choices, numbers, times); the services check the
rules (rule JSON against its schema, paper and live never mixed, the algo id, the schedule) and name
the refused field, which the page shows next to it."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from django import forms

from strategies.models import Deployment

MONEY = {"max_digits": 16, "decimal_places": 2, "min_value": Decimal("0"), "required": False}


class DeployForm(forms.Form):
    """Deploy a strategy: accounts with multipliers (``multiplier-<account id>``), paper or live, the
    algo id, the schedule (IST), the deployment's limits and its strategy-level exits."""

    name = forms.CharField(max_length=100)
    mode = forms.ChoiceField(choices=Deployment.Mode.choices, initial=Deployment.Mode.PAPER)
    algo_id = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Algo id")
    start_time = forms.TimeField(initial=time(9, 15), label="Start (IST)")
    end_time = forms.TimeField(initial=time(15, 30), label="No new entries after (IST)")
    square_off_time = forms.TimeField(initial=time(15, 15), required=False, label="Square off at (IST)")
    max_loss = forms.DecimalField(label="Max loss (₹)", **MONEY)
    max_orders = forms.IntegerField(min_value=1, max_value=100_000, required=False, label="Max orders a day")
    max_open_positions = forms.IntegerField(min_value=1, max_value=1000, required=False, label="Max open positions")
    mtm_stop_loss = forms.DecimalField(label="MTM stop loss (₹)", **MONEY)
    mtm_target = forms.DecimalField(label="MTM target (₹)", **MONEY)
    trailing_stop = forms.DecimalField(label="Trailing stop (₹ from peak)", **MONEY)
    webhook_allowed_ips = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Webhook: allowed sender addresses (one per line, blank: any)",
    )

    def __init__(self, *args, accounts=(), algo_ids=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = list(accounts)
        self.fields["algo_id"].choices = [("", "None")] + [(a.pk, a.code) for a in algo_ids]
        for account in self.accounts:
            self.fields[f"account-{account.pk}"] = forms.BooleanField(required=False, label=account.label)
            self.fields[f"multiplier-{account.pk}"] = forms.IntegerField(
                min_value=1, max_value=1000, initial=1, required=False, label=f"Multiplier for {account.label}"
            )

    def account_rows(self):
        """(account, its tick box, its multiplier input) for the template."""
        return [(a, self[f"account-{a.pk}"], self[f"multiplier-{a.pk}"]) for a in self.accounts]

    def clean(self):
        data = super().clean()
        chosen = [a for a in self.accounts if data.get(f"account-{a.pk}")]
        if not chosen and not self.errors:
            self.add_error(None, "Choose at least one account.")
        data["accounts"] = [(a, data.get(f"multiplier-{a.pk}") or 1) for a in chosen]
        data["webhook_allowed_ips"] = [
            line.strip() for line in (data.get("webhook_allowed_ips") or "").splitlines() if line.strip()
        ]
        return data


class AlgoIdForm(forms.Form):
    code = forms.CharField(max_length=40, label="Algo id")
    description = forms.CharField(max_length=200, required=False)
