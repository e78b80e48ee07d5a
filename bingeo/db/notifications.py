"""PostgreSQL notifications (LISTEN/NOTIFY) received in a thread on a connection of its own."""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from bingeo.db.engine import CONNECT_TIMEOUT_S

log = logging.getLogger("bingeo.notifications")

# Seconds between attempts to listen again: doubled after each failure up to the maximum.
FIRST_RETRY_S = 0.1
MAX_RETRY_S = 5.0


class Listener:
    """Listens on ``channel`` of the engine's database in a daemon thread, on its own connection
    (not one of the engine's pool).

    ``on_state(True)`` is called once the connection listens and the ``triggers`` that send the
    notifications exist, ``on_notify()`` for every notification received, and
    ``on_state(False)`` when the connection is lost (server restarted, backend terminated) or
    closed; the listener then connects again, waiting longer after each failure.
    """

    def __init__(
        self,
        engine: Engine,
        channel: str,
        *,
        triggers: tuple[str, ...],
        on_notify: Callable[[], None],
        on_state: Callable[[bool], None],
        name: str,
    ) -> None:
        args, params = engine.dialect.create_connect_args(engine.url)
        self._connect_args = args
        self._connect_params = {
            **params,
            "connect_timeout": params.get("connect_timeout", CONNECT_TIMEOUT_S),
            "application_name": name,
            "autocommit": True,
        }
        self._channel = channel
        self._triggers = list(triggers)
        self._on_notify = on_notify
        self._on_state = on_state
        self._stop = threading.Event()
        # Written to on stop, so that the thread's wait for the server ends at once.
        self._wake, self._woken = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._missing_logged = False
        self._retry_s = FIRST_RETRY_S

    def start(self) -> None:
        """Start listening (in the background: ``on_state(True)`` tells when it listens)."""
        self._thread.start()

    def stop(self, *, wait_s: float = 1.0) -> None:
        """Stop listening and close the connection (waiting at most ``wait_s`` for the thread)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.send(b"x")
        self._thread.join(wait_s)
        if not self._thread.is_alive():
            self._wake.close()
            self._woken.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the server went away: listen again after a while
                log.warning("listening on %s failed: %s", self._channel, type(exc).__name__)
            if self._stop.wait(self._retry_s):
                return
            self._retry_s = min(MAX_RETRY_S, self._retry_s * 2)

    def _listen(self) -> None:
        """Listen until stopped or the connection fails (at once when the triggers are missing)."""
        with psycopg.connect(*self._connect_args, **self._connect_params) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            if not self._triggers_exist(connection) or self._stop.is_set():
                return
            self._on_state(True)
            self._retry_s = FIRST_RETRY_S
            try:
                while not self._stop.is_set():
                    ready, _, _ = select.select([connection.fileno(), self._woken], [], [])
                    if self._woken in ready:
                        return
                    for _ in connection.notifies(timeout=0):
                        self._on_notify()
                    if connection.broken:
                        raise psycopg.OperationalError("the listening connection broke")
            finally:
                self._on_state(False)

    def _triggers_exist(self, connection: psycopg.Connection) -> bool:
        """Whether the database sends the notifications (an older schema does not)."""
        found = connection.execute(
            "SELECT count(DISTINCT tgname) FROM pg_trigger WHERE tgname = ANY(%s)",
            [self._triggers],
        ).fetchone()
        if found and found[0] == len(self._triggers):
            return True
        if not self._missing_logged:
            log.warning("no notifications on %s: run `bingeo db upgrade`", self._channel)
            self._missing_logged = True
        return False
