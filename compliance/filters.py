"""The report filters beyond the shared ones (dates, account, algo id, source): each checked here and
refused with a field-named code, so every report's page and export refuse the same input the same way.

``check_extra_filters(values, errors)`` reads the fields a report declared (``values`` holds only
those) and returns their clean values; a refused one is added to ``errors`` as ``{"code", "message"}``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from accounts.models import Organisation

ACTION_RE = re.compile(r"^[a-z0-9_.]{1,100}$")
RULE_RE = re.compile(r"^[a-z0-9_]{1,64}$")
TARGET_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+(:[A-Za-z0-9_.:@-]{1,64})?$")
ORG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
# Login history: what happened, as its audit action.
LOGIN_EVENTS = {
    "login": "auth.login",
    "login_failed": "auth.login_failed",
    "otp_failed": "auth.otp_failed",
    "lockout": "auth.lockout",
    "logout": "auth.logout",
}
KILL_SWITCH_EVENTS = {"on": "rms.kill_switch_on", "off": "rms.kill_switch_off"}


class Refused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _text(value: str, *, label: str, max_length: int) -> str:
    if len(value) > max_length:
        raise Refused("text_too_long", f"{label} has at most {max_length} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Refused("text_invalid", f"{label} must not contain control characters.")
    return value


def _actor(value: str) -> str:
    """A username (exact), as the trail recorded it."""
    return _text(value, label="Actor", max_length=150)


def _action(value: str) -> str:
    """An audit action, or the start of one ending in a dot (``auth.`` for every sign-in event)."""
    if not ACTION_RE.match(value):
        raise Refused(
            "action_invalid", "Action is a dotted lower-case name such as order.placed, or its start (auth.)."
        )
    return value


def _target(value: str) -> str:
    """``app_label.model`` or ``app_label.model:id``."""
    if not TARGET_RE.match(value):
        raise Refused("target_invalid", "Target is a type such as brokers.brokeraccount, optionally with :id.")
    return value


def _rule(value: str) -> str:
    if not RULE_RE.match(value):
        raise Refused("rule_invalid", "Rule is a lower-case code such as max_order_value.")
    return value


def _login_event(value: str) -> str:
    if value not in LOGIN_EVENTS:
        raise Refused("event_unknown", f"Event must be one of {', '.join(LOGIN_EVENTS)}.")
    return value


def _kill_switch_event(value: str) -> str:
    if value not in KILL_SWITCH_EVENTS:
        raise Refused("state_unknown", f"State must be one of {', '.join(KILL_SWITCH_EVENTS)}.")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Refused("ip_invalid", "Address must be an IPv4 or IPv6 address such as 203.0.113.7.") from None


def _organisation(value: str) -> Organisation:
    """A platform report's organisation, by slug."""
    organisation = Organisation.objects.filter(slug=value).first() if ORG_RE.match(value) else None
    if organisation is None:
        raise Refused("org_not_found", "Organisation must be the slug of an organisation.")
    return organisation


# field -> its check. ``event`` means the login history's or the kill switch's, by the report's fields.
CHECKS: dict[str, Callable[[str], object]] = {
    "actor": _actor,
    "action": _action,
    "target": _target,
    "rule": _rule,
    "event": _login_event,
    "state": _kill_switch_event,
    "ip": _ip,
    "org": _organisation,
}


def check_extra_filters(values: dict[str, str], errors: dict[str, dict[str, str]]) -> dict[str, object]:
    """Return the clean value of every non-empty filter of ``values`` checked here; add refusals to ``errors``."""
    clean: dict[str, object] = {}
    for name, check in CHECKS.items():
        value = values.get(name, "")
        if not value:
            continue
        try:
            clean[name] = check(value)
        except Refused as refused:
            errors[name] = {"code": refused.code, "message": refused.message}
    return clean
