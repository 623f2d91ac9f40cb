"""The strategies pages' forms. They check shape (choices, numbers, times); the services check the
rules (rule JSON against its schema, paper and live never mixed, the algo id, the schedule) and name
the refused field, which the page shows next to it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import time
from decimal import Decimal
from typing import Any

from django import forms

from core.errors import ApplicationError
from marketdata.models import Instrument
from strategies.models import Deployment

TIME = forms.TimeInput(format="%H:%M", attrs={"placeholder": "HH:MM"})
MONEY = {"max_digits": 16, "decimal_places": 2, "min_value": Decimal("0"), "required": False}


class DeployForm(forms.Form):
    """Deploy a strategy: accounts with multipliers (``multiplier-<account id>``), paper or live, the
    algo id, the schedule (IST), the deployment's limits and its strategy-level exits."""

    name = forms.CharField(max_length=100)
    mode = forms.ChoiceField(choices=Deployment.Mode.choices, initial=Deployment.Mode.PAPER)
    algo_id = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Algo id")
    start_time = forms.TimeField(initial=time(9, 15), label="Start (IST)", widget=TIME)
    end_time = forms.TimeField(initial=time(15, 30), label="No new entries after (IST)", widget=TIME)
    square_off_time = forms.TimeField(initial=time(15, 15), required=False, label="Square off at (IST)", widget=TIME)
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


# --- the rule builder --------------------------------------------------------------------------------------
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
TIMEFRAMES = ("1", "3", "5", "10", "15", "30", "60")
INDICATOR_TYPES = (
    ("ema", "EMA"),
    ("sma", "SMA"),
    ("rsi", "RSI"),
    ("vwap", "VWAP"),
    ("supertrend", "SuperTrend"),
    ("opening_range_high", "Opening range high"),
    ("opening_range_low", "Opening range low"),
    ("time_of_day", "Time of day"),
)
SOURCES = ("", "close", "open", "high", "low", "typical")
OPERATORS = (
    (">", ">"),
    ("<", "<"),
    (">=", "≥"),
    ("<=", "≤"),
    ("crosses_above", "crosses above"),
    ("crosses_below", "crosses below"),
)
PRICES = ("open", "high", "low", "close")
MAX_ROWS = 20
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_NUMBER = re.compile(r"^-?\d{1,12}(\.\d{1,4})?$")
INDICATOR_FIELDS = ("name", "type", "period", "source", "multiplier", "minutes")
CONDITION_FIELDS = ("left", "op", "right")
DISTANCES = ("stop_loss", "target", "trailing_stop")


def _operand(text: str) -> dict[str, str]:
    """An operand as typed: a price of the bar (close), a time (14:30), a number (100.5) or an
    indicator's name; the rule schema checks the rest (an unknown indicator is named there)."""
    text = text.strip()
    if text.lower() in PRICES:
        return {"price": text.lower()}
    if _TIME.match(text):
        hours, minutes = text.split(":")
        return {"time": f"{int(hours):02d}:{minutes}"}
    if _NUMBER.match(text):
        return {"number": text}
    return {"indicator": text}


class RuleBuilder:
    """The rule builder's form: fixed fields plus rows of indicators and entry/exit conditions, posted
    as ``indicator-<n>-<field>``, ``entry-<n>-<field>`` and ``exit-<n>-<field>`` with their row counts.
    A button named ``add`` (value ``indicator``, ``entry`` or ``exit``) or ``remove`` (``entry-2``) posts
    the form back with a row more or less; ``save`` builds the rule JSON (``params()``) for
    ``strategy_create``, whose refusals (the rule schema's dotted fields) land next to their inputs."""

    FIXED = (
        "name", "description", "exchange", "symbol", "timeframe", "product", "side", "size_kind", "size",
        "entry_combine", "exit_combine", "stop_loss_kind", "stop_loss", "target_kind", "target",
        "trailing_stop_kind", "trailing_stop", "no_entry_after", "exit_at",
    )  # fmt: skip
    DEFAULTS = {
        "exchange": "NSE", "timeframe": "5", "product": "MIS", "side": "long", "size_kind": "quantity",
        "size": "1", "entry_combine": "all", "exit_combine": "any", "stop_loss_kind": "percent",
        "target_kind": "percent", "trailing_stop_kind": "percent",
    }  # fmt: skip
    choices = {
        "exchanges": EXCHANGES,
        "timeframes": TIMEFRAMES,
        "indicator_types": INDICATOR_TYPES,
        "sources": SOURCES,
        "operators": OPERATORS,
    }

    def __init__(self, data=None) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.values = {
            name: (data.get(name, "") if data is not None else self.DEFAULTS.get(name, "")) for name in self.FIXED
        }
        self.values = {k: v.strip() if isinstance(v, str) else "" for k, v in self.values.items()}
        if data is None:
            self.indicators = [
                {"name": "fast", "type": "ema", "period": "9", "source": "", "multiplier": "", "minutes": ""},
                {"name": "slow", "type": "ema", "period": "21", "source": "", "multiplier": "", "minutes": ""},
            ]
            self.entry = [{"left": "fast", "op": "crosses_above", "right": "slow"}]
            self.exit = [{"left": "fast", "op": "crosses_below", "right": "slow"}]
        else:
            self.indicators = self._rows("indicator", INDICATOR_FIELDS)
            self.entry = self._rows("entry", CONDITION_FIELDS)
            self.exit = self._rows("exit", CONDITION_FIELDS)
            self._add_or_remove()

    # -- reading the POST ------------------------------------------------------------------------------------
    def _count(self, prefix: str) -> int:
        raw = self.data.get(f"{prefix}_rows", "0")
        return min(int(raw), MAX_ROWS) if raw.isdigit() else 0

    def _rows(self, prefix: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
        rows = []
        for index in range(self._count(prefix)):
            row = {f: str(self.data.get(f"{prefix}-{index}-{f}", "")).strip()[:200] for f in fields}
            rows.append(row)
        return rows

    def _add_or_remove(self) -> None:
        add, remove = self.data.get("add", ""), self.data.get("remove", "")
        blank = {"indicator": dict.fromkeys(INDICATOR_FIELDS, ""), "entry": dict.fromkeys(CONDITION_FIELDS, "")}
        blank["exit"] = blank["entry"]
        lists = {"indicator": self.indicators, "entry": self.entry, "exit": self.exit}
        if add in lists and len(lists[add]) < MAX_ROWS:
            lists[add].append(dict(blank[add]))
        if "-" in remove:
            prefix, _, index = remove.rpartition("-")
            if prefix in lists and index.isdigit() and int(index) < len(lists[prefix]):
                del lists[prefix][int(index)]

    def wants_save(self) -> bool:
        return self.data is not None and not self.data.get("add") and not self.data.get("remove")

    @property
    def name(self) -> str:
        return self.values["name"]

    @property
    def description(self) -> str:
        return self.values["description"]

    # -- checking and building -----------------------------------------------------------------------------
    def _error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def is_valid(self) -> bool:
        """Shape only, before the rule schema: required fields and the instrument in the symbol master."""
        if not self.name:
            self._error("name", "Give the strategy a name.")
        if not self.values["symbol"]:
            self._error("symbol", "Give the symbol to trade, e.g. RELIANCE.")
        elif not Instrument.objects.filter(
            exchange=self.values["exchange"], tradingsymbol=self.values["symbol"].upper(), is_active=True
        ).exists():
            self._error(
                "symbol", f"{self.values['exchange']}:{self.values['symbol'].upper()} is not in the symbol master."
            )
        if not self.entry:
            self._error("entry", "Add at least one entry condition.")
        for index, row in enumerate(self.entry + self.exit):
            prefix, i = ("entry", index) if index < len(self.entry) else ("exit", index - len(self.entry))
            for side in ("left", "right"):
                if not row[side]:
                    self._error(
                        f"{prefix}-{i}-{side}", "Give an indicator's name, a price (close), a number or a time."
                    )
        return not self.errors

    def _distance(self, name: str) -> dict[str, str] | None:
        value = self.values[name]
        if not value:
            return None
        kind = self.values[f"{name}_kind"] if self.values[f"{name}_kind"] in ("percent", "points") else "percent"
        return {kind: value}

    def _condition(self, rows: list[dict[str, str]], combine: str) -> dict[str, Any] | None:
        if not rows:
            return None
        items = [{"left": _operand(r["left"]), "op": r["op"], "right": _operand(r["right"])} for r in rows]
        return {"any" if combine == "any" else "all": items}

    def params(self) -> dict[str, Any]:
        """The rule JSON the form describes (checked by the rule strategy's schema when saved)."""
        indicators = {}
        for row in self.indicators:
            spec: dict[str, Any] = {"type": row["type"]}
            for field in ("period", "source", "multiplier", "minutes"):
                if row[field]:
                    spec[field] = (
                        int(row[field]) if field in ("period", "minutes") and row[field].isdigit() else row[field]
                    )
            indicators[row["name"]] = spec
        size_kind = "lots" if self.values["size_kind"] == "lots" else "quantity"
        size = self.values["size"]
        rule: dict[str, Any] = {
            "instrument": {"exchange": self.values["exchange"], "symbol": self.values["symbol"].upper()},
            "timeframe": int(self.values["timeframe"])
            if self.values["timeframe"].isdigit()
            else self.values["timeframe"],
            "product": self.values["product"],
            "side": self.values["side"],
            size_kind: int(size) if size.isdigit() else size,
            "indicators": indicators,
            "entry": self._condition(self.entry, self.values["entry_combine"]),
        }
        optional = {
            "exit": self._condition(self.exit, self.values["exit_combine"]),
            **{name: self._distance(name) for name in DISTANCES},
            "no_entry_after": self.values["no_entry_after"] or None,
            "exit_at": self.values["exit_at"] or None,
        }
        rule.update({k: v for k, v in optional.items() if v is not None})
        return rule

    def preview(self) -> str:
        """The rule JSON as it would be saved, for the page."""
        try:
            return json.dumps(self.params(), indent=2)
        except (TypeError, ValueError):
            return ""

    def add_service_error(self, error: ApplicationError) -> None:
        """Place a refusal of strategy_create next to the input its field names (or above the form)."""
        problems = error.extra.get("errors") or [{"field": error.extra.get("field"), "message": error.message}]
        for problem in problems:
            field = self._input_for(str(problem.get("field") or ""))
            message = str(problem.get("message") or error.message)
            if field:
                self._error(field, message)
            else:
                self.non_field_errors.append(f"{problem.get('field')}: {message}" if problem.get("field") else message)

    def _input_for(self, path: str) -> str | None:
        parts = path.split(".")
        head = parts[0]
        if head in ("name", "description", "timeframe", "product", "side", "no_entry_after", "exit_at"):
            return head
        if head == "instrument":
            return "exchange" if parts[1:2] == ["exchange"] else "symbol"
        if head in ("quantity", "lots"):
            return "size"
        if head in DISTANCES:
            return head
        if head == "indicators" and len(parts) > 1:
            names = [row["name"] for row in self.indicators]
            if parts[1] in names:
                index = names.index(parts[1])
                field = parts[2] if len(parts) > 2 and parts[2] in INDICATOR_FIELDS else "name"
                return f"indicator-{index}-{field}"
            return None
        if head in ("entry", "exit"):
            if len(parts) > 2 and parts[2].isdigit():
                field = parts[3] if len(parts) > 3 and parts[3] in CONDITION_FIELDS else "left"
                return f"{head}-{parts[2]}-{field}"
            return head
        return None

    def rows(self, prefix: str) -> list[dict[str, Any]]:
        """Rows for the template: each with its index, values and errors by field."""
        source = {"indicator": self.indicators, "entry": self.entry, "exit": self.exit}[prefix]
        return [
            {
                "index": index,
                "values": row,
                "errors": {field: self.errors.get(f"{prefix}-{index}-{field}", []) for field in row},
            }
            for index, row in enumerate(source)
        ]

    def indicator_rows(self):
        return self.rows("indicator")

    def entry_rows(self):
        return self.rows("entry")

    def exit_rows(self):
        return self.rows("exit")

    def condition_blocks(self):
        return [
            ("entry", self.entry_rows(), "Entry: enter when"),
            ("exit", self.exit_rows(), "Exit: leave when (stops and targets apply as well)"),
        ]


# --- backtests and sweeps ----------------------------------------------------------------------------------
class BacktestForm(forms.Form):
    """What a backtest runs over: shape only; the backtest service checks the instrument against the symbol
    master, the date range against stored candles and the settings (``BACKTEST_FIELDS`` maps its fields)."""

    instrument = forms.CharField(max_length=60, help_text="EXCHANGE:SYMBOL, e.g. NSE:INFY")
    start = forms.DateField(label="From (IST)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (IST)", widget=forms.DateInput(attrs={"type": "date"}))
    fill_mode = forms.ChoiceField(
        label="Market orders fill",
        choices=[("next_open", "at the next bar's open"), ("close", "at the signal bar's close")],
        initial="next_open",
    )
    slippage_bps = forms.IntegerField(label="Slippage (basis points)", min_value=0, max_value=1000, initial=0)
    initial_capital = forms.DecimalField(
        label="Capital (₹)", min_value=1, max_value=10**12, decimal_places=2, initial=1_000_000
    )
    charges = forms.BooleanField(label="Charge brokerage, STT and fees", required=False, initial=True)

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "fill_mode": data["fill_mode"],
            "slippage_bps": data["slippage_bps"],
            "initial_capital": data["initial_capital"],
            "charges": {"enabled": data["charges"]},
        }


class SweepForm(BacktestForm):
    grid = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        max_length=20_000,
        help_text='Each parameter a list of values, as JSON: {"fast": [5, 9], "slow": [21, 34]}',
    )
    metric = forms.ChoiceField(label="Rank by", initial="sharpe")

    def __init__(self, *args, metrics: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["metric"].choices = [(m, m.replace("_", " ")) for m in metrics]

    def clean_grid(self) -> Any:
        try:
            return json.loads(self.cleaned_data["grid"])
        except ValueError:
            raise forms.ValidationError("The grid is not valid JSON.") from None


# Where a backtest service's refused field (``extra["field"]``) shows on the form.
BACKTEST_FIELDS = {
    "instruments": "instrument",
    "start": "start",
    "end": "end",
    "settings.fill_mode": "fill_mode",
    "settings.slippage_bps": "slippage_bps",
    "settings.initial_capital": "initial_capital",
    "grid": "grid",
    "metric": "metric",
}


def backtest_form_field(field: object) -> str | None:
    """The form field a service's refused ``field`` belongs to, or None (shown above the form)."""
    if not isinstance(field, str):
        return None
    if field.startswith("instruments"):
        return "instrument"
    if field.startswith("settings.charges"):
        return "charges"
    if field.startswith("grid"):
        return "grid"
    return BACKTEST_FIELDS.get(field)
