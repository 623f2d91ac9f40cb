"""The session engine: Django's cached_db sessions, still served from the database while the cache is down.

Django's ``cached_db`` store already reads the database when the cache cannot answer, but then writes
what it read back into the cache without catching the error, so a request fails while Redis is
unreachable even though its session is in the database. Here that write-back is best-effort: the
database row is the truth and the cache only a copy, so a missing copy costs one query, never the
request.

Deleting a session (signing out, ``flush``) still fails when the cache cannot be reached: a cached
copy left behind would bring the session back once the cache returned, so the error surfaces instead.

The cached copy is stored under a keyed hash of the session key (HMAC with ``SECRET_KEY``, which
Redis does not hold), never the key itself: whoever can list Redis's keys learns no cookie that
signs anyone in.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import cached_db
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)


def cache_key_for(session_key: str) -> str:
    """Return the cache key of ``session_key``'s cached copy: a keyed hash, not the cookie's value."""
    return cached_db.KEY_PREFIX + salted_hmac("accounts.sessions.cache_key", session_key).hexdigest()


class SessionStore(cached_db.SessionStore):
    @property
    def cache_key(self):
        return cache_key_for(self._get_or_create_session_key())

    async def acache_key(self):
        return cache_key_for(await self._aget_or_create_session_key())

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is None:
            return
        cached_db.DBStore.delete(self, session_key)
        self._cache.delete(cache_key_for(session_key))

    async def adelete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is None:
            return
        await cached_db.DBStore.adelete(self, session_key)
        await self._cache.adelete(cache_key_for(session_key))

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            data = None  # unreachable cache, or a key the backend refuses: the database decides
        if data is not None:
            return data
        session = self._get_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=session.expire_date))
        except Exception:
            logger.warning("session cache unreachable: served the session from the database", exc_info=True)
        return data

    async def aload(self):
        cache_key = await self.acache_key()
        try:
            data = await self._cache.aget(cache_key)
        except Exception:
            data = None
        if data is not None:
            return data
        session = await self._aget_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        try:
            await self._cache.aset(cache_key, data, await self.aget_expiry_age(expiry=session.expire_date))
        except Exception:
            logger.warning("session cache unreachable: served the session from the database", exc_info=True)
        return data

    def exists(self, session_key):
        try:
            if session_key and cache_key_for(session_key) in self._cache:
                return True
        except Exception:
            logger.warning("session cache unreachable: checked the session key in the database", exc_info=True)
        return cached_db.DBStore.exists(self, session_key)  # every session is in the database too

    async def aexists(self, session_key):
        try:
            if session_key and await self._cache.ahas_key(cache_key_for(session_key)):
                return True
        except Exception:
            logger.warning("session cache unreachable: checked the session key in the database", exc_info=True)
        return await cached_db.DBStore.aexists(self, session_key)
