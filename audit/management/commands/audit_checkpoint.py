from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.errors import CheckpointError
from audit.services import checkpoint_create


class Command(BaseCommand):
    help = "Sign the head of every audit chain into a checkpoint in the audit_checkpoints storage."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="write one even if nothing changed")

    def handle(self, *args, force: bool, **options) -> None:
        try:
            checkpoint = checkpoint_create(force=force)
        except CheckpointError as exc:
            raise CommandError(exc.message) from exc
        if checkpoint is None:
            self.stdout.write("Nothing new since the last checkpoint; none written.")
            return
        heads = ", ".join(f"chain {chain} at {seq}" for chain, (seq, _) in sorted(checkpoint.heads.items()))
        self.stdout.write(
            f"Wrote {checkpoint.name}: {checkpoint.events} events ({heads or 'empty trail'}), key {checkpoint.key_id}."
        )
