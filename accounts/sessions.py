"""The session engine: Django's cached_db sessions, still served from the database while the cache is down.

Django's ``cached_db`` store already reads the database when the cache cannot answer, but then writes
what it read back into the cache without catching the error, so a request fails while Redis is
unreachable even though its session is in the database. Here that write-back is best-effort: the
database row is the truth and the cache only a copy, so a missing copy costs one query, never the
request.

Deleting a session (signing out, ``flush``) still fails when the cache cannot be reached: a cached
copy left behind would bring the session back once the cache returned, so the error surfaces instead.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import cached_db

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
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
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception:
            logger.warning("session cache unreachable: checked the session key in the database", exc_info=True)
        return cached_db.DBStore.exists(self, session_key)  # every session is in the database too

    async def aexists(self, session_key):
        try:
            if session_key and await self._cache.ahas_key(self.cache_key_prefix + session_key):
                return True
        except Exception:
            logger.warning("session cache unreachable: checked the session key in the database", exc_info=True)
        return await cached_db.DBStore.aexists(self, session_key)
