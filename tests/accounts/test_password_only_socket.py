"""The websocket treats a session that has not passed the second factor as anonymous."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from .conftest import make_user, password_only_client, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(client) -> tuple[bool, int | None]:
    from config.asgi import application

    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), (b"origin", b"http://testserver")]

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/user/", headers=headers)
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


def test_a_password_only_session_cannot_open_the_socket():
    connected, code = _connect(password_only_client(make_user("alice")))
    assert not connected and code == 4401


def test_a_verified_session_opens_the_socket():
    connected, _ = _connect(verified_client(make_user("alice")))
    assert connected


def test_an_expired_session_cannot_open_the_socket():
    client = verified_client(make_user("alice"))
    session = client.session
    session["auth_at"] = 0
    session.save()
    connected, code = _connect(client)
    assert not connected and code == 4401
