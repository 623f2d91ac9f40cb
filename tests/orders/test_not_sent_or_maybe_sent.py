"""A broker error says whether the request may have reached the broker: only "maybe sent" leaves an
order UNKNOWN for reconciliation; every "not sent" kind settles it REJECTED at once, margin freed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerInsufficientMargin,
    BrokerMarketClosed,
    BrokerRateLimited,
    BrokerSegmentNotEnabled,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUnreachable,
    Capabilities,
)
from brokers.models import BrokerAccount
from orders.models import Funds
from orders.services import place_order
from orders.states import Status
from paper.adapter import PaperAdapter

pytestmark = pytest.mark.django_db


class _FailingBroker(PaperAdapter):
    """A network broker whose every placement fails with ``error``."""

    capabilities = Capabilities()
    error: Exception | None = None

    def place_order(self, request):
        raise type(self).error


@pytest.fixture
def failing_account(world):
    registry.register("failing", _FailingBroker)
    world.account.broker = "failing"
    BrokerAccount.objects.filter(pk=world.account.pk).update(broker="failing")
    yield world.account
    registry.unregister("failing")


@pytest.mark.parametrize(
    "error",
    [
        BrokerRateLimited("Too many requests."),
        BrokerUnreachable("Connection refused."),
        BrokerSessionExpired("Log in to the broker again."),
        BrokerInsufficientMargin("Insufficient funds."),
        BrokerMarketClosed("Markets are closed."),
        BrokerSegmentNotEnabled("Segment not enabled."),
    ],
    ids=lambda e: e.code,
)
def test_a_not_sent_error_rejects_the_order_at_once_and_frees_its_margin(world, failing_account, error):
    _FailingBroker.error = error
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=failing_account,
        request=world.request(world.equity, price=Decimal(1000)),
        source="api",
    )
    assert order.status == Status.REJECTED and order.message == error.message
    assert Funds.objects.get(account=failing_account).margin_blocked == 0
    rejected = AuditEvent.objects.get(action="order.rejected")
    assert rejected.payload_data["reason"] == error.code
    assert not AuditEvent.objects.filter(action="order.unknown").exists()


def test_a_maybe_sent_error_leaves_the_order_unknown_for_reconciliation(world, failing_account):
    _FailingBroker.error = BrokerUnavailable("Read timed out.")
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=failing_account,
        request=world.request(world.equity, price=Decimal(1000)),
        source="api",
    )
    assert order.status == Status.UNKNOWN
    assert Funds.objects.get(account=failing_account).margin_blocked > 0  # held until reconciled
    assert AuditEvent.objects.filter(action="order.unknown").count() == 1
