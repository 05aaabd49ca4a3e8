"""The loyalty service's subscriptions: a shipped order earns its customer points.

OrderShipped names only the order. Who ordered and for how much is in the order's OrderCreated,
which the loyalty service reads from the bus's log rather than subscribing to it: a service that
joins late and catches up on shipped orders then needs no second catch-up, and the order
service's tables stay its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from services.bus import schemas
from services.bus.history import order_event
from services.bus.outbox import event_emit
from services.bus.schemas import Envelope, Payload
from services.loyalty.models import LoyaltyInbox
from services.loyalty.points import points_award, points_total


class OrderFacts(NamedTuple):
    customer_id: int
    amount: Decimal


def order_facts(order_id: int) -> OrderFacts:
    """The customer and amount of an order, from its OrderCreated in the log."""
    # Whichever version it was written in, read as the newest (customerId, amount.value).
    payload = order_event(order_id, "OrderCreated")
    assert isinstance(payload, schemas.OrderCreated)
    return OrderFacts(customer_id=payload.customerId, amount=Decimal(payload.amount.value))


def on_order_shipped(event: Envelope, payload: Payload) -> None:
    facts = order_facts(event.orderId)
    award, decided = points_award(
        order_id=event.orderId, customer_id=facts.customer_id, amount=facts.amount
    )
    if not decided:
        return
    event_emit(
        order_id=event.orderId,
        payload=schemas.PointsAwarded(
            customerId=award.customer_id,
            points=award.points,
            totalPoints=points_total(award.customer_id),
        ),
        causation_id=event.eventId,
    )


HANDLES = {"OrderShipped": on_order_shipped}
INBOX = LoyaltyInbox
