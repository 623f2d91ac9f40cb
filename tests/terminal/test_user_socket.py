import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from infra.consumers import UserConsumer
from infra.push import push_to_user

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user):
    communicator = WebsocketCommunicator(UserConsumer.as_asgi(), "/ws/user/")
    communicator.scope["user"] = user
    return communicator


def test_an_anonymous_socket_is_closed():
    async def scenario():
        communicator = _communicator(AnonymousUser())
        connected, code = await communicator.connect()
        assert not connected and code == 4401

    async_to_sync(scenario)()


def test_a_push_reaches_only_the_users_own_sockets():
    alice = User.objects.create_user("alice", password="x-long-password-1")
    bob = User.objects.create_user("bob", password="x-long-password-2")

    async def scenario():
        mine, theirs = _communicator(alice), _communicator(bob)
        assert (await mine.connect())[0] and (await theirs.connect())[0]
        from asgiref.sync import sync_to_async

        await sync_to_async(push_to_user)(alice.pk, '<div id="order-1" hx-swap-oob="true">OPEN</div>')
        assert await mine.receive_from(timeout=5) == '<div id="order-1" hx-swap-oob="true">OPEN</div>'
        assert await theirs.receive_nothing(timeout=0.3)
        await mine.send_to(text_data="hello")
        assert '"code": "read_only"' in await mine.receive_from(timeout=5)
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()
