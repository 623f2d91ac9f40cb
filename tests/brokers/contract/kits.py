"""The broker families the shared contract suite runs: one kit each (see kit.py). Adding a family
means adding its adapter, its server and its kit, and one line here."""

from __future__ import annotations

from tests.brokers.contract.kit import MakeKit
from tests.families.angel.kit import AngelKit

KITS: dict[str, MakeKit] = {
    "angel": AngelKit,
}
