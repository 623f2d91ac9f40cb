"""Re-seal every secret under the current key (BROKER_ENCRYPTION_KEY_ID): broker secrets and TOTP seeds.

Rotation: add a new key to BROKER_ENCRYPTION_KEYS (``--new-key`` prints one), make it current with
BROKER_ENCRYPTION_KEY_ID, restart, run this command, check that the old key id shows 0 rows for both
kinds, then remove the old key. docs/runbooks/key-rotation.md walks through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.otp import CLEAR, totp_seed_key_usage, totp_seeds_reseal
from brokers import crypto
from brokers.services.credentials import broker_credentials_key_usage, broker_credentials_rotate
from core.sealing import resealers


class Command(BaseCommand):
    help = "Re-seal all broker secrets and TOTP seeds under the current key and report rows per key id."

    def add_arguments(self, parser):
        parser.add_argument("--new-key", action="store_true", help="print a fresh key to add, and exit")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, new_key: bool, batch_size: int, **options):
        if new_key:
            self.stdout.write(crypto.new_key())
            return
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        self._rotate("re-encrypted {} secret(s)", broker_credentials_rotate, broker_credentials_key_usage, batch_size)
        self._rotate("re-sealed {} TOTP seed(s)", totp_seeds_reseal, totp_seed_key_usage, batch_size)
        for what, rotate, usage in resealers():  # the secrets other apps seal (core.sealing.register_resealer)
            self._rotate(f"re-sealed {{}} {what}", rotate, usage, batch_size)

    def _rotate(
        self,
        done_text: str,
        rotate: Callable[..., Iterator[int]],
        usage: Callable[[], dict[str, int]],
        batch_size: int,
    ) -> None:
        current = settings.BROKER_ENCRYPTION_KEY_ID
        before = usage()
        todo = sum(n for key_id, n in before.items() if key_id not in (current, CLEAR))
        try:
            with tqdm(total=todo, unit="secret", disable=todo == 0, file=self.stderr) as bar:
                for done in rotate(batch_size=batch_size):
                    bar.update(done)
        except crypto.SecretError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        after = usage()
        self.stdout.write(f"{done_text.format(todo)} under key {current!r}")
        for key_id in sorted(set(before) | set(after)):
            note = " never verify: remove these devices and their users enrol again" if key_id == CLEAR else ""
            self.stdout.write(f"  {key_id}: {after.get(key_id, 0)} row(s){note}")
