"""The kill switch: the switches covering an order (``kill_switch_keys``, ``active_kill_switch``, read
on every order placed), who may engage or lift one (``may_engage``, ``may_release``), and engaging
and lifting it, audited (``kill_switch_set``, ``kill_switch_release``).

The OMS engages a switch under the account locks and then cancels open orders and squares off
positions (orders.services.kill_switch_engage); ``check_pre_trade`` refuses new exposure while one is on.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.selectors import trades_nowhere
from audit.services import audit_record
from infra.prepared import Prepared
from rms.errors import KillSwitchForbidden, KillSwitchInvalid
from rms.models import KillScope, KillSwitch
from rms.selectors import kill_switch_organisation_ids
from rms.services.access import _managed_orgs


def kill_switch_keys(*, organisation_id: int, account_id: int, user_id: int | None) -> list[str]:
    """Return the keys of every kill switch that covers an order by ``user_id`` on the account."""
    keys = [KillScope.GLOBAL, f"organisation:{organisation_id}", f"account:{account_id}"]
    if user_id is not None:
        keys.append(f"user:{user_id}")
    return keys


# Read on every order placed: compiled once (four keys; an order without a user repeats the first).
_ACTIVE_KILL_SWITCH = Prepared(
    lambda p: KillSwitch.objects.filter(active=True, key__in=[p.k0, p.k1, p.k2, p.k3]).order_by("pk")[:1],
    values=("key",),
    flat=True,
    k0=str,
    k1=str,
    k2=str,
    k3=str,
)


def active_kill_switch(*, organisation_id: int, account_id: int, user_id: int | None) -> str | None:
    """Return the key of an active kill switch covering the order, or None."""
    keys = kill_switch_keys(organisation_id=organisation_id, account_id=account_id, user_id=user_id)
    k0, k1, k2, k3 = (str(key) for key in (keys + keys[:1])[:4])
    return _ACTIVE_KILL_SWITCH.first(k0=k0, k1=k1, k2=k2, k3=k3)


def _target_orgs(scope: str, target_id: int | None) -> set[int]:
    return kill_switch_organisation_ids(scope=scope, target_id=target_id)


def may_engage(*, actor, scope: str, target_id: int | None) -> bool:
    """Anyone who may trade an account may halt it, and users may halt themselves (except a Compliance
    member, who trades nowhere); Owners and Admins may halt anything in their organisations; only a
    superuser may halt everything."""
    if actor is None:  # the system (MTM monitor)
        return True
    if scope == KillScope.GLOBAL:
        return actor.is_superuser
    if scope == KillScope.USER and target_id == actor.pk:
        return not trades_nowhere(user=actor)  # a Compliance member changes nothing, not even their own halt
    if scope == KillScope.ACCOUNT:
        from brokers.selectors import account_list_for_user

        if target_id is not None and account_list_for_user(user=actor, access="trade").filter(pk=target_id).exists():
            return True
    orgs = _target_orgs(scope, target_id)
    return (bool(orgs) and orgs <= _managed_orgs(actor)) or actor.is_superuser


def may_release(*, actor, scope: str, target_id: int | None) -> bool:
    """Only an Owner or Admin of the organisation concerned (a superuser for global) lifts a kill switch."""
    if actor is None:
        return False
    if actor.is_superuser:
        return True
    if scope == KillScope.GLOBAL:
        return False
    orgs = _target_orgs(scope, target_id)
    return bool(orgs) and orgs <= _managed_orgs(actor)


def _check_scope(scope: str, target_id: int | None) -> None:
    if scope not in KillScope.values or (scope != KillScope.GLOBAL) == (target_id is None):
        raise KillSwitchInvalid(
            f"{scope!r} with target {target_id!r} is not a kill switch: the scope is global (no target),"
            " or organisation, account or user with its id.",
            extra={"scope": scope, "target_id": target_id},
        )


def kill_switch_set(*, actor, scope: str, target_id: int | None, reason: str, ip: str | None = None) -> KillSwitch:
    """Turn a kill switch on (inside the caller's transaction) and audit it; return it.

    Raises KillSwitchInvalid for a scope that names no switch, KillSwitchForbidden when ``actor`` may
    not engage it. The OMS calls this under the account
    locks and then cancels open orders and squares off positions (orders.services.kill_switch_engage).
    """
    _check_scope(scope, target_id)
    if not may_engage(actor=actor, scope=scope, target_id=target_id):
        raise KillSwitchForbidden("You may not engage this kill switch.", extra={"scope": scope})
    key = KillSwitch.key_for(scope, target_id)
    switch, _ = KillSwitch.objects.select_for_update().get_or_create(
        key=key, defaults={"scope": scope, "target_id": target_id}
    )
    switch.active = True
    switch.reason = reason[:300]
    switch.engaged_by = _label(actor)
    switch.engaged_at = timezone.now()
    switch.save()
    audit_record(
        actor=actor or "system:rms",
        action="rms.kill_switch_on",
        target=switch,
        payload={"key": key, "reason": switch.reason},
        ip=ip,
    )
    return switch


@transaction.atomic
def kill_switch_release(*, actor, scope: str, target_id: int | None, ip: str | None = None) -> KillSwitch:
    """Lift a kill switch and audit it; return it. Raises KillSwitchForbidden unless Owner/Admin (superuser
    for global), KillSwitchInvalid (422) for a scope that names no switch, and ``kill_switch_not_active``
    (409) when it is not on."""
    _check_scope(scope, target_id)
    if not may_release(actor=actor, scope=scope, target_id=target_id):
        raise KillSwitchForbidden("Only an Owner or Admin may lift a kill switch.", extra={"scope": scope})
    key = KillSwitch.key_for(scope, target_id)
    updated = KillSwitch.objects.filter(key=key, active=True).update(
        active=False, released_by=_label(actor), released_at=timezone.now()
    )
    if updated != 1:
        error = KillSwitchForbidden(f"Kill switch {key} is not on.", code="kill_switch_not_active")
        error.status = 409
        raise error
    switch = KillSwitch.objects.get(key=key)
    audit_record(actor=actor, action="rms.kill_switch_off", target=switch, payload={"key": key}, ip=ip)
    return switch


def _label(actor) -> str:
    return "system:rms" if actor is None else f"user:{actor.pk}"
