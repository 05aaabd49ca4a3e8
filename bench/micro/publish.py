"""Micro-benchmark: the CPU of one ``bus.deliver`` publish, with and without ``argsrepr``.

.venv/bin/python -m bench.micro.publish
"""

from __future__ import annotations

import time

from bench.micro import django_on_embedded_redis

ENVELOPE = {
    "seq": 1,
    "eventId": "5b0c6a0e-2b1c-4a86-9d0a-1c1e0c6b7f11",
    "type": "OrderCreated",
    "version": 1,
    "orderId": 1,
    "occurredAt": "2026-11-27T08:00:00+00:00",
    "producer": "orders",
    "causationId": None,
    "payload": {
        "userId": 123,
        "productId": 456,
        "quantity": 1,
        "amount": "89.00",
        "paymentToken": "tok_abc123",
        "customerEmail": "ada@example.com",
    },
}


def main() -> None:
    with django_on_embedded_redis():
        _measure()


def _measure() -> None:
    from services.bus.tasks import deliver

    def plain() -> None:
        deliver.apply_async(args=("payment", ENVELOPE), queue="payment", retry=False)

    def no_repr() -> None:
        deliver.apply_async(
            args=("payment", ENVELOPE),
            queue="payment",
            retry=False,
            argsrepr="('payment', OrderCreated seq 1)",
            kwargsrepr="{}",
        )

    for name, fn in [("apply_async", plain), ("apply_async, argsrepr given", no_repr)] * 2:
        fn()
        cpu = time.process_time()
        for _ in range(500):
            fn()
        print(f"{name}: {(time.process_time() - cpu) / 0.5:.3f} ms CPU per publish")


if __name__ == "__main__":
    main()
