"""Fill the database with many finished orders, to see the console's search stay fast."""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from orders.models import Customer, Order, OrderStatus, Product

_STATUSES = [OrderStatus.SHIPPED] * 17 + [OrderStatus.CANCELLED] * 2 + [OrderStatus.CONFIRMED]


@contextmanager
def _keep_given_created_at() -> Any:
    # created_at is auto_now_add; seeded orders need it spread over past days instead.
    field = Order._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


class Command(BaseCommand):
    help = "Add N orders (default 100,000) over the last 30 days, for 200 seeded customers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--seed", type=int, default=7, help="random seed, for repeatable data")

    def handle(self, *args: Any, count: int, seed: int, **options: Any) -> None:
        products = list(Product.objects.order_by("pk"))
        if not products:
            raise CommandError("no products: run load_demo first")
        rng = random.Random(seed)
        customers = list(Customer.objects.all())
        first = (Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        customers += Customer.objects.bulk_create(
            Customer(
                pk=first + i,
                name=f"Seeded Customer {first + i}",
                email=f"seed{first + i}@example.com",
            )
            for i in range(200)
        )
        now = timezone.now()
        # Sorted, so ids grow with time as they do for real orders.
        ages = sorted((rng.randint(0, 30 * 86400) for _ in range(count)), reverse=True)
        made = 0
        with _keep_given_created_at():
            while made < count:
                batch = min(5000, count - made)
                orders = []
                for age in ages[made : made + batch]:
                    product = rng.choice(products)
                    quantity = rng.randint(1, 3)
                    orders.append(
                        Order(
                            customer=rng.choice(customers),
                            product=product,
                            quantity=quantity,
                            amount=product.price * quantity,
                            payment_token_masked="tok_****seed",
                            status=rng.choice(_STATUSES),
                            created_at=now - timedelta(seconds=age),
                        )
                    )
                with transaction.atomic():
                    Order.objects.bulk_create(orders)
                made += batch
        self.stdout.write(f"seeded {made} orders and 200 customers")
