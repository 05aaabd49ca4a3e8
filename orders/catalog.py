"""The order service's catalog: who may buy and what they can buy."""

from __future__ import annotations

from decimal import Decimal

from orders.models import Customer, Product


def customer_save(*, pk: int, name: str, email: str) -> Customer:
    customer, _ = Customer.objects.update_or_create(pk=pk, defaults={"name": name, "email": email})
    return customer


def product_list(*, pk: int, name: str, price: Decimal, description: str, stock: int) -> bool:
    """Add a product to the catalog once; ``stock`` starts its read model of the inventory's
    figure. Returns whether it was new: an existing product keeps its price and stock."""
    _, created = Product.objects.get_or_create(
        pk=pk,
        defaults={"name": name, "price": price, "description": description, "stock": stock},
    )
    return created
