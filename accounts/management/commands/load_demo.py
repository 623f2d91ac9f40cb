"""Create the demo data for a standalone terminal and print how to sign in."""

from __future__ import annotations

import hashlib
import hmac
from base64 import b32encode

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.oath import TOTP
from guardian.shortcuts import assign_perm

from accounts.models import Membership, Organisation, Role, SealedTOTPDevice, User
from accounts.services import sync_role_groups
from brokers.models import BrokerAccount

DEMO_PASSWORD = "demo-trader-2026"  # noqa: S105 - a published demo credential for the local terminal
DEMO_ORG = ("Demo Capital", "demo")
DEMO_USERS = {
    Role.OWNER: ("demo-owner", "Olivia", "Owner"),
    Role.ADMIN: ("demo-admin", "Arjun", "Admin"),
    Role.TRADER: ("demo-trader", "Tara", "Trader"),
    Role.VIEWER: ("demo-viewer", "Vikram", "Viewer"),
    Role.COMPLIANCE: ("demo-compliance", "Chitra", "Compliance"),
}
# The platform's operator, who works in the Django admin (/admin/, behind both factors): staff in no
# organisation, with what running the platform needs and no more. Not a superuser: a superuser may
# change users' passwords, groups and flags, so could make anyone (themselves too) all-powerful; and
# without change_user the group cannot be widened from the admin either.
PLATFORM_ADMIN = ("demo-platform", "Priya", "Platform")
PLATFORM_ADMIN_GROUP = "Platform admin"
PLATFORM_ADMIN_PERMISSIONS = [
    "accounts.view_user",
    "accounts.view_organisation",
    "accounts.add_organisation",
    "accounts.change_organisation",
    "accounts.view_membership",  # changed by Owners and Admins on the organisation's pages (audited)
    "accounts.view_apikey",
    "brokers.view_brokeraccount",
    "brokers.add_brokeraccount",
    "brokers.change_brokeraccount",  # sets broker credentials, write-only and encrypted
    "compliance.view_auditevent",
    "compliance.view_reports",  # the platform's compliance reports, every organisation (/platform/compliance/)
    "otp_totp.view_totpdevice",
    "otp_totp.delete_totpdevice",  # a lost authenticator: the user enrols a new one at next sign-in
    "otp_static.view_staticdevice",
    "axes.view_accessattempt",
    "axes.delete_accessattempt",  # lifts a brute-force lockout
]


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
            if role in (Role.TRADER, Role.VIEWER):
                assign_perm("brokers.view_brokeraccount", user, account)
            if role == Role.TRADER:
                assign_perm("brokers.trade_brokeraccount", user, account)
            secret, code = self._totp(user)
            self.stdout.write(f"  {role.label:<10} username: {username:<15} TOTP secret: {secret}  (code now: {code})")
        self.stdout.write(
            f"  Paper account '{account.label}' is granted to demo-trader (trade) and demo-viewer (view)."
        )
        self._platform_admin()

    def _platform_admin(self) -> None:
        """Create (or reset) the demo platform admin and print their sign-in for /admin/."""
        group, _ = Group.objects.get_or_create(name=PLATFORM_ADMIN_GROUP)
        group.permissions.set(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in (name.split(".") for name in PLATFORM_ADMIN_PERMISSIONS)
        )
        username, first, last = PLATFORM_ADMIN
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"}
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
        user.is_staff, user.is_superuser = True, False
        user.save()
        user.groups.set([group])
        secret, code = self._totp(user)
        self.stdout.write(
            f"  Platform   username: {username:<15} TOTP secret: {secret}  (code now: {code})"
            "  staff: the Django admin at /admin/ and the platform's reports at /platform/compliance/"
        )

    @staticmethod
    def _totp(user: User) -> tuple[str, str]:
        """Give ``user`` the demo TOTP device; return its base32 secret and the current code."""
        device, _ = SealedTOTPDevice.objects.update_or_create(  # stored sealed
            user=user, name="demo", defaults={"key": _demo_key(user.username), "confirmed": True}
        )
        code = TOTP(device.bin_key, device.step, device.t0, device.digits).token()
        return b32encode(device.bin_key).decode(), f"{code:0{device.digits}d}"
