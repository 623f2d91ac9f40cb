import re
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

from infra import sockets
from infra.consumers import user_group
from orders.models import Order, Status, Trade
from orders.push import account_viewers, push_order_change, render_order_change
from orders.services import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_socket_slots(monkeypatch):
    """Socket slots under a Redis key prefix of this test's own (user ids repeat across test databases)."""
    monkeypatch.setattr(sockets, "KEY_PREFIX", f"test-sockets:{uuid.uuid4().hex}:")


@pytest.fixture
def socket_for(own_socket_slots):
    """``socket_for(user_id)``: a channel in the user's group and a ``/ws/user/`` slot, as an open socket
    would have; every one is taken out of its group and its slot given back when the test ends, so no
    later test or run finds it there."""
    layer = get_channel_layer()
    joined = []

    def join(user_id: int) -> str:
        socket_id = sockets.socket_id(carries_accounts=True)
        assert async_to_sync(sockets._slots().acquire)(user_id, socket_id, 100)
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(user_group(user_id), channel)
        joined.append((user_id, socket_id, channel))
        return channel

    yield join
    for user_id, socket_id, channel in joined:
        async_to_sync(layer.group_discard)(user_group(user_id), channel)
        async_to_sync(sockets._slots().release)(user_id, socket_id)


def test_an_order_change_renders_the_rows_the_page_shows_with_stable_ids_for_oob_swaps(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    trade = Trade.objects.get(order=order)
    html = render_order_change(order, trade)
    assert f'id="order-{order.pk}"' in html and 'hx-swap-oob="true"' in html
    assert f'id="trade-{trade.pk}"' in html and "RELIANCE" in html
    assert 'id="position-' in html and "Filled" in html


def test_the_change_reaches_the_placing_user_and_the_account_viewers_but_nobody_else(
    world, django_user_model, socket_for
):
    stranger = django_user_model.objects.create_user("stranger")
    assert account_viewers(world.account) == {world.owner.pk, world.admin.pk, world.trader.pk, world.viewer.pk}
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="api")
    layer = get_channel_layer()
    channels = {}
    for user in (world.trader, world.viewer, stranger):
        channels[user.pk] = socket_for(user.pk)
    push_order_change(order)
    for user in (world.trader, world.viewer):
        message = async_to_sync(layer.receive)(channels[user.pk])
        assert message["type"] == "user.push" and f'id="order-{order.pk}"' in message["html"]
    import asyncio

    async def nothing_for_stranger():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channels[stranger.pk]), timeout=0.3)

    async_to_sync(nothing_for_stranger)()


def test_changes_are_pushed_only_after_commit(world, django_capture_on_commit_callbacks):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    with django_capture_on_commit_callbacks() as callbacks:
        place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="api")
    assert len(callbacks) >= 2  # the placement and the broker's acceptance


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_changes_are_pushed_off_the_request_thread_merged_per_order_ending_with_the_latest_state(world, socket_for):
    import asyncio

    from orders import push

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    layer = get_channel_layer()
    channel = socket_for(world.viewer.pk)
    market = world.request(world.equity, order_type="MARKET")
    order = place_order(actor=world.trader, account=world.account, request=market, source="api")
    assert push.flush()

    async def everything_sent() -> list[str]:
        messages = []
        while True:
            try:
                messages.append((await asyncio.wait_for(layer.receive(channel), timeout=0.3))["html"])
            except TimeoutError:
                return messages

    messages = async_to_sync(everything_sent)()
    # Three changes (placed, accepted, filled), sent in at most as many frames, each order row once per message.
    assert 1 <= len(messages) <= 3
    assert all(html.count(f'id="order-{order.pk}"') == 1 for html in messages)
    assert "Filled" in messages[-1]
    trade = Trade.objects.get(order=order)
    assert f'id="trade-{trade.pk}"' in messages[-1] and 'id="position-' in messages[-1]


@pytest.mark.redis
def test_the_sender_renders_only_for_users_with_a_socket_open(world, own_socket_slots):
    from orders import push

    wanted = {world.trader.pk, world.viewer.pk}
    slots = sockets._slots()
    ticks = sockets.socket_id(carries_accounts=False)  # a tick socket receives no order pushes
    assert async_to_sync(slots.acquire)(world.trader.pk, ticks, 100)
    pushed = sockets.socket_id(carries_accounts=True)
    assert async_to_sync(slots.acquire)(world.viewer.pk, pushed, 100)
    try:
        assert push._listening(wanted) == {world.viewer.pk}
    finally:
        async_to_sync(slots.release)(world.viewer.pk, pushed)
        async_to_sync(slots.release)(world.trader.pk, ticks)
    assert push._listening(wanted) == set()


def _pushed_html(world, order) -> str:
    """What the placing trader's socket receives for ``order``."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(world.trader.pk), channel)
    try:
        push_order_change(order)
        return async_to_sync(layer.receive)(channel)["html"]
    finally:
        async_to_sync(layer.group_discard)(user_group(world.trader.pk), channel)


def _page_token(client) -> str:
    """The CSRF token a page gives htmx (hx-headers on body), which static/js/terminal.js also puts in
    the forms of the rows pushed to that page."""
    page = client.get("/")
    assert page.status_code == 200
    return re.search(r"""hx-headers='\{"X-CSRFToken": "(\w+)"\}'""", page.content.decode()).group(1)


def _cancel_form(html: str, order_id: int) -> tuple[str, str]:
    """The action and the inner HTML of the pushed row's cancel form."""
    action = f"/trading/orders/{order_id}/cancel/"
    form = re.search(rf'<form method="post" action="{action}"[^>]*>(.*?)</form>', html, re.S)
    assert form is not None, html
    return action, form.group(1)


@pytest.fixture
def resting_order(world):
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    order = place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="web")
    assert order.status == Status.OPEN
    return order


def test_a_pushed_rows_cancel_form_posted_plainly_with_its_pages_token_cancels_the_order(
    world, otp_login, resting_order
):
    browser = otp_login(Client(enforce_csrf_checks=True), world.trader)
    token = _page_token(browser)  # the page also sets the browser's CSRF cookie
    action, form = _cancel_form(_pushed_html(world, resting_order), resting_order.pk)
    # Rendered once for every recipient's sockets, the row carries no token of its own: the page supplies it.
    assert "csrfmiddlewaretoken" not in form and 'type="submit"' in form
    response = browser.post(action, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == "/"
    assert Order.objects.get(pk=resting_order.pk).status == Status.CANCELLED


def test_a_pushed_rows_cancel_form_is_refused_without_a_token_or_with_another_sessions(world, otp_login, resting_order):
    browser = otp_login(Client(enforce_csrf_checks=True), world.trader)
    _page_token(browser)
    other_browser = otp_login(Client(enforce_csrf_checks=True), world.trader)  # the same user elsewhere
    action, _ = _cancel_form(_pushed_html(world, resting_order), resting_order.pk)
    assert browser.post(action).status_code == 403
    assert browser.post(action, {"csrfmiddlewaretoken": _page_token(other_browser)}).status_code == 403
    assert Order.objects.get(pk=resting_order.pk).status == Status.OPEN
