"""A declared body over the limit is refused from its Content-Length alone, on every path."""

from __future__ import annotations

import pytest

from orders.models import Order
from services.bus.models import Event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/orders",
        "/orders/sync",
        "/admin/login/",
        "/console/faults",
        "/control/services/payment/stop",
        "/",
    ],
)
def test_a_declared_length_over_16_kib_is_413_before_the_body_is_read(client, path):
    # The body is two bytes: reading the declared length from it would fail the test client.
    response = client.post(path, data="{}", content_type="application/json", CONTENT_LENGTH="16385")

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "16384 bytes" in response.json()["message"]
    assert Order.objects.count() == Event.objects.count() == 0


@pytest.mark.parametrize("length", ["abc", "\u00b2", "-1", "9" * 5000, "1e3"])
@pytest.mark.parametrize("path", ["/orders", "/orders/sync", "/admin/login/"])
def test_a_content_length_that_is_not_a_number_is_400(client, path, length):
    response = client.post(path, data="{}", content_type="application/json", CONTENT_LENGTH=length)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_content_length"


def test_a_body_within_the_limit_goes_through(client, customer, product):
    response = client.post(
        "/orders",
        data='{"userId": 123, "productId": 456, "quantity": 1, "paymentToken": "tok_abc123"}',
        content_type="application/json",
    )

    assert response.status_code == 202
