"""Create the demo data for a standalone terminal and print how to sign in."""

from __future__ import annotations

import hashlib
import hmac
from base64 import b32encode

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm

from accounts.models import Membership, Organisation, Role, User
from accounts.services import sync_role_groups
from brokers.models import BrokerAccount

DEMO_PASSWORD = "demo-trader-2026"  # noqa: S105 - a published demo credential for the local terminal
DEMO_ORG = ("Demo Capital", "demo")
DEMO_USERS = {
    Role.OWNER: ("demo-owner", "Olivia", "Owner"),
    Role.ADMIN: ("demo-admin", "Arjun", "Admin"),
    Role.TRADER: ("demo-trader", "Tara", "Trader"),
    Role.VIEWER: ("demo-viewer", "Vikram", "Viewer"),
}


def _demo_key(username: str) -> str:
    """A 20-byte TOTP key (hex) derived from this installation's secret and the username.

    Stable across resets, so an authenticator app set up once keeps working.
    """
    return hmac.new(settings.SECRET_KEY.encode(), f"demo-totp:{username}".encode(), hashlib.sha1).hexdigest()


class Command(BaseCommand):
    help = "Create (or reset) the demo organisation with one user per role and print their sign-in details. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        org, _ = Organisation.objects.get_or_create(slug=DEMO_ORG[1], defaults={"name": DEMO_ORG[0]})
        account, _ = BrokerAccount.objects.get_or_create(
            broker="paper", client_code="DEMO1", defaults={"organisation": org, "label": "Paper (demo)"}
        )
        # --- market data: the sample symbol master (idempotent) ---
        from django.core.management import call_command

        call_command("load_instruments", sample=True, no_progress=True, stdout=self.stdout, stderr=self.stderr)

        self.stdout.write("Demo login:")
        self.stdout.write(f"  password: {DEMO_PASSWORD} (the same for every demo user)")
        for role, (username, first, last) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"}
            )
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.update_or_create(user=user, organisation=org, defaults={"role": role})
            sync_role_groups(user=user)
            device, _ = TOTPDevice.objects.update_or_create(
                user=user, name="demo", defaults={"key": _demo_key(username), "confirmed": True}
            )
            if role in (Role.TRADER, Role.VIEWER):
                assign_perm("brokers.view_brokeraccount", user, account)
            if role == Role.TRADER:
                assign_perm("brokers.trade_brokeraccount", user, account)
            secret = b32encode(device.bin_key).decode()
            code = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
            self.stdout.write(
                f"  {role.label:<7} username: {username:<12} TOTP secret: {secret}  (code now: {code:06d})"
            )
        self.stdout.write(
            f"  Paper account '{account.label}' is granted to demo-trader (trade) and demo-viewer (view)."
        )
