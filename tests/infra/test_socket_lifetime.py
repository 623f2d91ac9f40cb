"""Open websockets end with their sign-in and their access, and a user holds a bounded number of them
(infra.sockets), through the real ASGI application and its auth stack."""

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.services import membership_set_role, revoke_account
from infra import sockets
from orders import push
from orders.push import push_order_change
from orders.services import place_order
from tests.otp_session import login_with_otp
from tests.trading_world import World, _fresh_trading_state  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme(db) -> World:
    """An organisation with an Owner, an Admin, a Trader and a Viewer and a paper account (tests.trading_world)."""
    return World()


SIGNED_OUT = {"type": "websocket.close", "code": 4401, "reason": "signed out"}
ACCESS_CHANGED = {"type": "websocket.close", "code": 4403, "reason": "access changed"}


@pytest.fixture(autouse=True)
def _own_slots(monkeypatch):
    """Each test counts sockets under its own Redis key prefix (user ids repeat across test databases),
    and starts with no slots held in this process."""
    monkeypatch.setattr(sockets, "KEY_PREFIX", f"test-sockets:{uuid.uuid4().hex}:")
    monkeypatch.setattr(sockets, "_slots_instance", None)


def _socket(client: Client, path: str = "/ws/user/") -> WebsocketCommunicator:
    from config.asgi import application

    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), (b"origin", b"http://testserver")]
    return WebsocketCommunicator(application, path, headers=headers)


def _resting_order(acme):
    acme.quote(acme.equity, 1010, bid=1009.95, ask=1010.05)
    order = place_order(actor=acme.trader, account=acme.account, request=acme.request(acme.equity), source="web")
    assert push.flush()  # in the full stack the placement's own pushes leave before any socket opens
    return order


async def _opened(*communicators: WebsocketCommunicator) -> None:
    for communicator in communicators:
        connected, _ = await communicator.connect()
        assert connected


async def _row_reaches(communicator: WebsocketCommunicator, order) -> None:
    assert f'id="order-{order.pk}"' in await communicator.receive_from(timeout=5)


def test_signing_out_closes_that_sessions_sockets_and_no_order_row_follows(acme):
    order = _resting_order(acme)
    browser = login_with_otp(Client(), acme.trader)
    elsewhere = login_with_otp(Client(), acme.trader)  # the same user signed in on another machine

    async def scenario():
        user, ticks, other = _socket(browser), _socket(browser, "/ws/ticks/?format=json"), _socket(elsewhere)
        await _opened(user, ticks, other)
        await sync_to_async(push_order_change)(order)
        await _row_reaches(user, order)
        await _row_reaches(other, order)

        assert (await sync_to_async(browser.post)("/logout/")).status_code == 302
        assert await user.receive_output(timeout=5) == SIGNED_OUT
        assert await ticks.receive_output(timeout=5) == SIGNED_OUT
        await sync_to_async(push_order_change)(order)
        await _row_reaches(other, order)  # the other session is still signed in
        assert await user.receive_nothing(timeout=0.3)
        for communicator in (user, ticks, other):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_deactivating_a_user_closes_their_sockets(acme):
    order = _resting_order(acme)
    viewer, trader = login_with_otp(Client(), acme.viewer), login_with_otp(Client(), acme.trader)

    async def scenario():
        user, ticks, bystander = _socket(viewer), _socket(viewer, "/ws/ticks/?format=json"), _socket(trader)
        await _opened(user, ticks, bystander)
        acme.viewer.is_active = False
        await sync_to_async(acme.viewer.save)()
        assert await user.receive_output(timeout=5) == SIGNED_OUT
        assert await ticks.receive_output(timeout=5) == SIGNED_OUT
        await sync_to_async(push_order_change)(order)
        await _row_reaches(bystander, order)
        assert await user.receive_nothing(timeout=0.3)
        for communicator in (user, ticks, bystander):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_password_change_closes_the_sockets_of_sessions_signed_in_with_the_old_password(acme):
    browser = login_with_otp(Client(), acme.viewer)

    async def scenario():
        user = _socket(browser)
        await _opened(user)
        acme.viewer.set_password("a-new-long-password-7")
        await sync_to_async(acme.viewer.save)()
        assert await user.receive_output(timeout=5) == SIGNED_OUT
        await user.disconnect()

    async_to_sync(scenario)()


def test_saving_a_user_without_changing_credentials_keeps_their_sockets_open(acme):
    browser = login_with_otp(Client(), acme.viewer)

    async def scenario():
        user = _socket(browser)
        await _opened(user)
        acme.viewer.first_name = "Vee"
        await sync_to_async(acme.viewer.save)()
        assert await user.receive_nothing(timeout=0.5)
        await user.disconnect()

    async_to_sync(scenario)()


def test_a_role_change_closes_the_members_order_socket_and_no_row_follows(acme):
    order = _resting_order(acme)
    admin = login_with_otp(Client(), acme.admin)

    async def scenario():
        user, ticks = _socket(admin), _socket(admin, "/ws/ticks/?format=json")
        await _opened(user, ticks)
        await sync_to_async(membership_set_role)(
            actor=acme.owner, organisation=acme.org, user_id=acme.admin.pk, role="viewer"
        )
        assert await user.receive_output(timeout=5) == ACCESS_CHANGED
        await sync_to_async(push_order_change)(order)
        assert await user.receive_nothing(timeout=0.3)
        assert await ticks.receive_nothing(timeout=0.1)  # quotes are not the account's: that socket stays
        for communicator in (user, ticks):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_revoking_a_grant_closes_the_order_socket_and_no_row_of_the_account_follows(acme):
    order = _resting_order(acme)
    viewer = login_with_otp(Client(), acme.viewer)

    async def scenario():
        user = _socket(viewer)
        await _opened(user)
        await sync_to_async(push_order_change)(order)
        await _row_reaches(user, order)
        await sync_to_async(revoke_account)(
            actor=acme.owner, account_id=acme.account.pk, user_id=acme.viewer.pk, access="view"
        )
        assert await user.receive_output(timeout=5) == ACCESS_CHANGED
        await sync_to_async(push_order_change)(order)
        assert await user.receive_nothing(timeout=0.3)
        await user.disconnect()

    async_to_sync(scenario)()


def test_removing_a_member_closes_their_order_socket(acme):
    trader = login_with_otp(Client(), acme.trader)

    async def scenario():
        user = _socket(trader)
        await _opened(user)
        from accounts.services import membership_remove

        await sync_to_async(membership_remove)(actor=acme.owner, organisation=acme.org, user_id=acme.trader.pk)
        assert await user.receive_output(timeout=5) == ACCESS_CHANGED
        await user.disconnect()

    async_to_sync(scenario)()


def test_a_session_that_expires_while_its_sockets_are_open_closes_them(acme):
    browser = login_with_otp(Client(), acme.trader)
    session = browser.session
    now = time.time()
    session["auth_at"] = now
    session["seen_at"] = now - settings.SESSION_IDLE_SECONDS + 1.5  # idle for all but the next 1.5 s
    session.save()

    async def scenario():
        user, ticks = _socket(browser), _socket(browser, "/ws/ticks/?format=json")
        await _opened(user, ticks)
        assert await user.receive_nothing(timeout=0.5)
        assert await user.receive_output(timeout=5) == SIGNED_OUT
        assert await ticks.receive_output(timeout=5) == SIGNED_OUT
        for communicator in (user, ticks):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_the_socket_beyond_the_cap_is_refused_with_a_reason_and_a_closed_one_frees_its_slot(acme, settings):
    settings.WEBSOCKET_MAX_PER_USER = 2
    browser = login_with_otp(Client(), acme.trader)
    elsewhere = login_with_otp(Client(), acme.trader)

    async def scenario():
        first, second = _socket(browser), _socket(elsewhere, "/ws/ticks/?format=json")
        await _opened(first, second)
        refused = _socket(browser)
        assert (await refused.connect())[0]  # accepted, so that the client reads the code and the reason
        closed = await refused.receive_output(timeout=5)
        assert closed["type"] == "websocket.close" and closed["code"] == 4429
        assert "at most 2 per user" in closed["reason"]
        refused_ticks = _socket(browser, "/ws/ticks/?format=json")
        assert (await refused_ticks.connect())[0]
        error = await refused_ticks.receive_json_from(timeout=5)
        assert error["code"] == "too_many_sockets" and error["extra"] == {"limit": 2}
        assert (await refused_ticks.receive_output(timeout=5))["code"] == 4429

        await second.disconnect()
        again = _socket(browser)
        await _opened(again)
        assert await again.receive_nothing(timeout=0.2)  # admitted and open
        for communicator in (first, again, refused, refused_ticks):
            await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_slot_not_renewed_lapses(acme, monkeypatch):
    """A socket lost without a disconnect (its process killed) stops counting once its slot lapses."""
    monkeypatch.setattr(sockets, "SLOT_SECONDS", 0.5)

    async def scenario():
        slots = sockets._slots()
        assert await slots.acquire(acme.trader.pk, "lost-1", 2)
        assert await slots.acquire(acme.trader.pk, "lost-2", 2)
        assert not await slots.acquire(acme.trader.pk, "new", 2)
        await asyncio.sleep(0.7)
        assert await slots.acquire(acme.trader.pk, "new", 2)
        await slots.release(acme.trader.pk, "new")

    async_to_sync(scenario)()
