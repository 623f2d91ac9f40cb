"""Backup codes (otp_static's StaticToken rows) stored as one-way digests instead of plain text.

Replaces every plaintext token with its digest (accounts.otp.backup_code_digest), so codes already
handed out keep working and, afterwards, no usable code is left in the database. Rows that are
digests already are left alone, so running it again changes nothing. There is no way back: the
reverse does nothing, and a release from before this migration cannot verify the digests (its
users sign in with TOTP and make new backup codes).
"""

import hashlib
import re
from base64 import b32encode

from django.db import migrations

# Frozen copies of accounts.otp.backup_code_digest and of the digest's shape: this migration must
# keep doing what it did if the live code changes. tests/accounts check that the two agree.
DIGEST = re.compile(r"[A-Z2-7]{16}")


def backup_code_digest(*, device_id: int, code: str) -> str:
    raw = hashlib.sha256(f"backup-code:{device_id}:{code}".encode()).digest()
    return b32encode(raw[:10]).decode()


def backup_codes_hash(apps, schema_editor):
    StaticToken = apps.get_model("otp_static", "StaticToken")
    db = schema_editor.connection.alias if schema_editor is not None else "default"
    changed = []
    for row in StaticToken.objects.using(db).only("pk", "device_id", "token").order_by("pk").iterator(chunk_size=2000):
        if not DIGEST.fullmatch(row.token):
            row.token = backup_code_digest(device_id=row.device_id, code=row.token)
            changed.append(row)
    StaticToken.objects.using(db).bulk_update(changed, ["token"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_role_groups"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [
        migrations.RunPython(backup_codes_hash, migrations.RunPython.noop, elidable=False),
    ]
