"""The registry of sealed fields: every model field that holds a core.sealing text, registered by its
app from ``AppConfig.ready``, so that key rotation (infra.key_rotation) re-seals all of them and a key
is retired only when none uses it.

    register_sealed_field("brokers.BrokerAccount", "credentials_ciphertext",
                          binding=lambda account: account.credentials_binding, label="broker credentials")

``binding(row)`` returns the associated data the field's texts are sealed with (the same function
the app seals and opens with). Values that are not sealed texts (empty, or a TOTP seed left in clear)
are left alone by rotation and counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models


@dataclass(frozen=True, slots=True)
class SealedField:
    model_label: str  # "app_label.ModelName"
    field: str
    binding: Callable[[Any], bytes]
    label: str

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)


_fields: dict[tuple[str, str], SealedField] = {}


def register_sealed_field(model: str, field: str, *, binding: Callable[[Any], bytes], label: str) -> None:
    """Register ``model.field`` (model as "app_label.ModelName") as holding sealed texts bound by
    ``binding(row)``; registering the same field again replaces it."""
    _fields[(model.lower(), field)] = SealedField(model, field, binding, label)


def sealed_fields() -> list[SealedField]:
    """Every registered sealed field, in registration order."""
    return list(_fields.values())
