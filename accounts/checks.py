"""System checks: TOTP seeds sealed under the current key fit the column that holds them."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from core import sealing

TOTP_SEED_BYTES = 20  # django-otp's default_key and the demo's keys


@register()
def check_totp_seed_fits(app_configs, **kwargs) -> list[Error]:
    from accounts.models import SealedTOTPDevice

    width = SealedTOTPDevice._meta.get_field("key").max_length
    length = sealing.sealed_length(TOTP_SEED_BYTES)  # computed, not sealed: the checks run before migrate
    if length <= width:
        return []
    key_id = settings.BROKER_ENCRYPTION_KEY_ID
    return [
        Error(
            f"a TOTP seed sealed under BROKER_ENCRYPTION_KEY_ID {key_id!r} takes {length} characters; "
            f"otp_totp's key column holds {width}",
            hint=f"Use a key id of at most {len(key_id) - (length - width)} characters.",
            id="accounts.E001",
        )
    ]
