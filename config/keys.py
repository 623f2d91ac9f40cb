"""The secrets config/settings.py reads: Django's SECRET_KEY, the AES keys of broker secrets, and the
audit trail's signing key and HMAC keys.

Production requires each from the environment; elsewhere each is generated once and kept under
``var_dir`` (mode 0600), so a development or standalone install reads its own data after a restart.
Every function raises EnvError naming the variable, never echoing a key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from core.ed25519 import KeyFormatError, load_private_key
from core.env import EnvError, env_str


def _kept(var_dir: Path, name: str, new: Callable[[], str]) -> str:
    """Return the text of ``var_dir/name``, written first from ``new()`` (mode 0600) if it is missing."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new())
        path.chmod(0o600)
    return path.read_text()


def secret_key(*, production: bool, var_dir: Path) -> str:
    """SECRET_KEY: at least 50 characters, required in production."""
    key = env_str("SECRET_KEY")
    if key:
        if production and len(key) < 50:
            raise EnvError("SECRET_KEY", "<hidden>", "at least 50 random characters in production")
        return key
    if production:
        raise EnvError("SECRET_KEY", "", "at least 50 random characters (required when DJANGO_ENV=production)")
    return _kept(var_dir, "secret_key", lambda: secrets.token_urlsafe(64)).strip()


def _keyring(
    name: str,
    raw: str | None,
    chosen: str | None,
    *,
    production: bool,
    var_dir: Path,
    first_id: str,
    var_file: str,
    how: str,
    parse_keys,
    new_key,
) -> tuple[dict[str, bytes], str]:
    """Parse the keys ``raw`` of variable ``name`` ("id:base64,...") and ``chosen``, the id new material
    uses (default: the first); return (keys, that id). Production requires them; elsewhere ``first_id``
    is generated once under var/."""
    id_name = name.removesuffix("S") + "_ID"
    expected = f"comma-separated id:base64 entries, each a 32-byte key ({how})"
    if not raw:
        if production:
            raise EnvError(name, "", expected + " (required when DJANGO_ENV=production)")
        raw = _kept(var_dir, var_file, lambda: f"{first_id}:{new_key()}").strip()
    try:
        keys = parse_keys(raw)
    except ValueError as exc:
        raise EnvError(name, "<hidden>", f"{expected}; {exc}") from None
    if not keys:
        raise EnvError(name, "<hidden>", expected)
    current = chosen or next(iter(keys))
    if current not in keys:
        raise EnvError(id_name, current, f"one of the ids in {name}")
    return keys, current


def broker_keys(*, production: bool, var_dir: Path) -> tuple[dict[str, bytes], str]:
    """AES-256 keys for broker secrets and TOTP seeds (core/sealing.py): BROKER_ENCRYPTION_KEYS and
    BROKER_ENCRYPTION_KEY_ID."""
    from core.sealing import new_key, parse_keys

    return _keyring(
        "BROKER_ENCRYPTION_KEYS",
        env_str("BROKER_ENCRYPTION_KEYS"),
        env_str("BROKER_ENCRYPTION_KEY_ID"),
        production=production,
        var_dir=var_dir,
        first_id="k1",
        var_file="broker_keys",
        how="manage.py rotate_keys --new-key",
        parse_keys=parse_keys,
        new_key=new_key,
    )


def audit_signing_key(*, production: bool, var_dir: Path) -> str:
    """AUDIT_SIGNING_KEY, the Ed25519 key that signs audit checkpoints, as PEM (PKCS#8) or base64 of
    the 32-byte seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def new_pem() -> str:
        return (
            Ed25519PrivateKey.generate()
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        )

    key = env_str("AUDIT_SIGNING_KEY")
    if not key:
        if production:
            raise EnvError("AUDIT_SIGNING_KEY", "", "an Ed25519 private key (required when DJANGO_ENV=production)")
        key = _kept(var_dir, "audit_signing_key.pem", new_pem)
    try:
        load_private_key(key)
    except KeyFormatError:
        raise EnvError("AUDIT_SIGNING_KEY", "<hidden>", "an Ed25519 private key as PEM or base64 of 32 bytes") from None
    return key


def audit_hmac_keys(*, production: bool, var_dir: Path) -> tuple[dict[str, bytes], str]:
    """Keys of the audit chain's HMAC links (audit/chain.py): AUDIT_HMAC_KEYS and AUDIT_HMAC_KEY_ID.
    The database never holds them."""
    from audit.chain import new_key, parse_keys

    return _keyring(
        "AUDIT_HMAC_KEYS",
        env_str("AUDIT_HMAC_KEYS"),
        env_str("AUDIT_HMAC_KEY_ID"),
        production=production,
        var_dir=var_dir,
        first_id="a1",
        var_file="audit_hmac_keys",
        how="docs/runbooks/key-rotation.md",
        parse_keys=parse_keys,
        new_key=new_key,
    )
