"""Sessions live in the database with a copy in the cache (accounts.sessions): while the cache is
unreachable a signed-in request is served from the database, and signing out fails rather than leave
a cached copy behind."""

import pytest
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings

from accounts.sessions import SessionStore

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _unreachable_cache():
    return RedisCache(UNREACHABLE, {"OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2}})


def test_a_session_is_loaded_from_the_database_when_the_cache_is_unreachable():
    store = SessionStore()
    store["answer"] = 42
    store.create()
    broken = SessionStore(store.session_key)
    broken._cache = _unreachable_cache()
    assert broken.load() == store.load()
    assert broken["answer"] == 42
    assert broken.exists(store.session_key)


def test_a_new_session_key_is_checked_against_the_database_when_the_cache_is_unreachable():
    broken = SessionStore()
    broken._cache = _unreachable_cache()
    broken["answer"] = 42
    broken.create()  # picks a fresh key through exists(), then writes the row
    assert SessionStore(broken.session_key).load()["answer"] == 42


def test_signing_out_fails_while_the_cache_is_unreachable_so_no_cached_copy_outlives_the_session():
    store = SessionStore()
    store["answer"] = 42
    store.create()
    broken = SessionStore(store.session_key)
    broken._cache = _unreachable_cache()
    with pytest.raises(Exception, match=r"(?i)connect"):
        broken.delete()


def test_a_signed_in_request_is_served_while_the_cache_is_unreachable():
    client = verified_client(make_user("alice"))
    assert client.get("/api/v1/whoami").status_code == 200
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": UNREACHABLE,
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/api/v1/whoami")
    assert response.status_code == 200, response.content
