"""Run by test_prepared.py in ``manage.py shell`` on a fresh SQLite file: a buy and a sell that fill."""

from decimal import Decimal

from django.utils import timezone

from accounts.models import Membership, Organisation, Role, User
from brokers.models import BrokerAccount
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote, set_quotes
from orders.models import Funds, Position
from orders.services import OrderRequest, place_order

org = Organisation.objects.create(name="Solo", slug="solo")
user = User.objects.create_user("solo")
Membership.objects.create(user=user, organisation=org, role=Role.OWNER)
account = BrokerAccount.objects.create(organisation=org, label="Paper", broker="paper", client_code="S1")
instrument = Instrument.objects.create(
    exchange="NSE",
    segment="NSE",
    tradingsymbol="SOLO",
    exchange_token="9",
    instrument_type="EQ",
    lot_size=1,
    tick_size=Decimal("0.05"),
)
book = {"bids": (DepthLevel(Decimal("99.95"), 100),), "asks": (DepthLevel(Decimal("100.05"), 100),)}
set_quotes(
    [
        Quote(
            instrument_id=instrument.pk,
            ltp=Decimal(100),
            ts=timezone.now(),
            bid=Decimal("99.95"),
            ask=Decimal("100.05"),
            **book,
        )
    ]
)
orders = [
    place_order(
        actor=user,
        account=account,
        source="api",
        request=OrderRequest(instrument_id=instrument.pk, side=side, quantity=2, order_type="MARKET", product="MIS"),
    )
    for side in ("BUY", "SELL")
]
position = Position.objects.get(account=account, instrument=instrument, product="MIS")
assert position.buy_quantity == position.sell_quantity == 2, position
print(
    orders[0].status,
    orders[0].filled_quantity,
    orders[1].status,
    position.net_quantity,
    Funds.objects.get(account=account).margin_blocked,
)
