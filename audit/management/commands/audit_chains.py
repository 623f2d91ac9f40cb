from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit.services import audit_chain_limit_set


class Command(BaseCommand):
    help = (
        "Make the database accept the audit chains 1..AUDIT_CHAINS (PostgreSQL). Run it as the owner role, "
        "which owns the limit; the application role cannot change it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--database", default="default", help="database alias (default: default)")

    def handle(self, *args, database: str, **options) -> None:
        try:
            previous = audit_chain_limit_set(chains=settings.AUDIT_CHAINS, using=database)
        except DatabaseError as exc:
            raise CommandError(f"could not set the audit chain limit (run this as the owner role): {exc}") from exc
        if previous is None:
            self.stdout.write("This database has no audit chain limit (SQLite appends to chain 1 only).")
            return
        self.stdout.write(f"Audit chains accepted: 1..{settings.AUDIT_CHAINS} (was 1..{previous}).")
