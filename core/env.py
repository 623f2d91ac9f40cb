"""Typed readers for environment variables.

Each reader returns the parsed value or raises ``EnvError`` naming the variable and the form it
expects, so that a bad deployment stops at start-up with one clear line instead of misbehaving later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


class EnvError(Exception):
    """A variable is set to a value of the wrong form."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name}={value!r} is invalid: expected {expected}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    return (os.environ if environ is None else environ).get(name)


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the variable as a string, or ``default`` when it is unset."""
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    """Return true for 1/true/yes/on, false for 0/false/no/off/empty; raise EnvError otherwise."""
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(name, value, "a boolean (true/false, 1/0, yes/no, on/off)")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Return the variable as an integer within [minimum, maximum]; raise EnvError otherwise."""
    value = _raw(name, environ)
    if value is None:
        return default
    bounds = ""
    if minimum is not None or maximum is not None:
        low = "-inf" if minimum is None else minimum
        high = "inf" if maximum is None else maximum
        bounds = f" between {low} and {high}"
    try:
        number = int(value.strip())
    except ValueError:
        raise EnvError(name, value, f"an integer{bounds}") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise EnvError(name, value, f"an integer{bounds}")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty, stripped items."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] | None = None) -> str:
    """Return the variable if it is one of ``choices``; raise EnvError otherwise."""
    value = _raw(name, environ)
    if value is None:
        return default
    if value not in choices:
        raise EnvError(name, value, "one of " + ", ".join(choices))
    return value


def env_database(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse a database URL (postgres://user@host:port/name or sqlite:///path) into Django's form."""
    import dj_database_url

    value = _raw(name, environ)
    url = default if value is None else value
    expected = "a database URL such as postgres://user:password@host:5432/name or sqlite:///path/to/file.db"
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise EnvError(name, url, expected)
    try:
        config = dj_database_url.parse(url, conn_max_age=0 if scheme == "sqlite" else 60, conn_health_checks=True)
    except (ValueError, dj_database_url.ParseError):
        raise EnvError(name, url, expected) from None
    if not config.get("NAME"):
        raise EnvError(name, url, expected + " (the database name is missing)")
    return dict(config)  # settings add keys the TypedDict does not declare


def env_redis_url(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """Return a redis:// or rediss:// URL with a valid port, or None when unset or empty."""
    value = _raw(name, environ)
    if not value:
        return None
    expected = "a Redis URL such as redis://host:6379/0"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        raise EnvError(name, value, expected) from None
    if parts.scheme not in {"redis", "rediss", "unix"} or (parts.scheme != "unix" and not parts.hostname):
        raise EnvError(name, value, expected)
    del port
    return value


def env_networks(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return a comma-separated list of IP addresses or CIDR networks, normalised (``10.0.0.0/8``);
    raise EnvError naming the first item that is neither."""
    import ipaddress

    networks = []
    for item in env_list(name, default, environ=environ):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise EnvError(name, item, "comma-separated IP addresses or networks (10.0.0.0/8, ::1)") from None
    return networks


def redis_url_has_password(url: str) -> bool:
    """True when a Redis URL carries a password (``redis://:pw@host``, ``redis://user:pw@host``,
    or ``?password=`` as redis-py reads it)."""
    from urllib.parse import parse_qs

    parts = urlsplit(url)
    return bool(parts.password) or bool(parse_qs(parts.query).get("password", [""])[0])


def redis_url_is_local(url: str) -> bool:
    """True for a unix:// socket or a loopback host (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress

    parts = urlsplit(url)
    if parts.scheme == "unix":
        return True
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


def redact_redis_url(url: str) -> str:
    """The URL with any password replaced by ``***``, to be named in an error."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
