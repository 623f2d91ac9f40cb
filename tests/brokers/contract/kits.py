"""The broker families the shared contract suite runs: one kit each (see kit.py). Adding a family
means adding its adapter, its server and its kit, and one line here."""

from __future__ import annotations

from tests.brokers.contract.kit import MakeKit
from tests.families.angel.kit import AngelKit
from tests.families.dhan.kit import make_kit as dhan_kit
from tests.families.fyers.kit import make_kit as fyers_kit
from tests.families.noren.kit import NorenKit
from tests.families.upstox.kit import UpstoxKit
from tests.families.xts.kit import XtsKit

KITS: dict[str, MakeKit] = {
    "angel": AngelKit,
    "dhan": dhan_kit,
    "fyers": fyers_kit,
    "noren": NorenKit,
    "upstox": UpstoxKit,
    "xts": XtsKit,
}
