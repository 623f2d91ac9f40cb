"""The cache holds a session's copy under a keyed hash of its key (accounts.sessions): someone who can
read Redis's keys learns no cookie that signs anyone in."""

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import caches
from django.test import Client

from accounts.sessions import SessionStore, cache_key_for

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


def test_a_signed_in_session_is_cached_under_a_keyed_hash_not_its_cookie_value():
    client = verified_client(make_user("alice"))
    assert client.get("/").status_code == 200
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    cache = caches[settings.SESSION_CACHE_ALIAS]
    assert cache.get(KEY_PREFIX + session_key) is None
    assert cache.get(cache_key_for(session_key)) is not None
    assert session_key not in cache_key_for(session_key)


def test_the_cache_key_as_a_cookie_signs_nobody_in():
    client = verified_client(make_user("alice"))
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    stolen = cache_key_for(session_key).removeprefix(KEY_PREFIX)
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = stolen
    assert thief.get("/").status_code == 302  # to the sign-in page


def test_signing_out_removes_the_cached_copy():
    store = SessionStore()
    store["answer"] = 42
    store.create()
    key = store.session_key
    assert caches[settings.SESSION_CACHE_ALIAS].get(cache_key_for(key)) is not None
    store.delete()
    assert caches[settings.SESSION_CACHE_ALIAS].get(cache_key_for(key)) is None
    assert not SessionStore().exists(key)
