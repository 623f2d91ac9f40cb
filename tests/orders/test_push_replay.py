"""A page that missed order changes (its socket was away, or the worker that held the push died) is
sent their current state from the journal: ``orders.push.replay_order_changes`` through
``infra.push.replay``, only what the user may see now."""

import pytest

from infra import push as user_push
from orders.models import Status, Trade
from orders.push import journal, replay_order_changes
from orders.services import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def memory_journal(monkeypatch):
    monkeypatch.setattr(user_push, "_journal_instance", user_push._MemoryJournal())


def test_a_change_is_journalled_for_everyone_who_sees_the_order_and_replayed_in_its_current_state(
    world, memory_journal, django_user_model
):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    request = world.request(world.equity, order_type="MARKET")
    order = place_order(actor=world.trader, account=world.account, request=request, source="api")
    trade = Trade.objects.get(order=order)
    numbers = journal(order, trade)
    assert set(numbers) == {world.owner.pk, world.admin.pk, world.trader.pk, world.viewer.pk}
    html, covered = user_push.replay(world.viewer.pk, after=0)
    assert covered == [numbers[world.viewer.pk]]
    assert f'id="order-{order.pk}"' in html and f'id="trade-{trade.pk}"' in html
    assert order.status == Status.FILLED and "Filled" in html
    stranger = django_user_model.objects.create_user("stranger")
    assert user_push.replay(stranger.pk, after=0) == ("", [])


def test_an_order_the_user_may_no_longer_see_is_not_replayed(world, django_user_model):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="api")
    stranger = django_user_model.objects.create_user("stranger")
    assert replay_order_changes(stranger.pk, [{"kind": "order", "order": order.pk, "trade": None}]) == ""
    assert f'id="order-{order.pk}"' in replay_order_changes(world.trader.pk, [{"kind": "order", "order": order.pk}])
    assert replay_order_changes(world.trader.pk, [{"kind": "order", "order": 10**9}]) == ""  # gone: nothing


def test_a_replay_costs_the_same_queries_however_many_changes_it_covers(
    world, memory_journal, django_assert_max_num_queries
):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    placed = []
    for _ in range(6):
        request = world.request(world.equity, order_type="MARKET")
        order = place_order(actor=world.trader, account=world.account, request=request, source="api")
        placed.append(order)
        journal(order)  # placed
        journal(order, Trade.objects.get(order=order))  # filled: the same order again, with its trade
    # The orders, their trades, their positions (and the account viewers, cached per process).
    with django_assert_max_num_queries(6):
        rendered = user_push.render_replay(world.trader.pk, after=0)
    numbers = rendered.numbers(0, rendered.as_of)
    assert len(numbers) == 12
    html = rendered.html(numbers)
    for order in placed:
        assert html.count(f'id="order-{order.pk}"') == 1  # each row once, in its latest state
    assert html.count('id="position-') == 1  # one position, shown once for all its fills
    assert "Filled" in html
    # A socket that already has the first order's changes gets only the others.
    rest = rendered.numbers(2, rendered.as_of)
    assert f'id="order-{placed[0].pk}"' not in rendered.html(rest)
    assert f'id="order-{placed[1].pk}"' in rendered.html(rest)
