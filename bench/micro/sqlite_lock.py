"""``python -m bench.micro.sqlite_lock``: four processes writing to one SQLite file.

Django's SQLite backend (SQLite's busy handler: sleeps of 1, 2, 5, 10, 15, 20, 25 ms ...) against
checkout_site.sqlite (tries again after 0.2 ms, doubling to 2 ms): transactions per second and
how long ``BEGIN IMMEDIATE`` waits for the write lock.
"""

import multiprocessing as mp
import os
import tempfile
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")


def worker(engine, path, n, q):
    import django
    from django.conf import settings

    settings.DATABASES["default"] = {
        "ENGINE": engine,
        "NAME": path,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
    django.setup()
    from django.db import connection, transaction

    waits = []
    for i in range(n):
        t = time.perf_counter()
        with transaction.atomic():
            waits.append(time.perf_counter() - t)
            with connection.cursor() as c:
                c.execute("INSERT INTO t (n) VALUES (%s)", [i])
                sum(range(3000))  # ~some CPU inside the transaction
        sum(range(20000))  # work outside
    q.put(waits)


def run(engine, procs=4, n=400):
    d = tempfile.mkdtemp()
    path = f"{d}/l.sqlite3"
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t (n INTEGER)")
    c.commit()
    c.close()
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(engine, path, n, q)) for _ in range(procs)]
    t = time.perf_counter()
    [p.start() for p in ps]
    waits = sum((q.get() for _ in ps), [])
    [p.join() for p in ps]
    el = time.perf_counter() - t
    waits.sort()
    p50, p99 = waits[len(waits) // 2] * 1000, waits[int(len(waits) * 0.99)] * 1000
    print(
        f"{engine:32} {procs * n / el:7.0f} txn/s  BEGIN wait "
        f"p50 {p50:.2f} p99 {p99:.2f} max {waits[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    mp.set_start_method("fork")
    for _ in range(3):
        for e in ("django.db.backends.sqlite3", "checkout_site.sqlite"):
            run(e)
