"""Statements compiled once (infra/prepared.py) give what the ORM would, for any values."""

import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from infra import prepared
from infra.prepared import Prepared
from orders.models import Order, OrderEvent, Position, Trade
from tests.trading_world import World, _fresh_trading_state  # noqa: F401  (the fixture, for every test here)

pytestmark = pytest.mark.django_db


@pytest.fixture
def trading(db) -> World:
    return World()


_GROUP = Prepared(
    lambda p: Position.objects.filter(account_id=p.account).filter(
        ~Q(net_quantity=0) | Q(instrument_id=p.instrument, product=p.product)
    ),
    account=int,
    instrument=int,
    product=str,
)


def _order(trading, **fields) -> Order:
    """An unsaved MARKET buy of 2 on the equity, with ``fields`` changed."""
    defaults = dict(
        account=trading.account,
        instrument=trading.equity,
        side="BUY",
        quantity=2,
        order_type="MARKET",
        product="MIS",
        margin_price=Decimal("1000"),
        source="web",
    )
    return Order(**{**defaults, **fields})


def _position(trading, instrument, product, net, average="1000"):
    return Position.objects.create(
        account=trading.account,
        instrument=instrument,
        product=product,
        net_quantity=net,
        average_price=Decimal(average),
    )


def test_a_prepared_query_returns_what_its_queryset_returns_for_every_value(trading):
    _position(trading, trading.equity, "MIS", 0)
    _position(trading, trading.equity, "CNC", 5)
    _position(trading, trading.future, "NRML", 0)
    for instrument, product in [(trading.equity, "MIS"), (trading.future, "NRML"), (trading.future, "MIS")]:
        expected = list(
            Position.objects.filter(account_id=trading.account.pk).filter(
                ~Q(net_quantity=0) | Q(instrument_id=instrument.pk, product=product)
            )
        )
        got = _GROUP.all(account=trading.account.pk, instrument=instrument.pk, product=product)
        assert [(p.pk, p.net_quantity, p.average_price, p.updated_at) for p in got] == [
            (p.pk, p.net_quantity, p.average_price, p.updated_at) for p in expected
        ]
        assert all(not p._state.adding and p._state.db == "default" for p in got)
    assert _GROUP.all(account=trading.account.pk + 1000, instrument=trading.equity.pk, product="MIS") == []


def test_values_rows_come_back_through_the_converters_as_the_queryset_gives_them(trading):
    order = _order(
        trading, quantity=3, order_type="LIMIT", price=Decimal("1000.05"), margin_price=Decimal("1000.05"), source="api"
    )
    order.save()
    rows = Prepared(
        lambda p: Order.objects.filter(account_id=p.account),
        values=("client_order_id", "price", "created_at"),
        account=int,
    )
    flat = Prepared(lambda p: Order.objects.filter(pk=p.pk)[:1], values=("price",), flat=True, pk=int)
    expected = list(
        Order.objects.filter(account_id=trading.account.pk).values_list("client_order_id", "price", "created_at")
    )
    assert rows.all(account=trading.account.pk) == expected
    assert isinstance(expected[0][0], uuid.UUID) and expected[0][1] == Decimal("1000.05")
    assert flat.first(pk=order.pk) == Decimal("1000.05")
    assert flat.first(pk=order.pk + 1) is None


def test_a_parameter_the_statement_does_not_carry_is_refused():
    unused = Prepared(lambda p: Position.objects.filter(product="MIS"), account=int)
    with pytest.raises(ValueError, match="account"):
        unused.all(account=1)


def test_missing_or_unknown_values_are_refused(trading):
    with pytest.raises(TypeError, match="account"):
        _GROUP.all(account=trading.account.pk, instrument=trading.equity.pk)
    with pytest.raises(TypeError):
        _GROUP.all(account=1, instrument=1, product="MIS", strategy="x")


def test_only_plain_model_and_values_list_querysets_can_be_prepared():
    with pytest.raises(TypeError, match="select_related"):
        Prepared(lambda p: Order.objects.select_related("account").filter(pk=p.pk), pk=int).all(pk=1)
    with pytest.raises(TypeError, match="values_list"):
        Prepared(lambda p: Order.objects.filter(pk=p.pk).values("pk"), pk=int).all(pk=1)
    with pytest.raises(TypeError, match="int or str"):
        Prepared(lambda p: Order.objects.filter(price=p.price), price=Decimal)


def test_insert_writes_rows_as_save_would_and_sets_their_keys(trading):
    before = timezone.now()
    order = _order(trading)
    prepared.insert([order])
    assert order.pk is not None and not order._state.adding
    stored = Order.objects.get(pk=order.pk)
    assert stored.client_order_id == order.client_order_id
    assert stored.status == "PENDING" and stored.validity == "DAY"
    assert stored.created_at >= before and stored.created_at == order.created_at
    # several rows in one statement, each with its key, a parent assigned before it had one
    events = [OrderEvent(order=order, kind="placed", data={"n": i}) for i in range(3)]
    prepared.insert(events)
    assert [e.pk for e in events] == list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True))
    assert [e.data for e in OrderEvent.objects.filter(order=order)] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_insert_takes_the_key_of_a_parent_saved_after_it_was_assigned_and_refuses_an_unsaved_one(trading):
    order = _order(trading)
    event = OrderEvent(order=order, kind="placed", data={})  # before the order has its key, as the paper fills are
    prepared.insert([order])
    prepared.insert([event])
    assert event.order_id == order.pk and OrderEvent.objects.get(pk=event.pk).order_id == order.pk
    with pytest.raises(ValueError, match="unsaved related object 'order'"):
        prepared.insert([OrderEvent(order=_order(trading), kind="placed", data={})])


def test_insert_raises_the_integrity_error_and_writes_nothing(trading):
    order = _order(trading)
    order.save()
    trade = dict(account=trading.account, order=order, instrument=trading.equity, product="MIS", side="BUY", quantity=1)
    prepared.insert([Trade(**trade, price=Decimal(1000), broker_trade_id="T1", executed_at=timezone.now())])
    with pytest.raises(IntegrityError), transaction.atomic():
        prepared.insert(
            [
                Trade(**trade, price=Decimal(1000), broker_trade_id="T2", executed_at=timezone.now()),
                Trade(**trade, price=Decimal(1000), broker_trade_id="T1", executed_at=timezone.now()),
            ]
        )
    assert list(Trade.objects.values_list("broker_trade_id", flat=True)) == ["T1"]


def test_update_writes_only_the_fields_named_and_refreshes_auto_now(trading):
    position = _position(trading, trading.equity, "MIS", 5)
    stale = Position.objects.get(pk=position.pk)
    position.net_quantity = 7
    position.average_price = Decimal("999")  # not named: not written
    stamped = position.updated_at
    assert prepared.update(position, ["net_quantity", "updated_at"]) == 1
    stored = Position.objects.get(pk=position.pk)
    assert stored.net_quantity == 7 and stored.average_price == Decimal("1000")
    assert stored.updated_at > stamped and stored.updated_at == position.updated_at
    stale.pk = position.pk + 1000
    assert prepared.update(stale, ["net_quantity"]) == 0


def test_on_sqlite_a_paper_order_places_and_fills(tmp_path: Path):
    # Standalone mode runs on SQLite: the compiled statements must hold there too (in a real file).
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'standalone.sqlite3'}", VAR_DIR=str(tmp_path / "var"))
    run = {"cwd": settings.BASE_DIR, "env": env, "timeout": 180, "capture_output": True, "text": True}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], check=True, **run)
    script = Path(__file__).with_name("sqlite_order_script.py").read_text()
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], **run)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "FILLED 2 FILLED 0 0.0000"


_ONE = Prepared(lambda p: Order.objects.filter(pk=p.pk), values=("pk",), flat=True, pk=int)


def test_compiled_statements_are_logged_while_queries_are_captured():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _ONE.all(pk=1)  # the first use also runs the queryset once, to see its statement
    with CaptureQueriesContext(connection) as captured:
        _ONE.all(pk=1)
    assert len(captured) == 1 and "orders_order" in captured[0]["sql"]
