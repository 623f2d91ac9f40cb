"""The key service's own records: the data keys of envelope encryption and the retired master keys."""

from __future__ import annotations

from django.db import models


class DataKey(models.Model):
    """An AES-256 data key of envelope encryption (infra.kms): kept only wrapped by its master key at
    the key service, which alone can unwrap it. Sealed texts name it by ``handle`` (``v2:<handle>:...``).
    Rotating the master re-wraps it in place, so the texts under it need no rewrite."""

    handle = models.CharField(primary_key=True, max_length=16)
    master_key = models.CharField(max_length=300, help_text="The KMS key (ARN) that wraps it.")
    wrapped = models.BinaryField(help_text="The data key encrypted by its master key at the key service.")
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"data key {self.handle} under {self.master_key}"


class RetiredKey(models.Model):
    """A master key (a local key id or a KMS key ARN) that opens and seals nothing any more: marked
    only once no sealed field and no data key uses it (infra.key_rotation.key_retire)."""

    key = models.CharField(primary_key=True, max_length=300)
    retired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.key} (retired {self.retired_at:%Y-%m-%d})"
