"""Envelope encryption under AWS KMS: the ``v2`` key provider of core.sealing.

New texts are sealed with a data key from GenerateDataKey, made once per process and master key and
renewed after ``SEALING_KMS_DATA_KEY_SECONDS`` (a data key per batch of records: a TOTP seed's
column, 80 characters, holds a short handle but not a wrapped key). The data key is stored only
wrapped, with the ARN of the KMS key that wraps it, in ``infra.models.DataKey``; a text names it by its
handle (``v2:<handle>:<nonce>:<ciphertext>``) and stays bound to its row by the AES-GCM associated
data. The handle is the KMS encryption context of the wrap, so a wrapped key copied onto another
handle does not unwrap. Unwrapped data keys are cached in memory (bounded, for
``SEALING_KMS_CACHE_SECONDS``), so reading many rows calls KMS once per data key, not per row.

Rotating the KMS key (a new key id or alias as ``SEALING_KMS_KEY_ID``) re-wraps every data key under
the new one with ReEncrypt (``rewrap``): the plaintext data key never leaves KMS and no sealed row
changes. Errors are SecretError with a code: ``secret_key_unknown`` (no such data key),
``secret_key_retired``, ``secret_key_unavailable`` (KMS refused: key disabled, deleted, no access,
wrong context) and ``key_service_unreachable``.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from functools import partial
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.sealing import SecretError, refuse_retired
from infra.models import DataKey

VERSION = "v2"
PURPOSE = "terminal-sealing"
HANDLE_LENGTH = 8  # 40 random bits in base32


def _context(handle: str) -> dict[str, str]:
    return {"purpose": PURPOSE, "data-key": handle}


class KmsKeyService:
    """The ``v2`` key provider: data keys from AWS KMS, wrapped by ``SEALING_KMS_KEY_ID``."""

    version = VERSION
    backend = "kms"

    def __init__(self, *, key_id: str, region: str | None, endpoint_url: str | None) -> None:
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url
        self._lock = threading.RLock()
        self._client: Any = None
        self._master_arn: str | None = None
        self._sealing: tuple[str, bytes, str, float] | None = None  # handle, key, master, made at (monotonic)
        self._committed: set[str] = set()
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._cached_master: dict[str, str] = {}  # handle -> master, to refuse a cached key once retired
        # A forked child (a Celery prefork worker) makes its own HTTP connections and lock.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.RLock()
        self._client = None

    # --- the KMS client -------------------------------------------------------------------------
    def client(self) -> Any:
        """The boto3 KMS client (made once; boto3 clients are thread-safe)."""
        if self._client is None:
            self._client = boto3.client(
                "kms",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client(), operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SecretError(
                f"The key service refused {operation}: {error.get('Code', 'error')}.",
                code="secret_key_unavailable",
                extra={"kms_error": error.get("Code", "")},
            ) from None
        except BotoCoreError as exc:
            raise SecretError(
                f"The key service could not be reached ({type(exc).__name__}).", code="key_service_unreachable"
            ) from None

    # --- the provider interface -----------------------------------------------------------------
    def current_master(self) -> str:
        """The ARN of ``SEALING_KMS_KEY_ID`` (an id, ARN or alias), asked of KMS once per process."""
        if self._master_arn is None:
            self._master_arn = self._call("describe_key", KeyId=self.key_id)["KeyMetadata"]["Arn"]
        return self._master_arn

    def ref_length(self) -> int:
        return HANDLE_LENGTH

    def master_of(self, ref: str) -> str:
        master = DataKey.objects.filter(pk=ref).values_list("master_key", flat=True).first()
        if master is None:
            raise SecretError(f"Data key {ref!r} is not known here.", code="secret_key_unknown")
        return master

    def sealing_key(self) -> tuple[str, bytes]:
        master = self.current_master()
        refuse_retired(master)
        with self._lock:  # one data key per process and master, not one per concurrent first seal
            held = self._sealing
            fresh = (
                held is not None
                and held[2] == master
                and time.monotonic() - held[3] < settings.SEALING_KMS_DATA_KEY_SECONDS
                and (held[0] in self._committed or DataKey.objects.filter(pk=held[0]).exists())
            )
            if fresh and held is not None:
                return held[0], held[1]
            handle, key = self._new_data_key(master)
            self._sealing = (handle, key, master, time.monotonic())
            return handle, key

    def _new_data_key(self, master: str) -> tuple[str, bytes]:
        """Make a data key under ``master`` and store it wrapped. Inside a transaction the row commits
        or rolls back with the texts it sealed; until it has committed each use checks it still exists."""
        for _ in range(5):
            handle = base64.b32encode(os.urandom(5)).decode().lower()
            made = self._call("generate_data_key", KeyId=master, KeySpec="AES_256", EncryptionContext=_context(handle))
            try:
                with transaction.atomic():
                    DataKey.objects.create(handle=handle, master_key=made["KeyId"], wrapped=made["CiphertextBlob"])
            except IntegrityError:
                continue  # the same 40-bit handle twice: draw another
            transaction.on_commit(partial(self._committed.add, handle))
            self._remember(handle, made["Plaintext"], made["KeyId"])
            return handle, made["Plaintext"]
        raise SecretError("No free data key handle was found.", code="secret_key_unavailable")

    def opening_key(self, ref: str) -> bytes:
        cached = self._cached(ref)
        if cached is not None:
            refuse_retired(self._cached_master.get(ref, ""))
            return cached
        row = DataKey.objects.filter(pk=ref).values_list("master_key", "wrapped").first()
        if row is None:
            raise SecretError(f"Data key {ref!r} is not known here.", code="secret_key_unknown")
        master, wrapped = row
        refuse_retired(master)
        key = self._call("decrypt", CiphertextBlob=bytes(wrapped), KeyId=master, EncryptionContext=_context(ref))[
            "Plaintext"
        ]
        self._remember(ref, key, master)
        return key

    # --- the cache of unwrapped data keys -------------------------------------------------------
    def _remember(self, handle: str, key: bytes, master: str) -> None:
        with self._lock:
            self._cache[handle] = (key, time.monotonic())
            self._cache.move_to_end(handle)
            self._cached_master[handle] = master
            while len(self._cache) > settings.SEALING_KMS_CACHE_SIZE:
                old, _ = self._cache.popitem(last=False)
                self._cached_master.pop(old, None)

    def _cached(self, handle: str) -> bytes | None:
        with self._lock:
            entry = self._cache.get(handle)
            if entry is None:
                return None
            if time.monotonic() - entry[1] > settings.SEALING_KMS_CACHE_SECONDS:
                del self._cache[handle]
                return None
            return entry[0]

    def forget(self) -> None:
        """Drop every cached data key and the resolved master (after a rotation or a settings change)."""
        with self._lock:
            self._cache.clear()
            self._master_arn = None
            self._sealing = None
            self._cached_master.clear()

    # --- rotation -------------------------------------------------------------------------------
    def rewrap(self, data_key: DataKey) -> None:
        """Re-wrap ``data_key`` (a row locked by the caller) under the current master with ReEncrypt."""
        master = self.current_master()
        made = self._call(
            "re_encrypt",
            CiphertextBlob=bytes(data_key.wrapped),
            SourceKeyId=data_key.master_key,
            SourceEncryptionContext=_context(data_key.handle),
            DestinationKeyId=master,
            DestinationEncryptionContext=_context(data_key.handle),
        )
        DataKey.objects.filter(pk=data_key.pk).update(
            master_key=made["KeyId"], wrapped=made["CiphertextBlob"], rewrapped_at=timezone.now()
        )
        with self._lock:
            if data_key.handle in self._cache:
                self._cached_master[data_key.handle] = made["KeyId"]
