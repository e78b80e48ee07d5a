"""The API process's cache of token principals, emptied whenever users or tokens change.

A request's token is looked up in the database once; later requests with it are answered from
the cache while a listener is told of every change to users and tokens (migration 0014 sends a
notification at the commit of every statement that writes them, SQL typed by hand included).
Without a listener (the CLI, services called directly) there is no cache.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import Engine

from bingeo.access import Principal
from bingeo.db import users as user_repo
from bingeo.db.notifications import Listener

# A cached principal is looked up again after this long, whatever the notifications said.
MAX_AGE_S = 60.0
# More tokens than this in use at once: the cache starts again empty rather than grow.
MAX_ENTRIES = 10_000

# The caches of this process that listen (an app each), emptied by ``forget_principals``.
_LIVE: set[PrincipalCache] = set()
_LIVE_LOCK = threading.Lock()


class PrincipalCache:
    """Token hash -> (principal, token expiry), used only while the listener listens.

    A principal read from the database is stored only if no notification arrived and the
    listener did not connect or disconnect while it was read (a generation counter, bumped by
    each, is the same before and after), so that what was read before a change never outlives
    the change's notification. An entry is used only before its token expires and for
    ``MAX_AGE_S``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Principal, dt.datetime | None, float]] = {}
        self._generation = 0
        self._listening = False
        self._listener: Listener | None = None

    @classmethod
    def listening_to(cls, engine: Engine) -> PrincipalCache:
        """A cache for the engine's database, with its listener started (``close`` stops it)."""
        cache = cls()
        cache._listener = Listener(
            engine,
            user_repo.CHANGES_CHANNEL,
            triggers=user_repo.CHANGE_TRIGGERS,
            on_notify=cache.forget,
            on_state=cache._set_listening,
            name="bingeo-principals",
        )
        with _LIVE_LOCK:
            _LIVE.add(cache)
        cache._listener.start()
        return cache

    @property
    def listening(self) -> bool:
        """Whether the listener listens (the cache is used only then)."""
        return self._listening

    def get(self, token_hash: str, now: dt.datetime) -> Principal | None:
        """The cached principal of a token, or None (look it up)."""
        with self._lock:
            entry = self._entries.get(token_hash) if self._listening else None
        if entry is None:
            return None
        principal, expires_at, stored_at = entry
        if (expires_at is not None and expires_at <= now) or (
            time.monotonic() - stored_at > MAX_AGE_S
        ):
            with self._lock:
                if self._entries.get(token_hash) is entry:
                    del self._entries[token_hash]
            return None
        return principal

    def ticket(self) -> int | None:
        """Taken before a lookup and given to ``put``: None while the cache is not used."""
        with self._lock:
            return self._generation if self._listening else None

    def put(
        self,
        ticket: int | None,
        token_hash: str,
        principal: Principal,
        expires_at: dt.datetime | None,
    ) -> None:
        """Store a principal looked up after ``ticket`` was taken, unless anything changed."""
        with self._lock:
            if ticket is None or ticket != self._generation or not self._listening:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = (principal, expires_at, time.monotonic())

    def forget(self) -> None:
        """Empty the cache (users or tokens changed)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def close(self) -> None:
        """Stop the listener; the cache is not used any more."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._listener is not None:
            self._listener.stop()
        self._set_listening(False)

    def _set_listening(self, listening: bool) -> None:
        with self._lock:
            self._listening = listening
            self._generation += 1
            self._entries.clear()


def forget_principals() -> None:
    """Empty every cache of this process at once, after a commit that revoked a token or
    changed a user (the notification empties them too, moments later)."""
    with _LIVE_LOCK:
        caches = list(_LIVE)
    for cache in caches:
        cache.forget()
