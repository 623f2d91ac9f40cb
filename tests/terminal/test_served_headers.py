"""What the real server tells every client: nothing cacheable, and in production no public metrics or
API map (docs/rbac.md)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.served import PRODUCTION_ENV, fetch, serve


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("served-production"), env=PRODUCTION_ENV) as url:
        yield url


@pytest.fixture(scope="module")
def development(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("served-development")) as url:
        yield url


@pytest.mark.parametrize("path", ["/api/health", "/api/v1/whoami", "/account/login/", "/"])
def test_dynamic_responses_may_not_be_stored_by_any_cache(production, path):
    status, headers, _ = fetch(production + path)
    assert status < 500
    assert "no-store" in headers["Cache-Control"], (path, status)


def test_static_files_keep_their_own_caching(production):
    status, headers, _ = fetch(production + "/static/css/terminal.css")
    assert status == 200 and "no-store" not in headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", ["/metrics", "/api/docs", "/api/openapi.json"])
def test_in_production_metrics_and_the_api_map_are_not_public(production, path):
    assert fetch(production + path)[0] == 404


def test_while_developing_the_api_map_is_public(development):
    status, _, body = fetch(development + "/api/openapi.json")
    assert status == 200 and b'"openapi"' in body


@pytest.mark.django_db
@override_settings(PRODUCTION=True)
def test_in_production_a_user_signed_in_with_both_factors_reads_the_api_docs(otp_login):
    from tests.accounts.conftest import make_user

    client = Client()
    assert client.get("/api/openapi.json").status_code == 404
    otp_login(client, make_user("docs-reader"))
    assert client.get("/api/openapi.json").status_code == 200
