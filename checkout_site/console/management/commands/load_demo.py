"""Load the demo catalog (idempotent): customers, products and their stock.

The site's data, handed to each service to store in its own tables: the order service keeps
the customers and the catalog, the inventory service the stock.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from orders.catalog import customer_save, product_list
from services.inventory.stock import stock_seed

CUSTOMERS = [
    (123, "Ada Lovelace", "ada@example.com"),
    (124, "Grace Hopper", "grace@example.com"),
    (125, "Alan Turing", "alan@example.com"),
]
# id, name, price, stock, description. 457 is scarce on purpose, to show an order running out.
PRODUCTS = [
    (456, "Mechanical keyboard", "89.00", 250, "Tactile switches, USB-C"),
    (457, "Limited-edition mug", "14.50", 5, "Only a handful left"),
    (458, "Noise-cancelling headphones", "199.00", 120, "30 h battery"),
    (459, "Standing desk mat", "39.90", 300, "Anti-fatigue foam"),
]


class Command(BaseCommand):
    help = "Load the demo catalog: customer 123, product 456 and friends. Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for pk, name, email in CUSTOMERS:
                customer_save(pk=pk, name=name, email=email)
            for pk, name, price, stock, description in PRODUCTS:
                # Both are set only the first time, so reloading never resets a running shop.
                if product_list(
                    pk=pk, name=name, price=Decimal(price), description=description, stock=stock
                ):
                    stock_seed(product_id=pk, on_hand=stock)
        self.stdout.write(f"demo catalog: {len(CUSTOMERS)} customers, {len(PRODUCTS)} products")
        self._superuser()

    def _superuser(self) -> None:
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        User = get_user_model()
        if not password:
            if not User.objects.filter(is_superuser=True).exists():
                self.stdout.write(
                    "no staff user: set DJANGO_SUPERUSER_PASSWORD to create 'admin', "
                    "or run: python manage.py createsuperuser"
                )
            return
        user, _ = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write("staff user 'admin' is ready (password from DJANGO_SUPERUSER_PASSWORD)")
