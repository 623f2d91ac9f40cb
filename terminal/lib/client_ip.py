"""The client's address as seen by the first trusted proxy.

Behind nginx every request comes from the proxy, and X-Forwarded-For is client-settable on its
left side. Each trusted proxy appends the address it received the connection from, so with
TRUSTED_PROXY_COUNT = n the client is the n-th entry from the right; anything further left was
written by the client and is ignored. Used by the brute-force lockout and the API-key IP binding.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP address as a string, or None when it cannot be determined."""
    hops = settings.TRUSTED_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR")
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        candidate = forwarded[-hops] if len(forwarded) >= hops else None
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None
