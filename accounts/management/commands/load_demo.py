"""Create the demo data for a standalone terminal and print how to sign in."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-trader-2026"  # noqa: S105 - a published demo credential for the local terminal


class Command(BaseCommand):
    help = "Create (or reset) the demo users and print their sign-in details. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"first_name": "Demo", "last_name": "Trader", "email": "demo@example.com"}
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        # --- market data: the sample symbol master (idempotent) ---
        from django.core.management import call_command

        call_command("load_instruments", sample=True, no_progress=True, stdout=self.stdout, stderr=self.stderr)

        self.stdout.write("Demo login:")
        self.stdout.write(f"  username: {DEMO_USERNAME}")
        self.stdout.write(f"  password: {DEMO_PASSWORD}")
