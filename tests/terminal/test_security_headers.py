"""Content-Security-Policy, CSRF on forms and HTMX, and cookie flags."""

import re

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db


def test_pages_send_a_csp_without_inline_scripts():
    response = Client().get("/login/")
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'self'" in script_src and "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


def test_forms_are_refused_without_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login/", {"username": "a", "password": "b"}).status_code == 403


def test_every_page_gives_htmx_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/").content.decode()
    header = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page)
    assert header, "base.html must set hx-headers with the CSRF token"
    response = client.post("/login/", {"username": "a", "password": "b"}, HTTP_X_CSRFTOKEN=header.group(1))
    assert response.status_code == 200  # past CSRF, on to the (failed) sign-in


def test_session_and_csrf_cookies_are_not_readable_by_scripts():
    assert settings.SESSION_COOKIE_HTTPONLY and settings.CSRF_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
