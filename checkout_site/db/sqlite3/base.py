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

Writers queue on a lock file. Every transaction begins IMMEDIATE (settings), so it takes
SQLite's write lock at BEGIN, and one that finds it taken is made to wait by SQLite's busy
handler, which sleeps and tries again: after 1 ms, 2 ms more, 5, 10, 15... A delivery that
came second to a write of 2 ms waited 3 to 8 ms, the slowest hop of an idle checkout
(OrderCreated's two deliveries run at once). So before BEGIN a transaction takes an exclusive
``flock`` on ``<database>.writers``, and gives it back after COMMIT or ROLLBACK: the kernel wakes
the next writer the moment the last one is done. SQLite's lock is still taken, and still
guards the file against anything that does not take this one.
"""

from __future__ import annotations

import fcntl
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


class _WriterLock:
    """An exclusive ``flock`` on a file beside the database, held from BEGIN to COMMIT.

    The file is opened at each BEGIN and closed at the end: a wrapper (one per thread) keeps no
    descriptor between transactions, and each holder has an open file of its own, which is what
    makes two threads of one process wait for each other."""

    def __init__(self, database: str) -> None:
        self._path = f"{database}.writers"
        self._fd: int | None = None
        self._pid = 0

    def take(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._pid = fd, os.getpid()

    def give(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # A forked child's copy shares the parent's lock: it closes the copy and unlocks nothing.
        if self._pid == os.getpid():
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _on_disk(name: Any) -> bool:
    name = str(name)
    return bool(name) and name != ":memory:" and "mode=memory" not in name


class DatabaseWrapper(base.DatabaseWrapper):
    _writers: _WriterLock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self._writers is None and _on_disk(self.settings_dict["NAME"]):
            self._writers = _WriterLock(str(self.settings_dict["NAME"]))
        if self._writers is None:
            super()._start_transaction_under_autocommit()
            return
        self._writers.take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._writers.give()
            raise

    def _commit(self) -> None:
        self._ending(super()._commit)

    def _rollback(self) -> None:
        self._ending(super()._rollback)

    def _ending(self, end: Any) -> None:
        """COMMIT or ROLLBACK, then the next writer may go, whether or not it succeeded."""
        try:
            end()
        finally:
            if self._writers is not None:
                self._writers.give()

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        raw = _kept.take(self.settings_dict["NAME"]) if _kept.on else None
        if raw is None:
            return super().get_new_connection(conn_params)
        # What a user of the connection may have switched off (loaddata, a migration).
        raw.execute("PRAGMA foreign_keys = ON")
        return raw

    def _close(self) -> None:
        raw = self.connection
        if self._writers is not None:
            # A connection closed mid-transaction (an error) rolls back: the next writer may go.
            self._writers.give()
        if raw is None:
            return
        # Closed inside an atomic block, Django keeps the connection until the block ends: it
        # is not free for another thread before then.
        if not self.in_atomic_block and _kept.keep(self.settings_dict["NAME"], raw):
            return
        with self.wrap_database_errors:
            raw.close()
