"""Web sign-in: password, then a one-time code; enrolment; backup codes; the admin."""

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import backup_codes_issue
from audit.models import AuditEvent

from .conftest import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.django_db

VERIFY = "/account/otp/verify/"


def _password_login(username: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_a_password_alone_reaches_only_the_otp_page():
    make_user("alice")
    client = _password_login("alice")
    for path in ("/", "/account/", "/orgs/any/members/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(VERIFY), path
    assert client.get(VERIFY).status_code == 200
    assert client.get("/api/health").status_code in (200, 503)


def test_a_correct_code_completes_the_sign_in_and_is_audited():
    user = make_user("alice")
    client = _password_login("alice")
    device = TOTPDevice.objects.get(user=user)
    response = client.post(VERIFY, {"token": totp_code(device), "next": "/account/"})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.filter(action="auth.login").last()
    assert event.actor == f"user:{user.pk}" and event.payload_data["channel"] == "web"


def test_a_replayed_totp_code_is_rejected():
    user = make_user("alice")
    device = TOTPDevice.objects.get(user=user)
    code = totp_code(device)
    first = _password_login("alice")
    assert first.post(VERIFY, {"token": code})["Location"] == "/"
    second = _password_login("alice")
    response = second.post(VERIFY, {"token": code})
    assert response.status_code == 200 and b"already used" in response.content
    assert second.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=f"user:{user.pk}").exists()


def test_a_wrong_code_is_refused_and_audited():
    user = make_user("alice")
    client = _password_login("alice")
    response = client.post(
        VERIFY, {"token": "000000" if totp_code(user.totpdevice_set.get()) != "000000" else "111111"}
    )
    assert response.status_code == 200 and b"wrong" in response.content
    event = AuditEvent.objects.get(action="auth.otp_failed")
    assert event.payload_data == {"channel": "web", "kind": "totp"}


def test_a_backup_code_works_once():
    user = make_user("alice")
    code = backup_codes_issue(user=user)[0]
    client = _password_login("alice")
    assert client.post(VERIFY, {"token": code})["Location"] == "/"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.get(action="auth.login").payload_data["factor"] == "StaticDevice"
    response = _password_login("alice").post(VERIFY, {"token": code})
    assert response.status_code == 200 and b"already used" in response.content


def test_a_backup_code_typed_in_groups_signs_in_though_only_its_digest_is_stored():
    user = make_user("alice")
    code = backup_codes_issue(user=user)[0]
    assert code not in StaticDevice.objects.get(user=user).token_set.values_list("token", flat=True)
    grouped = " ".join(code[i : i + 4] for i in range(0, len(code), 4))
    assert _password_login("alice").post(VERIFY, {"token": grouped})["Location"] == "/"
    assert StaticDevice.objects.get(user=user).token_set.count() == 9


def test_a_wrong_backup_code_is_refused_and_audited():
    user = make_user("alice")
    backup_codes_issue(user=user)
    response = _password_login("alice").post(VERIFY, {"token": "abcdefghijklmnop"})
    assert response.status_code == 200 and b"wrong" in response.content
    event = AuditEvent.objects.get(action="auth.otp_failed")
    assert event.payload_data == {"channel": "web", "kind": "backup"}
    assert StaticDevice.objects.get(user=user).token_set.count() == 10


def test_totp_sign_ins_do_not_throttle_the_backup_codes():
    user = make_user("alice")
    backup_codes_issue(user=user)
    device = TOTPDevice.objects.get(user=user)
    for offset in (-1, 0, 1):  # three distinct time steps inside the tolerance window
        client = _password_login("alice")
        assert client.post(VERIFY, {"token": totp_code(device, offset)})["Location"] == "/"
        device.refresh_from_db()
    assert StaticDevice.objects.get(user=user).throttling_failure_count == 0


def test_enrolment_shows_an_svg_qr_code_and_a_confirmation_code_finishes_it():
    user = make_user("newbie", device=False)
    client = _password_login("newbie")
    assert client.get("/")["Location"].startswith("/account/otp/enrol/")
    page = client.get("/account/otp/enrol/")
    assert page.status_code == 200 and b"<svg" in page.content and b"otpauth" not in page.content.split(b"<svg")[0]
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.post("/account/otp/enrol/", {"token": "12345x"}).status_code == 200  # not six digits
    response = client.post("/account/otp/enrol/", {"token": totp_code(device)})
    assert response.status_code == 200 and b"backup-codes" in response.content
    assert response.content.count(b"<li><code>") == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.otp_enrolled").exists()


def test_a_wrong_enrolment_code_leaves_the_device_unconfirmed():
    user = make_user("newbie", device=False)
    client = _password_login("newbie")
    client.get("/account/otp/enrol/")
    device = TOTPDevice.objects.get(user=user)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = client.post("/account/otp/enrol/", {"token": wrong})
    assert response.status_code == 200 and b"does not match" in response.content
    device.refresh_from_db()
    assert not device.confirmed and client.get("/").status_code == 302


def test_the_admin_requires_the_second_factor():
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = _password_login("staff")
    assert client.get("/admin/")["Location"].startswith(VERIFY)
    client.post(VERIFY, {"token": totp_code(TOTPDevice.objects.get(user=staff))})
    assert client.get("/admin/").status_code == 200


def test_the_admin_site_itself_refuses_a_staff_session_that_passed_only_the_password(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "accounts.middleware.RequireOTPMiddleware"]
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = _password_login("staff")  # were RequireOTPMiddleware bypassed, the OTPAdminSite still refuses
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.post(VERIFY, {"token": totp_code(TOTPDevice.objects.get(user=staff))})
    assert client.get("/admin/").status_code == 200


def test_an_htmx_request_from_a_password_only_session_gets_401_otp_required():
    make_user("alice")
    response = _password_login("alice").get("/", HTTP_HX_REQUEST="true")
    assert response.status_code == 401 and response.json()["code"] == "otp_required"


def test_sign_in_events_are_counted_for_metrics():
    make_user("alice")
    _password_login("alice").post(VERIFY, {"token": "abcdefgh"})
    metrics = Client().get("/metrics").content.decode()
    assert 'terminal_auth_security_events_total{action="auth.otp_failed"}' in metrics
