"""The former name of ``manage.py rotate_keys``, which now re-seals every registered sealed field
(broker secrets and sessions, TOTP seeds, ...); kept so existing runbooks and scripts still work."""

from __future__ import annotations

from infra.management.commands.rotate_keys import Command as RotateKeys


class Command(RotateKeys):
    help = "Alias of rotate_keys: " + RotateKeys.help
