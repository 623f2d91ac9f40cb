"""The broker registry: every Indian broker the terminal knows, as data (``brokers/data/brokers.toml``).

Each entry names its API family (the adapter package that speaks it, or a family not built yet, or
``none`` for a broker with no public trading API), its endpoints (API root, websockets, symbol master,
login page), how its accounts sign in, its rate limits and segments, and where the facts come from.
A broker that differs from its family only in hosts and limits is an entry here, not code: the
family's adapter reads its account's entry (``endpoint``, ``limits``).

Status, computed: ``tested`` (its family is installed and this broker's own entry runs the shared
contract suite against the family's local server), ``untested`` (its family is installed, this broker
is not run by the suite), ``planned`` (a public API whose family is not built yet) or ``no_api``.

Tests and staging point a broker at another host with ``settings.BROKER_ENDPOINTS``
(``{"shoonya": {"api": "http://127.0.0.1:8123/NorenWClientTP"}}``), which wins over the file.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from brokers.adapters import registry
from brokers.rate_limits import RateLimit
from core.errors import ApplicationError

DATA = Path(__file__).resolve().parent / "data" / "brokers.toml"
STATUSES = {
    "tested": "Implemented and tested",
    "untested": "Family implemented, broker untested",
    "planned": "Planned",
    "no_api": "No public API",
}
# How pages name the families (a family not listed is named by its code).
FAMILY_NAMES = {
    "paper": "Paper exchange",
    "kite": "Kite Connect",
    "noren": "NorenOMS",
    "noren-v2": "NorenOMS (2025 OAuth generation)",
    "xts": "Symphony XTS",
    "angel": "Angel One SmartAPI",
    "upstox": "Upstox",
    "dhan": "DhanHQ",
    "fyers": "Fyers",
    "none": "No public API",
}
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_LIMIT = re.compile(r"(\d+)/(\d+(?:\.\d+)?)(s|min|h|day)")
_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0}


class UnknownBrokerEntry(ApplicationError):
    code = "unknown_broker"
    status = 422


@dataclass(frozen=True, slots=True)
class BrokerEntry:
    code: str
    name: str
    family: str
    endpoints: Mapping[str, str] = field(default_factory=dict)
    login: str = ""
    limits: Mapping[str, tuple[RateLimit, ...]] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    tested: bool = False
    source: str = ""
    note: str = ""

    @property
    def status(self) -> str:
        if self.family == "none":
            return "no_api"
        # An installed family reaches a broker only where the registry knows its API's host.
        reachable = self.family == "paper" or bool(self.endpoints.get("api"))
        if reachable and self.code in registry.registered_codes():
            return "tested" if self.tested else "untested"
        return "planned"

    @property
    def family_name(self) -> str:
        return family_name(self.family)

    @property
    def status_label(self) -> str:
        return STATUSES[self.status]


def family_name(family: str) -> str:
    return FAMILY_NAMES.get(family, family)


def _limits(code: str, table: Mapping[str, list[str]]) -> dict[str, tuple[RateLimit, ...]]:
    """``{"orders": ["10/1s", "200/1min"]}`` -> RateLimits named ``<class>_<n>`` so each counts apart."""
    out = {}
    for klass, specs in table.items():
        limits = []
        for index, spec in enumerate(specs):
            match = _LIMIT.fullmatch(spec)
            if match is None:
                raise ValueError(f"broker {code}: rate limit {spec!r} is not like '10/1s'")
            count, span, unit = match.groups()
            limits.append(RateLimit(f"{klass}_{index}", int(count), float(span) * _UNITS[unit]))
        out[klass] = tuple(limits)
    return out


@functools.cache
def entries() -> dict[str, BrokerEntry]:
    """Every broker of the registry by code, in the file's order (checked as it is read)."""
    with DATA.open("rb") as handle:
        data = tomllib.load(handle)
    out: dict[str, BrokerEntry] = {}
    for raw in data["broker"]:
        code = raw["code"]
        if not _CODE.fullmatch(code) or code in out:
            raise ValueError(f"broker code {code!r} is malformed or repeated")
        out[code] = BrokerEntry(
            code=code,
            name=raw["name"],
            family=raw["family"],
            endpoints=dict(raw.get("endpoints", {})),
            login=raw.get("login", ""),
            limits=_limits(code, raw.get("limits", {})),
            segments=tuple(raw.get("segments", ())),
            tested=bool(raw.get("tested", False)),
            source=raw.get("source", ""),
            note=raw.get("note", ""),
        )
    return out


def entry(code: str) -> BrokerEntry:
    try:
        return entries()[code]
    except KeyError:
        raise UnknownBrokerEntry(f"No broker {code!r} in the registry.", extra={"broker": code}) from None


def of_family(family: str) -> list[BrokerEntry]:
    """The registry's brokers whose API is ``family`` and whose API host it knows: what a family's app
    registers its adapter for (a broker without a known host cannot be traded, so it is not offered)."""
    return [item for item in entries().values() if item.family == family and item.endpoints.get("api")]


def endpoint(code: str, name: str) -> str:
    """The URL ``name`` ("api", "ws", "order_ws", "master", "login", ...) of broker ``code``:
    ``settings.BROKER_ENDPOINTS`` first, then the registry. Raises UnknownBrokerEntry for a broker
    or an endpoint the registry does not have."""
    override = getattr(settings, "BROKER_ENDPOINTS", {}).get(code, {}).get(name)
    if override:
        return override
    url = entry(code).endpoints.get(name)
    if not url:
        raise UnknownBrokerEntry(
            f"The registry has no {name!r} endpoint for broker {code!r}.", extra={"broker": code, "endpoint": name}
        )
    return url


def limits(code: str, klass: str, default: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
    """Broker ``code``'s rate limits for an endpoint class ("orders", "quotes", "other", ...): the
    registry's where it gives them, else the family's documented ``default``."""
    return entry(code).limits.get(klass, default)


def status_counts() -> dict[str, int]:
    """How many of the registry's brokers have each status (the registry's own paper exchange left out)."""
    counts = dict.fromkeys(STATUSES, 0)
    for item in entries().values():
        if item.family != "paper":
            counts[item.status] += 1
    return counts
