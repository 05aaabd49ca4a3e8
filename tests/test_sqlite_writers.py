"""SQLite's writers queue on a lock file (checkout_site/db/sqlite3/base.py): a transaction holds an
exclusive ``flock`` on ``<database>.writers`` from BEGIN to COMMIT or ROLLBACK, so the next writer
is woken by the kernel when the last one is done, not by SQLite's busy handler's next try.

Each test opens its own database file through wrappers of its own.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from checkout_site.db.sqlite3 import base


@pytest.fixture
def wrappers(tmp_path: Path, django_db_blocker: Any) -> Iterator[Any]:
    settings = {**connections["default"].settings_dict, "NAME": str(tmp_path / "writers.sqlite3")}
    made: list[Any] = []

    def make() -> Any:
        wrapper = base.DatabaseWrapper(dict(settings), alias=f"writers-{len(made)}")
        made.append(wrapper)
        return wrapper

    with django_db_blocker.unblock():
        first = make()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
        yield make
        for wrapper in made:
            wrapper.close()


def _held(wrapper: Any) -> bool:
    """Whether someone holds the writers' lock of ``wrapper``'s database now."""
    fd = os.open(f"{wrapper.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _begin(wrapper: Any) -> None:
    # What transaction.atomic does on entering its outermost block.
    wrapper.ensure_connection()
    wrapper.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def _insert(wrapper: Any, text: str) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO note (text) VALUES (%s)", [text])


def test_a_transaction_holds_the_lock_until_it_commits(wrappers):
    writer = wrappers()
    _begin(writer)
    _insert(writer, "one")
    assert _held(writer)

    writer.commit()
    writer.set_autocommit(True)

    assert not _held(writer)


def test_a_transaction_rolled_back_or_closed_midway_lets_go_of_it(wrappers):
    writer = wrappers()
    _begin(writer)
    _insert(writer, "gone")
    writer.rollback()
    writer.set_autocommit(True)
    assert not _held(writer)

    _begin(writer)
    _insert(writer, "closed")
    assert _held(writer)
    writer.close()

    assert not _held(writer)
    with wrappers().cursor() as cursor:
        cursor.execute("SELECT count(*) FROM note")
        assert cursor.fetchone()[0] == 0


def test_a_second_writer_begins_only_once_the_first_has_committed(wrappers):
    first, second = wrappers(), wrappers()
    second.inc_thread_sharing()  # made here, used by the thread below
    began = threading.Event()

    def write() -> None:
        _begin(second)
        began.set()
        _insert(second, "second")
        second.commit()
        second.set_autocommit(True)
        second.close()

    _begin(first)
    _insert(first, "first")
    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert not began.wait(0.3), "the second writer began while the first held the lock"
        first.commit()
        first.set_autocommit(True)
        assert began.wait(10)
    finally:
        thread.join(10)

    with first.cursor() as cursor:
        cursor.execute("SELECT text FROM note ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["first", "second"]


def test_the_lock_is_not_taken_for_a_database_in_memory(django_db_blocker):
    settings = {**connections["default"].settings_dict, "NAME": ":memory:"}
    wrapper = base.DatabaseWrapper(settings, alias="writers-memory")
    with django_db_blocker.unblock():
        _begin(wrapper)
        wrapper.commit()
        wrapper.set_autocommit(True)
        wrapper.close()
    assert wrapper._writers is None
