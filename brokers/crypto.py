"""Broker secrets (API keys, access tokens) encrypted at rest with AES-256-GCM under versioned keys.

The primitive is core/sealing.py, shared with the TOTP seeds of accounts: see its docstring
for the format, the keys and rotation. The associated data (BrokerAccount.credentials_binding) binds a
ciphertext to one account and one field, so one copied onto another account's row fails to decrypt.
"""

from __future__ import annotations

from core.sealing import (
    FORMAT_VERSION,
    NONCE_BYTES,
    SecretError,
    decrypt,
    encrypt,
    key_id_of,
    new_key,
    parse_keys,
)

__all__ = ["FORMAT_VERSION", "NONCE_BYTES", "SecretError", "decrypt", "encrypt", "key_id_of", "new_key", "parse_keys"]
