import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import Membership, Role, SealedTOTPDevice, User
from brokers.models import BrokerAccount
from brokers.selectors import account_list_for_user

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def test_the_demo_has_one_user_per_role_with_a_printed_totp_secret_and_is_idempotent():
    first, second = _run(), _run()
    assert "Demo login:" in first and "password:" in first
    assert Membership.objects.filter(organisation__slug="demo").count() == 5
    assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
    secrets_first = re.findall(r"TOTP secret: ([A-Z2-7]+)", first)
    assert len(secrets_first) == 6 and secrets_first == re.findall(r"TOTP secret: ([A-Z2-7]+)", second)
    trader = User.objects.get(username="demo-trader")
    device = SealedTOTPDevice.objects.get(user=trader)
    printed = re.search(r"demo-trader\s+TOTP secret: \S+\s+\(code now: (\d{6})\)", second).group(1)
    assert device.verify_token(printed)  # the hint is a real, current code
    paper = BrokerAccount.objects.get(broker="paper", client_code="DEMO1")
    assert paper in account_list_for_user(user=trader, access="trade")
    viewer = User.objects.get(username="demo-viewer")
    assert paper in account_list_for_user(user=viewer, access="view")
    assert paper not in account_list_for_user(user=viewer, access="trade")


def _demo_login(output: str, username: str) -> tuple[Client, str]:
    """A client signed in with the printed password only, and the printed current code."""
    password = re.search(r"password: (\S+)", output).group(1)
    code = re.search(rf"{username}\s+TOTP secret: \S+\s+\(code now: (\d{{6}})\)", output).group(1)
    client = Client()
    assert client.post("/login/", {"username": username, "password": password}).status_code == 302
    return client, code


def test_the_demo_prints_a_platform_admin_who_reaches_the_admin_only_after_the_one_time_code():
    output = _run()
    assert re.search(r"Platform\s+username: demo-platform\s+TOTP secret: [A-Z2-7]+.*/admin/", output)
    admin = User.objects.get(username="demo-platform")
    assert admin.is_staff and not admin.is_superuser and not Membership.objects.filter(user=admin).exists()
    client, code = _demo_login(output, "demo-platform")
    assert client.get("/admin/")["Location"].startswith("/account/otp/verify/")  # the password is not enough
    assert client.post("/account/otp/verify/", {"token": code, "next": "/admin/"})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/platform/compliance/algos/").status_code == 200  # the platform's reports
    for page in ("brokers/brokeraccount/", "accounts/organisation/", "compliance/auditevent/", "otp_totp/totpdevice/"):
        assert client.get(f"/admin/{page}").status_code == 200, page
    # no way to widen anybody's powers: users are read-only, groups and permissions out of reach
    assert client.get(f"/admin/accounts/user/{admin.pk}/change/").status_code == 200
    assert client.post(f"/admin/accounts/user/{admin.pk}/change/", {"is_superuser": "on"}).status_code == 403
    assert client.get("/admin/auth/group/").status_code == 403
    assert _run() and User.objects.filter(is_staff=True).count() == 1  # idempotent


def test_no_organisation_demo_user_is_staff():
    _run()
    assert not User.objects.filter(memberships__organisation__slug="demo", is_staff=True).exists()
