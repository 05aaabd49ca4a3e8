"""Micro-benchmark: the CPU one live broadcast costs a process with no event loop of its own.

    .venv/bin/python -m bench.micro.broadcast

Compares the channel layer's ``group_send`` through ``async_to_sync`` per call (a new thread,
loop and Redis connection each time) with orders/live.py's publish from the calling thread, on
an embedded Redis.
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

    from channels.layers import get_channel_layer

    envelope = {"type": "event.message", "message": message, "text": "{}"}

    def per_call() -> None:
        async_to_sync(get_channel_layer().group_send)(live.EVENTS_GROUP, envelope)

    def direct() -> None:
        live._publisher.group_send(live.EVENTS_GROUP, [envelope])

    for name, fn in [
        ("async_to_sync per call", per_call),
        ("publish from the calling thread", direct),
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
