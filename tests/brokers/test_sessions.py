"""A broker account's session: sealed, live until the broker's daily cut-off or until the broker
refuses it, and without it an order is refused before anything is written or sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from brokers.adapters import registry
from brokers.adapters.base import BrokerSessionExpired, Login
from brokers.models import BrokerAccount
from brokers.services.sessions import next_cutoff, session_end, session_secrets, session_start, session_state
from orders.models import Order
from orders.services import place_order
from paper.adapter import PaperAdapter
from paper.models import PaperOrder

pytestmark = pytest.mark.django_db


class _DailyLoginBroker(PaperAdapter):
    """A broker whose accounts sign in each day; it records the session it was given."""

    login = Login(kind="redirect", credentials=("api_key", "api_secret"), expires_at_ist="06:00")
    given: list[dict] = []

    @classmethod
    def for_account(cls, account, session=None):
        cls.given.append(session)
        return cls(account_id=account.pk)


@pytest.fixture
def daily(world):
    registry.register("daily", _DailyLoginBroker)
    account = BrokerAccount.objects.create(organisation=world.org, label="Daily", broker="daily", client_code="D1")
    from guardian.shortcuts import assign_perm

    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    _DailyLoginBroker.given.clear()
    yield account
    registry.unregister("daily")


@pytest.mark.parametrize(
    ("now_utc", "cutoff_utc"),
    [
        (datetime(2026, 12, 7, 0, 29, tzinfo=UTC), datetime(2026, 12, 7, 0, 30, tzinfo=UTC)),  # 05:59 IST
        (datetime(2026, 12, 7, 0, 30, tzinfo=UTC), datetime(2026, 12, 8, 0, 30, tzinfo=UTC)),  # 06:00 IST
        (datetime(2026, 12, 7, 10, 0, tzinfo=UTC), datetime(2026, 12, 8, 0, 30, tzinfo=UTC)),  # 15:30 IST
    ],
)
def test_the_daily_cutoff_is_the_next_six_oclock_in_india(now_utc, cutoff_utc):
    assert next_cutoff(now_utc, "06:00") == cutoff_utc


def test_a_session_is_sealed_in_the_database_and_live_until_its_cutoff(daily):
    now = timezone.now()
    session_start(account=daily, secrets={"access_token": "tok-SECRET-123"}, expires_at=now + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets_ciphertext FROM brokers_brokersession")
        (raw,) = cursor.fetchone()
    assert "tok-SECRET-123" not in raw
    assert session_secrets(daily) == {"access_token": "tok-SECRET-123"}
    assert session_state(daily).live
    later = now + timedelta(hours=2)
    assert not session_state(daily, now=later).live and session_secrets(daily, now=later) is None
    assert session_end(account_id=daily.pk, reason="TokenException: token expired")
    state = session_state(daily)
    assert not state.live and state.ended_reason.startswith("TokenException")


def test_an_account_without_a_live_session_has_a_signed_out_adapter_that_sends_nothing(daily):
    adapter = registry.adapter_for(daily)
    assert not adapter.signed_in and _DailyLoginBroker.given == []
    with pytest.raises(BrokerSessionExpired, match="not signed in"):
        adapter.order_book()
    session_start(account=daily, secrets={"access_token": "t"}, expires_at=timezone.now() + timedelta(hours=1))
    assert registry.adapter_for(daily).signed_in and _DailyLoginBroker.given == [{"access_token": "t"}]


def test_an_order_for_an_account_without_a_live_session_is_refused_before_anything_is_written(world, daily):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    with pytest.raises(BrokerSessionExpired) as refused:
        place_order(
            actor=world.trader, account=daily, request=world.request(world.equity, price=Decimal(990)), source="api"
        )
    assert refused.value.status == 409 and "Nothing was sent" in refused.value.message
    assert not Order.objects.exists() and not PaperOrder.objects.exists()
    rejection = AuditEvent.objects.get(action="rms.rejected")
    assert rejection.payload_data["rule"] == "broker_session_expired"
