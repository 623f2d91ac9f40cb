"""TOTP seeds (otp_totp's TOTPDevice.key) sealed at rest instead of stored in hex.

Adds the proxy accounts.SealedTOTPDevice and seals every hex seed with core.sealing under
the current BROKER_ENCRYPTION_KEY_ID, bound to its row, so authenticators already set up keep
working and no usable seed is left in the database. Rows already sealed are left alone, so running
it again changes nothing. The reverse opens the seals and stores the seeds in hex again, for a
rollback to a release that reads them so (it needs the keys that sealed them); such a release cannot
read sealed seeds, so TOTP sign-in there fails until this is reversed.
"""

from django.db import migrations

from core import sealing


# Frozen copy of SealedTOTPDevice.key_binding: this migration must keep doing what it did if the live
# code changes. tests/accounts check that the two agree.
def key_binding(pk: int) -> bytes:
    return f"otp_totp.totpdevice|{pk}|key".encode()


def _is_sealed(key: str) -> bool:
    return key.startswith(f"{sealing.FORMAT_VERSION}:")


def totp_seeds_seal(apps, schema_editor):
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    db = schema_editor.connection.alias if schema_editor is not None else "default"
    for device in TOTPDevice.objects.using(db).only("pk", "key").order_by("pk").iterator(chunk_size=2000):
        if _is_sealed(device.key):
            continue
        try:
            seed = bytes.fromhex(device.key)
        except ValueError:
            raise ValueError(f"TOTP device {device.pk} has a key that is not hex; remove the device first") from None
        sealed = sealing.encrypt(seed, associated_data=key_binding(device.pk))
        TOTPDevice.objects.using(db).filter(pk=device.pk, key=device.key).update(key=sealed)


def totp_seeds_unseal(apps, schema_editor):
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    db = schema_editor.connection.alias if schema_editor is not None else "default"
    for device in TOTPDevice.objects.using(db).only("pk", "key").order_by("pk").iterator(chunk_size=2000):
        if _is_sealed(device.key):
            seed = sealing.decrypt(device.key, associated_data=key_binding(device.pk))
            TOTPDevice.objects.using(db).filter(pk=device.pk, key=device.key).update(key=seed.hex())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_backup_codes_hashed"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [
        migrations.CreateModel(
            name="SealedTOTPDevice",
            fields=[],
            options={"verbose_name": "TOTP device", "proxy": True, "indexes": [], "constraints": []},
            bases=("otp_totp.totpdevice",),
        ),
        migrations.RunPython(totp_seeds_seal, totp_seeds_unseal, elidable=False),
    ]
