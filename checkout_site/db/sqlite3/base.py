"""Django's SQLite backend, with connections kept open between the threads of a web process.

Under ASGI, Django runs each request's sync code in a thread of its own and closes the request's
connection when the request ends (``CONN_MAX_AGE`` is 0 on SQLite, as a connection cannot follow
a thread that is gone). Opening one again for the next request (the file, Django's SQL functions,
the PRAGMAs) was a fifth of daphne's CPU per ``POST /orders``. With reuse switched on
(``connection_reuse_start``, which the ASGI entry point calls), a connection Django closes is
rolled back and kept, and the next thread that connects takes it. At most ``_KEEP`` wait.

Reuse is for a process that does not fork: SQLite forbids using a connection in a child, and a
child's new connections would share the inherited ones' lock bookkeeping. A forked child starts
with nothing to reuse and reuse switched off; the parent's connections are left alone there.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base

log = logging.getLogger(__name__)

_KEEP = 16


class _Kept:
    """The open, idle connections of this process, by database file."""

    def __init__(self) -> None:
        self.on = False
        self._lock = threading.Lock()
        self._idle: dict[str, list[sqlite3.Connection]] = {}
        # What a forked child inherited: never used, and never closed there either.
        self._inherited: list[sqlite3.Connection] = []
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.on = False
        self._lock = threading.Lock()
        self._inherited += [c for idle in self._idle.values() for c in idle]
        self._idle = {}

    def take(self, name: str) -> sqlite3.Connection | None:
        with self._lock:
            idle = self._idle.get(name)
            return idle.pop() if idle else None

    def keep(self, name: str, raw: sqlite3.Connection) -> bool:
        """Keep ``raw`` for the next connect, rolled back; False if it must be closed instead."""
        if not self.on:
            return False
        try:
            if raw.in_transaction:
                raw.rollback()
        except sqlite3.Error:
            log.info("a connection that would not roll back is closed, not kept", exc_info=True)
            return False
        with self._lock:
            idle = self._idle.setdefault(name, [])
            if len(idle) >= _KEEP:
                return False
            idle.append(raw)
            return True

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for raw in (c for connections in idle.values() for c in connections):
            raw.close()


_kept = _Kept()


def connection_reuse_start() -> None:
    """Keep closed connections for reuse in this process from now on (a web server's)."""
    _kept.on = True


def connection_reuse_stop() -> None:
    """Close every kept connection, and close each one Django closes from now on."""
    _kept.on = False
    _kept.close_all()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        raw = _kept.take(self.settings_dict["NAME"]) if _kept.on else None
        if raw is None:
            return super().get_new_connection(conn_params)
        # What a user of the connection may have switched off (loaddata, a migration).
        raw.execute("PRAGMA foreign_keys = ON")
        return raw

    def _close(self) -> None:
        raw = self.connection
        if raw is None:
            return
        # Closed inside an atomic block, Django keeps the connection until the block ends: it
        # is not free for another thread before then.
        if not self.in_atomic_block and _kept.keep(self.settings_dict["NAME"], raw):
            return
        with self.wrap_database_errors:
            raw.close()
