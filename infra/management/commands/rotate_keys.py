"""Move every sealed field onto the current key, show what uses which key, or retire a key.

    manage.py rotate_keys                 re-seal (and re-wrap) what is not under the current key, with a progress bar
    manage.py rotate_keys --usage         rows per key for every sealed field, and data keys per KMS key
    manage.py rotate_keys --retire KEY    retire a local key id or a KMS key ARN once nothing uses it
    manage.py rotate_keys --new-key       print a fresh local key for BROKER_ENCRYPTION_KEYS

Beat runs the same rotation (infra.tasks.rotate_keys); docs/runbooks/key-rotation.md walks through it.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core import sealing
from core.errors import ApplicationError
from infra.key_rotation import key_event, key_retire, key_usage, keys_rotate, rotation_pending


class Command(BaseCommand):
    help = "Re-seal every sealed field under the current key; --usage, --retire KEY, --new-key."

    def add_arguments(self, parser):
        parser.add_argument("--new-key", action="store_true", help="print a fresh local key to add, and exit")
        parser.add_argument("--usage", action="store_true", help="show rows per key, and exit")
        parser.add_argument("--retire", metavar="KEY", help="retire a key (local id or KMS ARN) nothing uses")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, new_key: bool, usage: bool, retire: str | None, batch_size: int, **options):
        if new_key:
            self.stdout.write(sealing.new_key())
            return
        try:
            if retire is not None:
                key_retire(key=retire)
                self.stdout.write(f"retired {retire!r}: it opens and seals nothing from now on")
                return
            if not usage:
                self._rotate(batch_size)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        for label, counts in key_usage().items():
            self.stdout.write(f"{label}:")
            for key, n in sorted(counts.items()):
                self.stdout.write(f"  {key}: {n}")

    def _rotate(self, batch_size: int) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        todo = sum(rotation_pending().values())
        done: dict[str, int] = {}
        with tqdm(total=todo, unit="secret", disable=todo == 0, file=self.stderr) as bar:
            for step in keys_rotate(batch_size=batch_size):
                bar.update(step.count)
                done[step.label] = done.get(step.label, 0) + step.count
        if any(done.values()):
            key_event("keys.rotated", {label: n for label, n in done.items() if n})
        current = sealing.sealing_provider().current_master()
        summary = ", ".join(f"{n} {label}" for label, n in done.items() if n) or "nothing to do"
        self.stdout.write(f"rotated onto {current!r}: {summary}")
