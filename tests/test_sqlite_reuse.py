"""SQLite connections reused between a web process's threads (checkout_site/db/sqlite3/base.py).

Each test opens its own database file through a wrapper of its own, so the suite's connections
and the process's reuse setting are left as they were.
"""

from __future__ import annotations

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
    """A factory of wrappers on one fresh file, with reuse on; everything closed afterwards."""
    settings = {**connections["default"].settings_dict, "NAME": str(tmp_path / "reuse.sqlite3")}
    made: list[Any] = []
    was_on = base._kept.on

    def make() -> Any:
        wrapper = base.DatabaseWrapper(dict(settings), alias=f"reuse-{len(made)}")
        made.append(wrapper)
        return wrapper

    base.connection_reuse_start()
    with django_db_blocker.unblock():
        first = make()
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
        first.close()
        yield make
        for wrapper in made:
            if wrapper.connection is not None:
                wrapper.close()
    base.connection_reuse_stop()
    base._kept.on = was_on


def _raw_of(wrapper: Any) -> Any:
    wrapper.ensure_connection()
    return wrapper.connection


def _in_thread(fn: Any) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(10)
    return out[0]


def test_a_connection_closed_in_one_thread_is_the_next_threads_connection(wrappers):
    def request() -> tuple[Any, tuple[int]]:
        wrapper = wrappers()  # as Django makes one for each thread
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM note")
            answer = cursor.fetchone()
        raw = wrapper.connection
        wrapper.close()
        return raw, answer

    first, answer = _in_thread(request)
    second, again = _in_thread(request)

    assert second is first
    assert answer == again == (0,)


def test_a_kept_connection_comes_back_rolled_back_with_its_constraints_on(wrappers):
    first, second = wrappers(), wrappers()
    raw = _raw_of(first)
    raw.execute("PRAGMA foreign_keys = OFF")
    raw.execute("BEGIN")
    raw.execute("INSERT INTO note (text) VALUES ('never committed')")
    first.close()

    assert _raw_of(second) is raw
    assert not raw.in_transaction
    assert raw.execute("SELECT count(*) FROM note").fetchone() == (0,)
    assert raw.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_a_connection_closed_inside_an_atomic_block_is_closed_not_kept(wrappers):
    from django.db import transaction

    first, second = wrappers(), wrappers()
    connections[first.alias] = first
    try:
        with transaction.atomic(using=first.alias):
            raw = first.connection
            first.close()
    finally:
        del connections[first.alias]

    assert _raw_of(second) is not raw
    with pytest.raises(Exception, match="closed"):
        raw.execute("SELECT 1")


def test_with_reuse_off_a_closed_connection_is_closed(wrappers):
    base._kept.on = False
    first, second = wrappers(), wrappers()
    raw = _raw_of(first)
    first.close()

    assert _raw_of(second) is not raw
    with pytest.raises(Exception, match="closed"):
        raw.execute("SELECT 1")


def test_at_most_so_many_connections_wait(wrappers):
    many = [wrappers() for _ in range(base._KEEP + 3)]
    raws = [_raw_of(w) for w in many]
    for wrapper in many:
        wrapper.close()

    closed = 0
    for raw in raws:
        try:
            raw.execute("SELECT 1")
        except Exception:
            closed += 1
    assert closed == 3


def test_a_forked_child_reuses_nothing_and_leaves_the_parents_connections_alone(wrappers):
    first = wrappers()
    raw = _raw_of(first)
    first.close()
    name = first.settings_dict["NAME"]

    pid = os.fork()
    if pid == 0:
        ok = not base._kept.on and base._kept.take(name) is None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's kept connection is still open, and still its to reuse.
    assert raw.execute("SELECT count(*) FROM note").fetchone() == (0,)
    assert _raw_of(wrappers()) is raw
