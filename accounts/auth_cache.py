"""The signed-in user and the device that verified their session, read through the cache.

Every request of a signed-in browser needs its user (Django's AuthenticationMiddleware) and the
second-factor device recorded in its session (django-otp's OTPMiddleware): two queries a request
for rows that change rarely. ``AuthenticationMiddleware`` and ``OTPMiddleware`` here read both
through the cache (Redis in the full stack, local memory in standalone mode) by primary key and by
persistent id. The checks stay Django's and django-otp's, made on every request against the row:
the session's auth hash against the user's password hash, ``is_active``, the device's owner and
its ``confirmed`` flag.

Freshness: saving or deleting a user or a device drops its entry at once and again after the
transaction commits (``post_save``/``post_delete``), so a password change, a deactivation or a
removed device takes effect at the next request in every process. A change that bypasses model
signals (``QuerySet.update``, raw SQL, a command run beside standalone mode's in-memory cache)
takes effect within ``AUTH_CACHE_SECONDS`` (60 s by default), when the entry expires.
When the cache cannot be reached the rows are read from the database.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import OTPMiddleware as DjangoOTPMiddleware
from django_otp.models import Device

logger = logging.getLogger(__name__)

_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
_USER_KEY = "auth:user:{}"
_DEVICE_KEY = "auth:otp-device:{}"
_MISSING = "missing"  # a cached "no such row": a session naming a deleted device costs no query either
_UNREAD = object()  # no cache read made yet (None is a read that found nothing)
_verifying = threading.local()  # the request whose device OTPMiddleware is looking up, in this thread


def _fields(instance: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def _rebuild(model: type[models.Model], values: dict[str, Any]) -> models.Model | None:
    """The instance as loaded from the database, or None when the cached columns are not the model's
    (an entry written by another release during a blue/green switch)."""
    names = [f.attname for f in model._meta.concrete_fields]
    if values.keys() != set(names):
        return None
    return model.from_db(None, names, [values[n] for n in names])


def _cache_get(key: str):
    if not settings.AUTH_CACHE_SECONDS:  # off: no round trips at all
        return None
    try:
        return cache.get(key)
    except Exception:  # the database answers instead
        logger.warning("auth cache read failed", exc_info=True)
        return None


def _cache_get_many(keys: list[str]) -> dict[str, Any]:
    """The entries found for ``keys`` in one round trip ({} when the cache is off or unreachable)."""
    if not settings.AUTH_CACHE_SECONDS:
        return {}
    try:
        return cache.get_many(keys)
    except Exception:
        logger.warning("auth cache read failed", exc_info=True)
        return {}


def _cache_set(key: str, value) -> None:
    if not settings.AUTH_CACHE_SECONDS:  # a timeout of 0 would make Django's Redis client delete the key
        return
    try:
        cache.set(key, value, settings.AUTH_CACHE_SECONDS)
    except Exception:
        logger.warning("auth cache write failed", exc_info=True)


def _cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # the entry expires within AUTH_CACHE_SECONDS
        logger.warning("auth cache delete failed for %s", key, exc_info=True)


# --- the user -------------------------------------------------------------------------------------
def _user_key(user_id) -> str:
    return _USER_KEY.format(auth.get_user_model()._meta.pk.to_python(user_id))


def _device_key(persistent_id: str) -> str:
    return _DEVICE_KEY.format(DjangoOTPMiddleware._normalize_persistent_id(persistent_id))


def cached_user(user_id, values=_UNREAD) -> Any | None:
    """Return the active user with primary key ``user_id`` (as ModelBackend.get_user would), or None;
    ``values`` is the user's cache entry when it has been read already (None: not in the cache)."""
    user_model = auth.get_user_model()
    key = _user_key(user_id)
    if values is _UNREAD:
        values = _cache_get(key)
    user = None
    if values == _MISSING:
        return None
    if values is not None:
        user = _rebuild(user_model, values)
    if user is None:
        user = user_model._default_manager.filter(pk=user_id).first()
        _cache_set(key, _MISSING if user is None else _fields(user))
        if user is None:
            return None
    return user if ModelBackend().user_can_authenticate(user) else None


def get_user(request):
    """``django.contrib.auth.get_user`` with ModelBackend's user read through the cache.

    The cached user is accepted only when the session's auth hash matches it exactly; anything else
    (another backend, no hash, a hash made with a fallback secret, a password changed meanwhile) goes
    through Django's own ``get_user``, which reads the database and flushes or rotates the session.
    A session that passed the second factor has its device's entry read in the same round trip and
    kept on the request for ``OTPMiddleware``.
    """
    from django.contrib.auth.models import AnonymousUser

    try:
        user_id = auth._get_user_session_key(request)
        backend_path = request.session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    session_hash = request.session.get(HASH_SESSION_KEY)
    if backend_path == _MODEL_BACKEND and backend_path in settings.AUTHENTICATION_BACKENDS and session_hash:
        device_id = request.session.get(DEVICE_ID_SESSION_KEY)
        if device_id and settings.AUTH_CACHE_SECONDS:
            user_key, device_key = _user_key(user_id), _device_key(device_id)
            found = _cache_get_many([user_key, device_key])
            request._auth_cache_device = {device_key: found.get(device_key)}
            user = cached_user(user_id, values=found.get(user_key))
        else:
            user = cached_user(user_id)
        if user is not None and constant_time_compare(session_hash, user.get_session_auth_hash()):
            return user
    return auth.get_user(request)


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's AuthenticationMiddleware, reading the session's user through the cache (``get_user``)."""

    def process_request(self, request) -> None:
        super().process_request(request)  # the checks and request.auser, as Django sets them

        def load():
            if not hasattr(request, "_cached_user"):
                request._cached_user = get_user(request)
            return request._cached_user

        request.user = SimpleLazyObject(load)


# --- the second-factor device ---------------------------------------------------------------------
class OTPMiddleware(DjangoOTPMiddleware):
    """django-otp's OTPMiddleware, reading the session's device through the cache.

    The device is only the marker that the session passed the second factor: django-otp checks it
    belongs to the user and is confirmed on every request. Codes are verified against devices read
    (and locked) from the database by the sign-in views, never against this copy.
    """

    def _verify_user_sync(self, request, user):
        _verifying.request = request  # for _device_from_persistent_id, which is not given it
        try:
            return super()._verify_user_sync(request, user)
        finally:
            _verifying.request = None

    def _device_from_persistent_id(self, persistent_id: str):
        persistent_id = self._normalize_persistent_id(persistent_id)
        key = _device_key(persistent_id)
        read = getattr(getattr(_verifying, "request", None), "_auth_cache_device", {})
        entry = read.pop(key) if key in read else _cache_get(key)  # read with the user, at most once
        if entry == _MISSING:
            return None
        if entry is not None:
            label, values = entry
            try:
                device = _rebuild(apps.get_model(label), values)
            except LookupError:
                device = None
            if device is not None:
                return device
        device = Device.from_persistent_id(persistent_id)
        _cache_set(key, _MISSING if device is None else (device._meta.label, _fields(device)))
        return device


# --- freshness ------------------------------------------------------------------------------------
def _forget(key: str) -> None:
    _cache_delete(key)
    if transaction.get_connection().in_atomic_block:
        # A request reading the row between this delete and the commit would cache the old row again.
        transaction.on_commit(lambda: _cache_delete(key))


def _user_changed(sender, instance, **kwargs) -> None:
    _forget(_USER_KEY.format(instance.pk))


def _device_changed(sender, instance, **kwargs) -> None:
    # A session names its device by model label, and one row has several (otp_totp.totpdevice and its
    # proxy accounts.sealedtotpdevice): the entry under each goes, whichever class changed the row.
    if instance.pk is not None:
        concrete = instance._meta.concrete_model
        for model in apps.get_models():
            if model._meta.concrete_model is concrete:
                _forget(_DEVICE_KEY.format(f"{model.model_label()}/{instance.pk}"))


def connect_signals() -> None:
    """Drop cached users and devices when they are saved or deleted (from AccountsConfig.ready)."""
    user_model = auth.get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="accounts.auth_cache.user_saved")
    post_delete.connect(_user_changed, sender=user_model, dispatch_uid="accounts.auth_cache.user_deleted")
    for model in apps.get_models():
        if issubclass(model, Device):
            uid = f"accounts.auth_cache.device.{model._meta.label}"
            post_save.connect(_device_changed, sender=model, dispatch_uid=f"{uid}.saved")
            post_delete.connect(_device_changed, sender=model, dispatch_uid=f"{uid}.deleted")
