"""The floor ``python -m bench`` holds POST /orders against: a minimal correct outbox write.

One transaction stores an order row and its event row in the checkout's own tables; after it
commits, one message goes to ``QUEUE`` and the event is noted as published the way the outbox
notes its own. Nothing else the checkout does: no contract model, no idempotency key, no rate
limit, no live-page broadcast, one queue instead of one per subscriber. Nobody consumes
``QUEUE`` and no service subscribes to ``EVENT_TYPE``, so the relay and the reconciler leave
these events alone; the benchmark empties the queue after the phase.

Mounted at ``/bench/minimal-write`` only when ``BENCH_MINIMAL_WRITE`` is on, which only
bench/stack.py sets (checkout_site/urls.py).
"""

from __future__ import annotations

import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout_site.celery import app
from orders.models import Order, Product
from services.bus.models import Event
from services.bus.outbox import published_mark
from services.bus.schemas import mask_token

QUEUE = "bench-minimal-write"
EVENT_TYPE = "MinimalWrite"
TASK = "bench.minimal_write"


@csrf_exempt
@require_POST
def minimal_write(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    quantity = int(body["quantity"])
    with transaction.atomic():
        price = Product.objects.values_list("price", flat=True).get(pk=body["productId"])
        order = Order.objects.create(
            customer_id=body["userId"],
            product_id=body["productId"],
            quantity=quantity,
            amount=price * quantity,
            payment_token_masked=mask_token(body["paymentToken"]),
        )
        event = Event.objects.create(
            type=EVENT_TYPE,
            version=1,
            order_id=order.pk,
            occurred_at=timezone.now(),
            producer="bench",
            payload={"quantity": quantity, "amount": f"{order.amount:.2f}"},
        )
        transaction.on_commit(lambda: _publish(event))
    return JsonResponse({"orderId": order.pk}, status=202)


def _publish(event: Event) -> None:
    app.send_task(
        TASK,
        args=(event.envelope(),),
        queue=QUEUE,
        argsrepr=f"(seq {event.seq})",
        kwargsrepr="{}",
    )
    published_mark([event.seq])


urlpatterns = [path("", minimal_write, name="bench_minimal_write")]
