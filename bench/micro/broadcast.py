"""Micro-benchmark: the CPU one live broadcast costs a process with no event loop of its own.

    .venv/bin/python -m bench.micro.broadcast

Compares ``async_to_sync`` per call (a new thread, loop and Redis connection each time) with
the per-process broadcast loop of orders/live.py, on an embedded Redis.
"""

from __future__ import annotations

import time

from bench.micro import django_on_embedded_redis


def main() -> None:
    with django_on_embedded_redis():
        _measure()


def _measure() -> None:
    from asgiref.sync import async_to_sync

    from orders import live

    message = {"kind": "event", "event": {"seq": 1, "orderId": 1}, "status": "INITIATED"}
    messages = [message]

    def per_call() -> None:
        async_to_sync(live._group_send_all)(messages)

    def one_loop() -> None:
        live._broadcast_loop.run(live._group_send_all(messages), timeout=5)

    for name, fn in [
        ("async_to_sync per call", per_call),
        ("one loop per process", one_loop),
    ] * 2:
        fn()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(300):
            fn()
        print(
            f"{name}: {(time.perf_counter() - wall) / 0.3:.2f} ms wall, "
            f"{(time.process_time() - cpu) / 0.3:.2f} ms CPU per broadcast"
        )


if __name__ == "__main__":
    main()
