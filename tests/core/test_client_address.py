"""The client address is the peer's unless the peer is a trusted proxy (core.client_ip), in the
application and through the real servers, which apply no proxy headers of their own."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from core.client_ip import TrustedProxyMiddleware, client_ip, parse_networks, resolve
from core.env import EnvError, env_networks
from tests.served import SERVERS, fetch, serve

PROXIES = parse_networks(["10.0.0.0/24", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.7", "", "198.51.100.7"),
        ("198.51.100.7", "10.9.9.9", "198.51.100.7"),  # not a proxy: its header is not read
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "203.0.113.9, 198.51.100.1", "198.51.100.1"),  # the forged left entry is ignored
        ("10.0.0.2", "203.0.113.9, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two trusted hops
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),  # every hop trusted: the leftmost
        ("10.0.0.2", "", "10.0.0.2"),  # a proxy's own request
        ("10.0.0.2", "not-an-address", None),
        ("fd00::5", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.2", "198.51.100.1:51234", "198.51.100.1"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),  # an IPv4 peer seen through a v6 socket
        (None, "198.51.100.1", None),
        ("", "198.51.100.1", None),
    ],
)
def test_the_client_is_the_first_address_from_the_right_that_is_not_a_trusted_proxy(peer, forwarded, expected):
    assert resolve(peer, forwarded, PROXIES) == expected


@given(peer=st.ip_addresses(), forwarded=st.text(max_size=200))
def test_with_no_trusted_proxy_the_forwarded_header_never_changes_the_address(peer, forwarded):
    assert resolve(str(peer), forwarded, ()) == str(getattr(peer, "ipv4_mapped", None) or peer)


@given(forwarded=st.text(max_size=300))
def test_any_header_from_a_proxy_gives_an_address_or_none_and_never_raises(forwarded):
    result = resolve("10.0.0.2", forwarded, PROXIES)
    assert result is None or isinstance(result, str)


def test_a_bad_trusted_proxies_value_stops_start_up_naming_the_variable():
    with pytest.raises(EnvError, match=r"TRUSTED_PROXIES='10\.0\.0\.300'"):
        env_networks("TRUSTED_PROXIES", [], environ={"TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.300"})
    assert env_networks("TRUSTED_PROXIES", [], environ={"TRUSTED_PROXIES": "10.0.0.1/8, ::1"}) == [
        "10.0.0.0/8",
        "::1/128",
    ]


def _through_middleware(**meta) -> dict:
    seen = {}

    def view(request):
        seen.update(request.META, client=client_ip(request), secure=request.is_secure())
        return HttpResponse()

    TrustedProxyMiddleware(view)(RequestFactory().get("/", **meta))
    return seen


@override_settings(TRUSTED_PROXIES=["10.0.0.0/24"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_the_middleware_takes_address_and_scheme_from_a_trusted_proxy_only():
    via_proxy = _through_middleware(
        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1", HTTP_X_FORWARDED_PROTO="https"
    )
    assert via_proxy["REMOTE_ADDR"] == via_proxy["client"] == "198.51.100.1"
    assert via_proxy["secure"] and "HTTP_X_FORWARDED_FOR" not in via_proxy  # nothing later reads the list
    direct = _through_middleware(
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_REAL_IP="1.2.3.4",
    )
    assert direct["REMOTE_ADDR"] == direct["client"] == "198.51.100.7"
    assert not direct["secure"]
    assert not {"HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_REAL_IP"} & direct.keys()


# --- through the real servers ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=SERVERS)
def served(request, tmp_path_factory):
    """The terminal served on loopback by each server, with no proxy trusted."""
    with serve(tmp_path_factory.mktemp(f"client-ip-{request.param}"), server=request.param) as url:
        yield url


def test_through_the_real_server_a_forged_forwarded_address_does_not_escape_the_lockout(served):
    from django.conf import settings

    # Each attempt claims a fresh address; the server still sees one client (loopback) and locks it out.
    body = json.dumps({"username": "nobody-here", "password": "wrong-password", "otp": "123456"}).encode()
    statuses = [
        fetch(
            f"{served}/api/accounts/auth/token",
            method="POST",
            data=body,
            headers={"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{attempt}"},
        )[0]
        for attempt in range(settings.AXES_FAILURE_LIMIT + 1)
    ]
    assert statuses[-1] == 429, statuses
