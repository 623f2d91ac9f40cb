from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from retention.policy import MINIMUM_YEARS, configured_years, stored_years, sync_policy


class Command(BaseCommand):
    help = "Set the retention window the database enforces from RETENTION_YEARS (run as the database owner role)."

    def handle(self, *args, **options) -> None:
        if configured_years() < MINIMUM_YEARS:
            raise CommandError(f"RETENTION_YEARS is {configured_years()}; it must be at least {MINIMUM_YEARS}")
        before = stored_years()
        try:
            years = sync_policy()
        except DatabaseError as exc:
            raise CommandError(f"the policy row could not be written (run this as the owner role): {exc}") from exc
        self.stdout.write(f"retention window: {years} years (was {before})")
