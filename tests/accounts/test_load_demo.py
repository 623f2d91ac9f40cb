import io
import re

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, User
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
    assert Membership.objects.filter(organisation__slug="demo").count() == 4
    assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
    secrets_first = re.findall(r"TOTP secret: ([A-Z2-7]+)", first)
    assert len(secrets_first) == 4 and secrets_first == re.findall(r"TOTP secret: ([A-Z2-7]+)", second)
    trader = User.objects.get(username="demo-trader")
    device = TOTPDevice.objects.get(user=trader)
    printed = re.search(r"demo-trader\s+TOTP secret: \S+\s+\(code now: (\d{6})\)", second).group(1)
    assert device.verify_token(printed)  # the hint is a real, current code
    paper = BrokerAccount.objects.get(broker="paper", client_code="DEMO1")
    assert paper in account_list_for_user(user=trader, access="trade")
    viewer = User.objects.get(username="demo-viewer")
    assert paper in account_list_for_user(user=viewer, access="view")
    assert paper not in account_list_for_user(user=viewer, access="trade")
