"""schemathesis hooks for tests/ci/schemathesis.sh: a rejected request must change nothing.

Loaded by schemathesis (SCHEMATHESIS_HOOKS) in a process that shares the daphne's database
(the same DATABASE_URL), so it can count orders around every call. Only requests create orders
(events never do), and schemathesis runs one call at a time here, so a rejected request that
moved the count created something.
"""

from __future__ import annotations

import os
from typing import Any

import django
import schemathesis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
django.setup()

from orders.models import Order  # noqa: E402

_before: dict[str, int] = {}


def _orders() -> int:
    return Order.objects.count()


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    _before["orders"] = _orders()


@schemathesis.check
def no_state_change_when_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    if case.method.upper() != "POST" or response.status_code < 400:
        return None
    after = _orders()
    if after != _before.get("orders", after):
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} but the order count "
            f"went from {_before['orders']} to {after}"
        )
    return None
