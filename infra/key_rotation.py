"""Key rotation over every registered sealed field (infra.sealed_fields): re-seal what is not under
the current key, re-wrap data keys under the current KMS key, count use per key, retire a key.

Rotation is resumable by construction: each batch re-seals, in its own transaction and under row
locks taken in primary-key order, rows whose text is not under the current key, re-checking each row
once locked (a concurrent write already under the current key is left alone, never overwritten with
stale data). A run stopped anywhere leaves every row either as it was or re-sealed, and the next run
picks up the rows still to do. A row that does not open stops the run with its SecretError and is
left as it was. Run by Celery beat (infra.tasks.rotate_keys) and ``manage.py rotate_keys``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from core import sealing
from core.errors import ApplicationError
from infra.kms import VERSION as KMS_VERSION
from infra.kms import KmsKeyService
from infra.models import DataKey, RetiredKey
from infra.sealed_fields import SealedField, sealed_fields

logger = logging.getLogger(__name__)

NOT_SEALED = "(not sealed)"  # values of a sealed field that are no sealed text (a TOTP seed in clear)
DATA_KEYS = "data keys"


class KeyRetireRefused(ApplicationError):
    """A key cannot be retired: it is the current key, or sealed fields or data keys still use it."""

    code = "key_in_use"
    status = 409


@dataclass(frozen=True, slots=True)
class Step:
    """What one batch did: ``count`` rows of ``label`` re-sealed (or data keys re-wrapped)."""

    label: str
    count: int


def _kms() -> KmsKeyService | None:
    provider = sealing.registered_provider(KMS_VERSION)
    return provider if isinstance(provider, KmsKeyService) else None


def _sealed_q(field: str) -> Q:
    q = Q()
    for version in sealing.versions():
        q |= Q(**{f"{field}__startswith": f"{version}:"})
    return q


def _stale_rows(spec: SealedField, prefix: str):
    return spec.model._default_manager.filter(_sealed_q(spec.field)).exclude(**{f"{spec.field}__startswith": prefix})


def _stale_data_keys(master: str):
    return DataKey.objects.exclude(master_key=master)


def rotation_pending() -> dict[str, int]:
    """The work a rotation would do now: {field label or DATA_KEYS: rows (data keys) not under the current key}."""
    pending: dict[str, int] = {}
    kms = _kms()
    if kms is not None:
        pending[DATA_KEYS] = _stale_data_keys(kms.current_master()).count()
    prefix = sealing.current_prefix()
    for spec in sealed_fields():
        pending[spec.label] = _stale_rows(spec, prefix).count()
    return pending


def keys_rotate(*, batch_size: int = 500) -> Iterator[Step]:
    """Move everything onto the current key, yielding a Step per committed batch: first the data keys
    re-wrapped under the current KMS key (when one is configured), then each sealed field's rows
    re-sealed under the sealing provider's current key. Raises SecretError (and stops, the batch
    rolled back) on a row or data key that cannot be opened."""
    kms = _kms()
    if kms is not None:
        master = kms.current_master()
        sealing.refuse_retired(master)
        while True:
            with transaction.atomic():
                batch = list(_stale_data_keys(master).select_for_update().order_by("pk")[:batch_size])
                for data_key in batch:
                    kms.rewrap(data_key)
            if not batch:
                break
            yield Step(DATA_KEYS, len(batch))
    prefix = sealing.current_prefix()
    for spec in sealed_fields():
        last = None
        while True:
            stale = _stale_rows(spec, prefix)
            if last is not None:
                stale = stale.filter(pk__gt=last)
            chunk = list(stale.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not chunk:
                break
            done = 0
            with transaction.atomic():
                manager = spec.model._default_manager
                for row in manager.select_for_update().filter(pk__in=chunk).order_by("pk"):
                    value = getattr(row, spec.field)
                    if not sealing.is_sealed(value) or value.startswith(prefix):
                        continue  # written anew since it was listed
                    binding = spec.binding(row)
                    resealed = sealing.encrypt(sealing.decrypt(value, associated_data=binding), associated_data=binding)
                    manager.filter(pk=row.pk).update(**{spec.field: resealed})
                    done += 1
            last = chunk[-1]
            yield Step(spec.label, done)


def key_usage() -> dict[str, dict[str, int]]:
    """Count use per master key: {field label: {key: rows}} (NOT_SEALED for values in clear), and
    {DATA_KEYS: {KMS key: data keys}}. A text whose data key is missing counts under its handle."""
    masters = dict(DataKey.objects.values_list("handle", "master_key"))
    usage: dict[str, dict[str, int]] = {}
    for spec in sealed_fields():
        counts: dict[str, int] = {}
        values = spec.model._default_manager.exclude(**{spec.field: ""}).values_list(spec.field, flat=True)
        for value in values.iterator():
            if not sealing.is_sealed(value):
                key = NOT_SEALED
            else:
                ref = sealing.key_id_of(value)
                key = ref if value.startswith(f"{sealing.FORMAT_VERSION}:") else masters.get(ref, f"missing {ref}")
            counts[key] = counts.get(key, 0) + 1
        usage[spec.label] = counts
    data_keys: dict[str, int] = {}
    for master in masters.values():
        data_keys[master] = data_keys.get(master, 0) + 1
    usage[DATA_KEYS] = data_keys
    return usage


def key_retire(*, key: str) -> RetiredKey:
    """Mark ``key`` (a local key id or a KMS key ARN) retired, so it opens and seals nothing; return
    the record. Raises KeyRetireRefused while it is the key new texts are sealed under, or any sealed
    field or data key still uses it."""
    if key == sealing.sealing_provider().current_master():
        raise KeyRetireRefused(
            f"Key {key!r} is current: make another key current and rotate first.", code="key_current"
        )
    in_use = {label: counts[key] for label, counts in key_usage().items() if counts.get(key)}
    if in_use:
        listed = ", ".join(f"{n} {label}" for label, n in in_use.items())
        raise KeyRetireRefused(f"Key {key!r} is still used by {listed}: rotate first.", extra={"in_use": in_use})
    with transaction.atomic():
        retired, created = RetiredKey.objects.get_or_create(key=key)
        if created:
            key_event("keys.retired", {"key": key})
    retired_keys_forget()
    return retired


# --- events: the audit trail (a layer above) records them through the hook it registers ----------------
KeyEvent = Callable[[str, Mapping[str, object]], None]
_on_event: list[KeyEvent] = []


def register_key_event(callback: KeyEvent) -> None:
    """Call ``callback(action, payload)`` for each key event: ``keys.retired`` {key}, ``keys.rotated``
    {counts per field}. Registered once (a second registration of the same callback is ignored)."""
    if callback not in _on_event:
        _on_event.append(callback)


def key_event(action: str, payload: Mapping[str, object]) -> None:
    """Report a key event to the registered callbacks (inside the caller's transaction, if any)."""
    for callback in _on_event:
        callback(action, payload)


# --- the retired check core.sealing asks on every open and seal ---------------------------------------
_retired: tuple[frozenset[str], float] | None = None


def retired_keys_forget() -> None:
    """Read the retired keys afresh at the next check (this process)."""
    global _retired
    _retired = None


def is_retired(key: str) -> bool:
    """Whether ``key`` is retired; the set is read at most every SEALING_RETIRED_CACHE_SECONDS per process."""
    global _retired
    now = time.monotonic()
    if _retired is None or now - _retired[1] > settings.SEALING_RETIRED_CACHE_SECONDS:
        _retired = (frozenset(RetiredKey.objects.values_list("key", flat=True)), now)
    return key in _retired[0]
