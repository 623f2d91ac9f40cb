from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Order, Position
from orders.services import place_order, slice_quantities
from orders.states import Status
from orders.tasks import square_off_intraday_task
from rms.models import KillSwitch, RiskLimit
from rms.tasks import mtm_monitor

pytestmark = pytest.mark.django_db


def test_slices_are_the_freeze_quantity_rounded_down_to_whole_lots():
    assert slice_quantities(3900, lot_size=65, freeze_quantity=1800) == [1755, 1755, 390]  # NIFTY lot 65 -> 1,755
    assert slice_quantities(601, lot_size=1, freeze_quantity=600) == [600, 1]
    assert slice_quantities(600, lot_size=1, freeze_quantity=600) == [600]
    assert slice_quantities(10, lot_size=1, freeze_quantity=None) == [10]


def test_the_intraday_square_off_closes_mis_positions_and_cancels_mis_orders_only(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    buy = world.request(world.equity, order_type="MARKET")
    place_order(actor=world.trader, account=world.account, request=buy, source="api")
    from dataclasses import replace

    place_order(actor=world.trader, account=world.account, request=replace(buy, product="CNC"), source="api")
    resting = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("950")),
        source="api",
    )
    result = square_off_intraday_task.apply().get()
    assert result == {"accounts": 1, "cancelled": 1, "squared_off": 1}
    positions = {p.product: p.net_quantity for p in Position.objects.filter(account=world.account)}
    assert positions == {"MIS": 0, "CNC": 10}
    resting.refresh_from_db()
    assert resting.status == Status.CANCELLED
    assert AuditEvent.objects.filter(action="position.squared_off").count() == 1
    assert square_off_intraday_task.apply().get() == {"accounts": 0, "cancelled": 0, "squared_off": 0}


def test_the_15_15_square_off_is_in_the_beat_schedule():
    from config.celery import app

    entry = app.conf.beat_schedule["orders-square-off-intraday"]
    assert entry["task"] == "orders.tasks.square_off_intraday_task"
    assert entry["schedule"].hour == {15} and entry["schedule"].minute == {15}
    assert app.conf.timezone == "Asia/Kolkata"
    assert "rms-mtm-monitor" in app.conf.beat_schedule


def test_the_mtm_monitor_halts_and_squares_off_an_account_past_its_daily_loss(world, settings, monkeypatch):
    RiskLimit.objects.create(account=world.account, max_daily_loss=Decimal("500"))
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    world.quote(world.equity, 960, bid=959.95, ask=960.05)  # MTM -400.50: inside the limit
    sent = []
    monkeypatch.setattr("celery.app.base.Celery.send_task", lambda self, name, args=(), **kw: sent.append((name, args)))
    assert mtm_monitor.apply().get() == []
    world.quote(world.equity, 949.90, bid=949.85, ask=949.95)  # MTM -501.50: past it
    assert mtm_monitor.apply().get() == [world.account.pk]
    assert sent == [("orders.tasks.kill_switch_engage_task", ["account", world.account.pk, sent[0][1][2]])]
    # the OMS side of that message (what the worker runs):
    from orders.tasks import kill_switch_engage_task

    result = kill_switch_engage_task.apply(args=sent[0][1]).get()
    assert result["squared_off"] == 1
    assert KillSwitch.objects.get(key=f"account:{world.account.pk}").active
    assert Position.objects.get(account=world.account).net_quantity == 0
    assert Order.objects.filter(tag="square-off").count() == 1
    assert mtm_monitor.apply().get() == []  # halted accounts are not re-triggered
    event = AuditEvent.objects.get(action="rms.kill_switch_on")
    assert event.actor == "system:rms" and "daily loss" in event.payload_data["reason"]
