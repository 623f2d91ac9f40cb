"""The trader a worker or Redis drill acts as, and the HTTP client it sends orders with.

``trader`` makes one organisation and its Owner signed in with both factors (a database session, as a
browser's would be after sign-in), paper accounts and Kite accounts signed in to the local Kite server
(tests/kite/fake_kite.py), and one instrument in the Kite mapping. ``write_quote`` puts the
instrument's quote in a given Redis, as the feed process does on every tick. ``OrderClient`` sends
orders to the served API under idempotency keys and records every answer in a drill ledger.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import httpx
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Organisation, Role, User
from brokers.models import BrokerAccount
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote, _RedisStore
from tests.drills.ledger import Ledger

PRICE = Decimal("100")


@dataclass
class Trader:
    user: User
    organisation: Organisation
    session_key: str
    csrf: str
    instrument: Instrument
    paper: list[BrokerAccount] = field(default_factory=list)
    kite: list[BrokerAccount] = field(default_factory=list)

    def cookies(self) -> dict[str, str]:
        return {"sessionid": self.session_key, "csrftoken": self.csrf}

    def headers(self, base_url: str) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf, "Referer": f"{base_url}/", "Content-Type": "application/json"}

    def cookie_header(self) -> str:
        return f"sessionid={self.session_key}; csrftoken={self.csrf}"


def trader(name: str, *, paper: int = 0, kite: int = 0) -> Trader:
    from bench.orders_kite import map_for_kite, signed_in_kite_accounts

    instrument = Instrument.objects.create(
        exchange="NSE",
        segment="NSE",
        tradingsymbol=f"DRILL{name.upper()}",
        exchange_token="1",
        instrument_type="EQ",
        lot_size=1,
        tick_size=Decimal("0.05"),
    )
    map_for_kite(instrument)
    organisation = Organisation.objects.create(name=f"Drill {name}", slug=f"drill-{name}")
    user = User.objects.create_user(f"drill-{name}")
    Membership.objects.create(user=user, organisation=organisation, role=Role.OWNER)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    device = TOTPDevice.objects.create(user=user, name="drill", confirmed=True)
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.set_expiry(timedelta(hours=8))
    store.create()
    paper_accounts = [
        BrokerAccount.objects.create(organisation=organisation, label=f"p{j}", broker="paper", client_code=f"P{j}")
        for j in range(paper)
    ]
    kite_accounts = signed_in_kite_accounts(organisation, 0, kite) if kite else []
    return Trader(
        user, organisation, store.session_key, secrets.token_hex(16), instrument, paper_accounts, kite_accounts
    )


def write_quote(redis_url: str, instrument: Instrument) -> None:
    """The instrument's quote in ``redis_url``'s quote store, as the feed writes it on each tick."""
    _RedisStore(redis_url).set_many(
        [
            Quote(
                instrument_id=instrument.pk,
                ltp=PRICE,
                ts=timezone.now(),
                bid=PRICE - Decimal("0.05"),
                ask=PRICE + Decimal("0.05"),
                bids=(DepthLevel(PRICE - Decimal("0.05"), 1_000_000),),
                asks=(DepthLevel(PRICE + Decimal("0.05"), 1_000_000),),
            )
        ]
    )


def market_order(account: BrokerAccount, instrument: Instrument, n: int) -> dict:
    """The ``n``-th order of a drill's stream: MARKET, 1 to 3 units, buying and selling in turn."""
    return {
        "account_id": account.pk,
        "instrument_id": instrument.pk,
        "side": "BUY" if n % 2 == 0 else "SELL",
        "quantity": 1 + n % 3,
        "order_type": "MARKET",
        "product": "MIS",
    }


class OrderClient:
    """One client (one keep-alive connection) sending orders to the served API."""

    def __init__(self, base_url: str, trader: Trader, ledger: Ledger, *, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.ledger = ledger
        self.http = httpx.Client(
            base_url=base_url, cookies=trader.cookies(), headers=trader.headers(base_url), timeout=timeout
        )
        self.statuses: list[tuple[float, int | None, str]] = []  # (when, status, code) of every answer

    def place(self, key: str, body: dict, when: float) -> tuple[int | None, dict | None]:
        """Send one order under ``key``; record the answer in the ledger and in ``statuses``."""
        self.ledger.send(key)
        try:
            response = self.http.post("/api/v1/orders", content=json.dumps(body), headers={"Idempotency-Key": key})
        except httpx.HTTPError as error:
            self.ledger.fail(key, type(error).__name__)
            self.statuses.append((when, None, type(error).__name__))
            return None, None
        try:
            data = response.json()
        except ValueError:
            data = None
        code = str((data or {}).get("code", "")) if isinstance(data, dict) else ""
        self.ledger.record(key, response.status_code, data if isinstance(data, dict) else None)
        self.statuses.append((when, response.status_code, code))
        return response.status_code, data if isinstance(data, dict) else None

    def close(self) -> None:
        self.http.close()
