"""The books of the whole checkout, checked from the database alone.

An auditor, not a service: it reads every service's tables to prove that nothing was lost and
nothing doubled, whatever the bus did (kills, restarts, duplicates, disorder). The invariants:

- every order is terminal (SHIPPED or CANCELLED, with every event that goes with it) or still
  within ORDER_DEADLINE_SECONDS of being placed;
- no event type appears twice for one order (a doubled event is a doubled effect);
- each product's stock on hand plus what its live reservations hold equals its starting stock,
  and never goes below zero;
- a shipped order has one charge of its amount and a reservation of its quantity; a cancelled
  order holds no charge (declined, refunded or void) and no reservation;
- each event-driven order's stored status equals the fold of its events;
- no order is charged more than once (net of refunds), holds more than one live reservation, or
  got more than one e-mail of a kind, or earned its loyalty points more than once (what a
  repeated delivery does with idempotency off);
- every stored event is handled, still on its way, or dead-lettered for each subscriber, of the
  types it is subscribed to now; past the deadline, one that is none of these was lost.

``check_consistency`` prints it; ``ledger`` is the same check as the console's JSON
(GET /control/ledger), each violation under its invariant's name. ``ledger(order_id=...)`` is the
same check again for one order (GET /control/ledger?order=<id>): its own invariants, its
product's stock, its events per subscriber, and what each service's tables hold for it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.utils import timezone

from orders.aggregator import status_fold
from orders.contract import Ledger
from orders.models import TERMINAL_STATUSES, Order, OrderStatus
from services.bus.models import Delivery, Event
from services.bus.registry import subscribed_events, subscribers
from services.inventory.models import Reservation, Stock
from services.loyalty.models import PointsAward
from services.notification.models import SentNotification
from services.payment.models import Payment

# What a finished order's log must hold, whichever way it went.
_SHIPPED_EVENTS = frozenset(
    {
        "OrderCreated",
        "PaymentProcessed",
        "InventoryUpdated",
        "OrderConfirmed",
        "NotificationSent",
        "OrderShipped",
    }
)
_NO_CHARGE = {Payment.Status.DECLINED, Payment.Status.REFUNDED, Payment.Status.VOID}
_NOTHING_HELD = {
    Reservation.State.REJECTED,
    Reservation.State.RELEASED,
    Reservation.State.VOID,
}


INVARIANTS = (
    "order_finishes",
    "one_event_of_each_type",
    "order_books",
    "status_is_the_fold",
    "one_charge_per_order",
    "one_reservation_per_order",
    "one_email_per_kind",
    "one_award_per_order",
    "stock_balanced",
    "every_event_settled",
)
# Events named one by one when many were lost; the count says the rest.
_OVERDUE_NAMED = 20


@dataclass(frozen=True)
class Violation:
    subject: str  # "order 17" or "product 456"
    problem: str
    order_id: int | None = None
    invariant: str = "order_books"

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass
class ConsistencyReport:
    orders: int
    products: int
    in_flight: int
    violations: list[Violation]
    # Per subscriber: stored events handled, waiting, dead-lettered, and overdue (lost).
    subscribers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.violations

    @property
    def order_ids(self) -> list[int]:
        return sorted({v.order_id for v in self.violations if v.order_id is not None})


def consistency_check(
    *, deadline_s: float | None = None, batch: int = 2000, order: Order | None = None
) -> ConsistencyReport:
    """Every invariant over every order, or over ``order`` alone (and its product's stock)."""
    deadline = settings.ORDER_DEADLINE_SECONDS if deadline_s is None else deadline_s
    cutoff = timezone.now() - timedelta(seconds=deadline)
    violations: list[Violation] = []
    checked = in_flight = 0
    last_id = 0
    scope = Order.objects.all() if order is None else Order.objects.filter(pk=order.pk)
    while True:
        orders = list(scope.filter(pk__gt=last_id).order_by("pk")[:batch])
        if not orders:
            break
        last_id = orders[-1].pk
        checked += len(orders)
        for checked_order, problems in _orders_check(orders, cutoff):
            if problems is None:
                in_flight += 1
                continue
            violations.extend(
                Violation(f"order {checked_order.pk}", problem, checked_order.pk, invariant)
                for invariant, problem in problems
            )
        violations.extend(_doubled_effects([o.pk for o in orders]))
    stock_scope = Stock.objects.all()
    if order is not None:
        stock_scope = stock_scope.filter(product_id=order.product_id)
    stocks = list(stock_scope)
    violations.extend(_stock_check(stocks))
    settled, lost = _events_settled(cutoff, order_id=None if order is None else order.pk)
    violations.extend(lost)
    return ConsistencyReport(
        orders=checked,
        products=len(stocks),
        in_flight=in_flight,
        violations=violations,
        subscribers=settled,
    )


def ledger(*, deadline_s: float | None = None, order: Order | None = None) -> dict[str, Any]:
    """GET /control/ledger: ``consistency_check`` as the contract's JSON; for one ``order``,
    with what each service's tables hold for it (``order``)."""
    report = consistency_check(deadline_s=deadline_s, order=order)
    deliveries = (
        Delivery.objects.all() if order is None else Delivery.objects.filter(order_id=order.pk)
    )
    suppressed = deliveries.aggregate(n=Sum("duplicates"))["n"] or 0
    return Ledger(
        healthy=report.clean,
        violations=[
            {"invariant": v.invariant, "orderId": v.order_id, "detail": str(v)}
            for v in report.violations
        ],
        duplicatesSuppressed=suppressed,
        invariants=list(INVARIANTS),
        orders=report.orders,
        inFlight=report.in_flight,
        subscribers=report.subscribers,
        checkedAt=timezone.now().isoformat(),
        **({} if order is None else {"order": _order_books(order, report)}),
    ).model_dump(mode="json", exclude_unset=True)


def _order_books(order: Order, report: ConsistencyReport) -> dict[str, Any]:
    """What each service's own tables hold for one order, as the per-order ledger shows it.
    Nothing in it is personal: counts, amounts and kinds, never a token or an address."""
    payments = Counter(Payment.objects.filter(order_id=order.pk).values_list("status", flat=True))
    charged = Payment.objects.filter(order_id=order.pk, status=Payment.Status.CHARGED)
    reservations = Reservation.objects.filter(order_id=order.pk)
    states = Counter(reservations.values_list("state", flat=True))
    held = reservations.filter(state=Reservation.State.RESERVED).aggregate(n=Sum("quantity"))
    emails = Counter(
        SentNotification.objects.filter(order_id=order.pk).values_list("kind", flat=True)
    )
    return {
        "orderId": order.pk,
        "status": order.status,
        "inFlight": report.in_flight > 0,
        "charges": {
            "charged": payments[Payment.Status.CHARGED],
            "refunded": payments[Payment.Status.REFUNDED],
            "declined": payments[Payment.Status.DECLINED],
            "void": payments[Payment.Status.VOID],
            "chargedAmount": f"{charged.aggregate(n=Sum('amount'))['n'] or 0:.2f}",
            "orderAmount": f"{order.amount:.2f}",
        },
        "reservations": {
            "reserved": states[Reservation.State.RESERVED],
            "released": states[Reservation.State.RELEASED],
            "rejected": states[Reservation.State.REJECTED],
            "void": states[Reservation.State.VOID],
            "unitsHeld": held["n"] or 0,
            "quantity": order.quantity,
        },
        "emails": {kind: emails[kind] for kind in SentNotification.Kind.values},
        "points": PointsAward.objects.filter(order_id=order.pk).count(),
    }


def _doubled_effects(ids: list[int]) -> list[Violation]:
    """Effects a service made twice for one order: what its guards exist to prevent."""
    checks: list[tuple[str, QuerySet[Any], list[str], Any, Callable[[dict[str, Any]], str]]] = [
        (
            "one_charge_per_order",
            Payment.objects.filter(status=Payment.Status.CHARGED),
            [],
            Sum("amount"),
            lambda r: f"charged {r['n']} times ({r['total']:.2f} in all), net of refunds",
        ),
        (
            "one_reservation_per_order",
            Reservation.objects.filter(state=Reservation.State.RESERVED),
            [],
            Sum("quantity"),
            lambda r: f"stock reserved {r['n']} times ({r['total']} units in all)",
        ),
        (
            "one_email_per_kind",
            SentNotification.objects.all(),
            ["kind"],
            Count("pk"),
            lambda r: f"{r['n']} {r['kind']} e-mails sent",
        ),
        (
            "one_award_per_order",
            PointsAward.objects.all(),
            [],
            Sum("points"),
            lambda r: f"points awarded {r['n']} times ({r['total']} points in all)",
        ),
    ]
    found: list[Violation] = []
    for invariant, rows, by, total, say in checks:
        doubled = (
            rows.filter(order_id__in=ids)
            .values("order_id", *by)
            .annotate(n=Count("pk"), total=total)
            .filter(n__gt=1)
        )
        found.extend(
            Violation(f"order {r['order_id']}", say(r), r["order_id"], invariant) for r in doubled
        )
    return found


def _events_settled(
    cutoff: datetime, *, order_id: int | None = None
) -> tuple[dict[str, dict[str, int]], list[Violation]]:
    """Each subscriber's stored events by where they are, and those lost past the deadline:
    the events of the types it is subscribed to now, from where its subscription began.

    Handled: in its inbox, or recorded handled (a service running without its inbox leaves only
    the record). Dead: parked as a dead letter. Waiting: neither yet (in a queue, retrying). An
    event still waiting past the deadline is overdue: lost, or held by a stopped service.
    """
    summary: dict[str, dict[str, int]] = {}
    lost: list[Violation] = []
    for sub in subscribers().values():
        events = Event.objects.filter(subscribed_events(sub.name), mode=Event.Mode.EVENTS)
        if order_id is not None:
            events = events.filter(order_id=order_id)
        recorded = Delivery.objects.filter(service=sub.name, event_id=OuterRef("event_id"))
        settled = events.filter(
            Exists(sub.inbox.objects.filter(event_id=OuterRef("event_id")))
            | Exists(recorded.filter(status=Delivery.Status.HANDLED))
        )
        handled = settled.count()
        dead = events.filter(Exists(recorded.filter(status=Delivery.Status.DEAD))).count()
        overdue = (
            events.filter(occurred_at__lt=cutoff)
            .exclude(Exists(sub.inbox.objects.filter(event_id=OuterRef("event_id"))))
            .exclude(
                Exists(recorded.filter(status__in=[Delivery.Status.HANDLED, Delivery.Status.DEAD]))
            )
        )
        late = overdue.count()
        total = events.count()
        summary[sub.name] = {
            "handled": handled,
            "waiting": max(total - handled - dead - late, 0),
            "deadLettered": dead,
            "overdue": late,
        }
        for event in overdue.order_by("seq")[:_OVERDUE_NAMED]:
            lost.append(
                Violation(
                    f"order {event.order_id}",
                    f"{event.type} #{event.seq} not handled by {sub.name} within the deadline,"
                    " nor dead-lettered: lost, or held by a stopped service",
                    event.order_id,
                    "every_event_settled",
                )
            )
        if late > _OVERDUE_NAMED:
            lost.append(
                Violation(
                    sub.name,
                    f"and {late - _OVERDUE_NAMED} more events it never handled",
                    None,
                    "every_event_settled",
                )
            )
    return summary, lost


Problems = list[tuple[str, str]]  # (invariant, what is wrong)


def _orders_check(orders: list[Order], cutoff: datetime) -> list[tuple[Order, Problems | None]]:
    """Each order with its problems, or None for an order still within its deadline.

    Within the deadline an order may be unfinished (an event on its way, an email not sent
    yet), but nothing it holds may be wrong already: a doubled event, a charge on a cancelled
    order or a reservation it should have given back.
    """
    ids = [o.pk for o in orders]
    types: dict[int, Counter[str]] = defaultdict(Counter)
    for order_id, type_ in Event.objects.filter(order_id__in=ids).values_list("order_id", "type"):
        types[order_id][type_] += 1
    payments = {p.order_id: p for p in Payment.objects.filter(order_id__in=ids)}
    reservations = {r.order_id: r for r in Reservation.objects.filter(order_id__in=ids)}
    emails: dict[int, set[str]] = defaultdict(set)
    for order_id, kind in SentNotification.objects.filter(order_id__in=ids).values_list(
        "order_id", "kind"
    ):
        emails[order_id].add(kind)
    results: list[tuple[Order, Problems | None]] = []
    for order in orders:
        log = types[order.pk]
        facts = _Facts(order, log, payments.get(order.pk), reservations.get(order.pk))
        wrong: Problems = [
            ("one_event_of_each_type", f"{t} recorded {n} times")
            for t, n in sorted(log.items())
            if n > 1
        ]
        books: list[str] = []
        unfinished: list[str] = []
        if order.status == OrderStatus.SHIPPED:
            _shipped_check(facts, emails[order.pk], books)
        elif order.status == OrderStatus.CANCELLED:
            _cancelled_check(facts, emails[order.pk], books, unfinished)
        else:
            unfinished.append(f"still {order.status} ({_has(log)})")
        wrong += [("order_books", problem) for problem in books]
        folded = status_fold(log)
        if order.status in TERMINAL_STATUSES and order.status != folded:
            wrong.append(
                (
                    "status_is_the_fold",
                    f"stored status {order.status} but its events fold to {folded}",
                )
            )
        late: Problems = [("order_finishes", problem) for problem in unfinished]
        if order.created_at < cutoff:
            results.append((order, wrong + late))
        elif unfinished and not wrong:
            results.append((order, None))
        else:
            results.append((order, wrong))
    return results


@dataclass(frozen=True)
class _Facts:
    order: Order
    log: Counter[str]
    payment: Payment | None
    reservation: Reservation | None


def _shipped_check(facts: _Facts, emails: set[str], wrong: list[str]) -> None:
    order, log, payment, reservation = facts.order, facts.log, facts.payment, facts.reservation
    if missing := sorted(_SHIPPED_EVENTS - set(log)):
        wrong.append(f"shipped without {', '.join(missing)}")
    if log.keys() & {"PaymentFailed", "InventoryRejected", "OrderCancelled"}:
        wrong.append("shipped but its log holds a failure")
    if payment is None or payment.status != Payment.Status.CHARGED:
        wrong.append(f"shipped but payment is {payment.status if payment else 'missing'}")
    elif payment.amount != order.amount:
        wrong.append(f"charged {payment.amount}, order amount {order.amount}")
    if reservation is None or reservation.state != Reservation.State.RESERVED:
        wrong.append(
            f"shipped but reservation is {reservation.state if reservation else 'missing'}"
        )
    elif (reservation.product_id, reservation.quantity) != (order.product_id, order.quantity):
        wrong.append("reservation does not match the order's product and quantity")
    if SentNotification.Kind.CONFIRMED not in emails:
        wrong.append("shipped but no confirmation email")
    if SentNotification.Kind.CANCELLED in emails:
        wrong.append("shipped but the customer was told it was cancelled")


def _cancelled_check(
    facts: _Facts, emails: set[str], wrong: list[str], unfinished: list[str]
) -> None:
    order, log, payment, reservation = facts.order, facts.log, facts.payment, facts.reservation
    if missing := sorted({"OrderCreated", "OrderCancelled"} - set(log)):
        wrong.append(f"cancelled without {', '.join(missing)}")
    if "OrderShipped" in log:
        wrong.append("cancelled but shipped")
    if payment is not None and payment.status not in _NO_CHARGE:
        wrong.append(f"cancelled but payment is {payment.status} (no refund)")
    if reservation is not None and reservation.state not in _NOTHING_HELD:
        wrong.append(f"cancelled but stock is still {reservation.state}")
    if SentNotification.Kind.CONFIRMED in emails:
        wrong.append("cancelled but the customer was told it was confirmed")
    # The request-response checkout sends no cancellation email; the event-driven one does,
    # after the order service has cancelled, so it may still be on its way.
    if order.mode == Order.Mode.EVENTS:
        if "NotificationSent" not in log:
            unfinished.append("cancelled without NotificationSent")
        if SentNotification.Kind.CANCELLED not in emails:
            unfinished.append("cancelled but the customer was not told")


def _has(log: Counter[str]) -> str:
    if not log:
        return "no events at all"
    return "has " + ", ".join(sorted(log))


def _stock_check(stocks: list[Stock]) -> list[Violation]:
    held = dict(
        Reservation.objects.filter(state=Reservation.State.RESERVED)
        .values("product_id")
        .annotate(total=Sum("quantity"))
        .values_list("product_id", "total")
    )
    violations = []
    for stock in stocks:
        reserved = held.get(stock.product_id, 0) or 0
        if stock.on_hand < 0:
            violations.append(
                Violation(
                    f"product {stock.product_id}",
                    f"stock is negative ({stock.on_hand})",
                    invariant="stock_balanced",
                )
            )
        if stock.on_hand + reserved != stock.initial:
            violations.append(
                Violation(
                    f"product {stock.product_id}",
                    f"on hand {stock.on_hand} + reserved {reserved} != initial {stock.initial}",
                    invariant="stock_balanced",
                )
            )
    return violations
