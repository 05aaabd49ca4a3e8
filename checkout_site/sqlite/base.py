"""Django's SQLite backend, waiting for the write lock in short steps instead of SQLite's own.

Several processes write to one SQLite file (the web, each worker pool process, the relay), one
at a time: ``BEGIN IMMEDIATE`` takes the write lock or waits. SQLite's busy handler waits in
growing sleeps (1, 2, 5, 10, 15, 20, 25 ms and on), so a writer that found the lock taken often
sleeps long after it was released, while the lock stands idle: under load that was most of an
order's end-to-end tail. Here SQLite's own wait is off and a locked statement is tried again
after 0.2 ms, doubling to at most 2 ms, until the configured ``timeout`` runs out.

A statement that fails with SQLITE_BUSY has changed nothing, and the transaction around it (if
any) stands, so trying it again is safe. With ``transaction_mode`` IMMEDIATE a transaction holds
the lock from its BEGIN, so in practice only BEGIN and single writes in autocommit ever wait.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.backends.sqlite3 import base
from django.db.backends.utils import debug_transaction

T = TypeVar("T")

_FIRST_WAIT_S = 0.0002
_LONGEST_WAIT_S = 0.002


def _when_unlocked(run: Callable[[], T], timeout: float) -> T:
    deadline = None
    wait = _FIRST_WAIT_S
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + timeout
            elif now >= deadline:
                raise
        time.sleep(wait)
        wait = min(wait * 2, _LONGEST_WAIT_S)


class CursorWrapper(base.SQLiteCursorWrapper):
    lock_timeout = 5.0

    def execute(self, query: str, params: Any = None) -> Any:
        run = super().execute
        return _when_unlocked(lambda: run(query, params), self.lock_timeout)

    def executemany(self, query: str, param_list: Any) -> Any:
        param_list = list(param_list)
        run = super().executemany
        return _when_unlocked(lambda: run(query, param_list), self.lock_timeout)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        self.lock_timeout = float(params.get("timeout", 5.0))
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        # Connecting (and the init commands' PRAGMAs) still wait with SQLite's busy handler.
        conn = super().get_new_connection(conn_params)
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.lock_timeout = self.lock_timeout
        return cursor

    def _commit(self) -> None:
        if self.connection is not None:
            with debug_transaction(self, "COMMIT"), self.wrap_database_errors:
                _when_unlocked(self.connection.commit, self.lock_timeout)
