"""The client's address: the connection's peer, unless the peer is a trusted proxy.

X-Forwarded-For is a list any client can write. Each proxy appends the address it received the
connection from, so the list is only believed from the right and only as far as trusted proxies
wrote it: starting from the peer, while the current address is one of ``TRUSTED_PROXIES`` (IP
addresses or networks), step one entry to the left; the first address that is not a trusted proxy
is the client. With no trusted proxies (the default) X-Forwarded-For is never read.

``TrustedProxyMiddleware`` applies this once per request, first in the chain: it sets REMOTE_ADDR to
the client and removes the X-Forwarded-* headers, and from a peer that is not a trusted proxy it
removes them unread. So nothing later (the lockout, the API-key address binding, the audit trail,
django-auditlog, Django's ``SECURE_PROXY_SSL_HEADER``) can be handed an address or a scheme the
client made up. The servers apply no proxy headers themselves (``config.serving``,
``run_terminal``): the rule lives here only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Return the networks of ``values`` (addresses or CIDRs); raise ValueError naming a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def resolve(peer: str | None, forwarded_for: str, trusted: tuple[Network, ...]) -> str | None:
    """Return the client's address given the connection's ``peer``, the X-Forwarded-For header and
    the trusted proxies; None when it cannot be determined (no peer, or a malformed hop)."""
    current = _address(peer)
    if current is None:
        return None
    hops = [part for part in forwarded_for.split(",") if part.strip()] if forwarded_for else []
    while hops and any(current in network for network in trusted):
        current = _address(hops.pop())
        if current is None:  # a trusted proxy wrote something that is not an address
            return None
    return str(current)


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP address as a string, or None when it cannot be determined."""
    trusted = _trusted(tuple(settings.TRUSTED_PROXIES))
    return resolve(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR", ""), trusted)


class TrustedProxyMiddleware:
    """Replace REMOTE_ADDR with the client's address and drop the X-Forwarded-* headers (see above)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = _address(meta.get("REMOTE_ADDR"))
        trusted = _trusted(tuple(settings.TRUSTED_PROXIES))
        from_proxy = peer is not None and any(peer in network for network in trusted)
        if from_proxy:
            meta["REMOTE_ADDR"] = client_ip(request) or ""
            scheme = meta.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
        for header in FORWARDED_HEADERS:
            meta.pop(header, None)
        if from_proxy and scheme in {"http", "https"}:
            # The proxy's word on the scheme, for SECURE_PROXY_SSL_HEADER; nobody else's.
            meta["HTTP_X_FORWARDED_PROTO"] = scheme
        return self.get_response(request)
