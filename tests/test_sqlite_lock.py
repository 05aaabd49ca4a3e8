"""The SQLite backend waiting for the write lock (checkout_site/sqlite/base.py), on its own file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connections

from checkout_site.sqlite.base import DatabaseWrapper


def _wrapper(path: Path, timeout: float) -> DatabaseWrapper:
    settings = connections.configure_settings(
        {
            "default": {
                "ENGINE": "checkout_site.sqlite",
                "NAME": str(path),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout},
            }
        }
    )["default"]
    return DatabaseWrapper(settings, alias="lock-test")


@pytest.fixture(autouse=True)
def _own_files_allowed(django_db_blocker) -> Iterator[None]:
    # pytest-django guards the test database; these connections are to files of their own.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def locked_file(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A database file whose write lock another connection holds until it commits."""
    path = tmp_path / "lock.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    yield path, holder
    holder.close()


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as reader:
        return [n for (n,) in reader.execute("SELECT n FROM t ORDER BY n")]


def test_a_write_that_finds_the_lock_taken_goes_through_once_it_is_released(locked_file):
    path, holder = locked_file
    db = _wrapper(path, timeout=10)
    threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()

    with db.cursor() as cursor:
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("INSERT INTO t VALUES (%s)", [2])
    db.commit()
    db.close()

    assert _rows(path) == [1, 2]


def test_a_write_gives_up_with_database_is_locked_when_its_timeout_runs_out(locked_file):
    path, holder = locked_file
    db = _wrapper(path, timeout=0.3)

    with pytest.raises(OperationalError, match="database is locked"), db.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (%s)", [2])
    db.close()
    holder.execute("COMMIT")

    assert _rows(path) == [1]


@pytest.mark.timeout(5)  # retried like a held lock, it would wait out the 10 s
def test_sqlite_errors_other_than_a_held_lock_are_raised_at_once(tmp_path):
    db = _wrapper(tmp_path / "plain.sqlite3", timeout=10)

    with pytest.raises(OperationalError, match="no such table"), db.cursor() as cursor:
        cursor.execute("INSERT INTO missing VALUES (1)")
    db.close()
