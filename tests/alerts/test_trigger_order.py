"""An alert trigger order goes through the order services with source "alert", behind the normal
pre-trade checks, once per firing; placed or rejected, the result is recorded on the firing."""

from decimal import Decimal

import pytest

from alerts.models import OrderResult
from alerts.services import alert_fire, alert_order_place
from orders.models import Order, Source
from rms.models import RiskLimit
from tests.alerts.helpers import make_alert

pytestmark = pytest.mark.django_db(transaction=True)  # the order system acts outside any transaction


def _fire_with_order(world, sent_tasks, **order):
    world.quote(world.equity, "1001", bid="1000.95", ask="1001.05", tick=False)
    alert = make_alert(
        world.trader,
        world.equity,
        "ltp_above",
        "1000",
        account=world.account.pk,
        order_side="BUY",
        order_lots=order.pop("lots", 2),
        **order,
    )
    firing = alert_fire(alert_id=alert.pk, ltp=Decimal("1001"))
    assert ("alerts.tasks.place_alert_order", (firing.pk,)) in sent_tasks
    return firing


def test_a_fired_alert_places_its_order_with_the_alert_source_once(world, sent_tasks, monkeypatch):
    pushed = []
    monkeypatch.setattr("alerts.services.outbox.push_to_user", lambda user_id, html: pushed.append(html))
    firing = _fire_with_order(world, sent_tasks)
    assert firing.order_result == OrderResult.PENDING
    assert alert_order_place(firing_id=firing.pk) == OrderResult.PLACED
    assert alert_order_place(firing_id=firing.pk) == OrderResult.PLACED  # a task run twice places nothing more
    order = Order.objects.get()
    assert order.source == Source.ALERT and order.placed_by == world.trader
    assert order.side == "BUY" and order.quantity == 2 and order.order_type == "MARKET"
    firing.refresh_from_db()
    assert firing.order == order and "BUY 2 RELIANCE" in firing.order_message
    assert pushed and f'id="firing-{firing.pk}"' in pushed[-1] and "Placed" in pushed[-1]


def test_a_trigger_order_refused_by_the_risk_checks_is_recorded_as_rejected_with_the_reason(world, sent_tasks):
    RiskLimit.objects.create(account=world.account, max_order_quantity=1)
    firing = _fire_with_order(world, sent_tasks, lots=5)
    assert alert_order_place(firing_id=firing.pk) == OrderResult.REJECTED
    firing.refresh_from_db()
    assert firing.order is None
    assert firing.order_message.startswith("max_order_quantity")
    assert not Order.objects.exists()
