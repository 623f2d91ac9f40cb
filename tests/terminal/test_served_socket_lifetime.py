"""Through the real server: a user's sockets beyond WEBSOCKET_MAX_PER_USER are refused with a code and
a reason, counted across processes, and signing out closes that session's sockets (infra.sockets).
Standalone (run_terminal's uvicorn, in-memory channel layer) and full stack (two gunicorn uvicorn
workers sharing Redis)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import redis_available
from tests.served import ROOT, serve

SIGN_IN = """
import django, json, sys
django.setup()
from django.test import Client
from accounts.models import User
from tests.otp_session import login_with_otp
user, _ = User.objects.get_or_create(pk=int(sys.argv[1]), defaults={"username": "socket-holder"})
print(json.dumps([login_with_otp(Client(), user).cookies["sessionid"].value for _ in range(2)]))
"""


def _served_env(var, env: dict[str, str]) -> dict[str, str]:
    """The environment ``serve`` gives the server, for a command on the same database."""
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    return {**environ, "VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "config.settings", **env}


def _sign_in_twice(var, env: dict[str, str]) -> list[str]:
    user_id = random.randint(10**6, 10**9)  # the Redis counts of one user are not shared with other runs
    out = subprocess.run(
        [sys.executable, "-c", SIGN_IN, str(user_id)],
        cwd=ROOT,
        env=_served_env(var, env),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _open(stack: contextlib.ExitStack, url: str, path: str, cookie: str):
    ws_url = url.replace("http://", "ws://") + path
    headers = {"Cookie": f"sessionid={cookie}"}
    return stack.enter_context(connect(ws_url, additional_headers=headers, origin=url, open_timeout=10))


def _closed_with(socket) -> tuple[int, str]:
    """Wait for the server to close ``socket``; return its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=10)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def _sign_out(url: str, cookie: str) -> None:
    """Sign out as the browser does: the page gives the CSRF token, the form posts to /logout/."""
    page = urllib.request.Request(url + "/", headers={"Cookie": f"sessionid={cookie}"})
    with urllib.request.urlopen(page, timeout=10) as response:
        csrf_cookie = re.search(r"csrftoken=(\w+)", response.headers["Set-Cookie"] or "").group(1)
        token = re.search(r'"X-CSRFToken": "(\w+)"', response.read().decode()).group(1)
    request = urllib.request.Request(
        url + "/logout/",
        method="POST",
        data=b"",
        headers={"Cookie": f"sessionid={cookie}; csrftoken={csrf_cookie}", "X-CSRFToken": token, "Origin": url},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        status = urllib.request.build_opener(NoRedirect).open(request, timeout=10).status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 302


STACKS = [
    pytest.param("uvicorn", {}, id="standalone"),
    pytest.param("gunicorn", {"WEB_CONCURRENCY": "2"}, id="full-stack", marks=pytest.mark.redis),
]


@pytest.mark.parametrize(("server", "env"), STACKS)
def test_the_socket_beyond_the_cap_is_refused_and_signing_out_closes_that_sessions_sockets(tmp_path, server, env):
    if server == "gunicorn":
        if not redis_available():
            pytest.skip("needs Redis: set REDIS_URL=redis://... to a running server")
        env = {**env, "REDIS_URL": settings.REDIS_URL}
    env = {**env, "WEBSOCKET_MAX_PER_USER": "3"}
    with serve(tmp_path, server=server, env=env) as url, contextlib.ExitStack() as stack:
        here, there = _sign_in_twice(tmp_path, env)
        orders_here = _open(stack, url, "/ws/user/", here)
        quotes_here = _open(stack, url, "/ws/ticks/?format=json", here)
        orders_there = _open(stack, url, "/ws/user/", there)

        refused = _open(stack, url, "/ws/ticks/?format=json", there)  # the fourth socket of the user
        error = json.loads(refused.recv(timeout=10))
        assert error["code"] == "too_many_sockets" and error["extra"] == {"limit": 3}
        code, reason = _closed_with(refused)
        assert code == 4429 and "at most 3 per user" in reason

        _sign_out(url, here)
        assert _closed_with(orders_here) == (4401, "signed out")
        assert _closed_with(quotes_here) == (4401, "signed out")

        # The other session's socket stays open, and the slots of the closed ones are free again.
        quotes_there = _open(stack, url, "/ws/ticks/?format=json", there)
        quotes_there.send(json.dumps({"action": "subscribe", "instruments": ["NSE:NOSUCH"]}))
        assert json.loads(quotes_there.recv(timeout=10))["code"] == "unknown_instrument"
        orders_there.send("ping")
        assert json.loads(orders_there.recv(timeout=10))["code"] == "read_only"
