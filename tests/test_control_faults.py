"""GET, POST and DELETE /control/faults: the contract's JSON over the console's faults."""

from __future__ import annotations

import pytest
from django.test import Client

from checkout_site.console.models import Fault

pytestmark = pytest.mark.django_db


def _token(client: Client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


def _add(client: Client, body: object):
    return client.post(
        "/control/faults", data=body, content_type="application/json", headers=_token(client)
    )


def test_a_fault_switched_on_is_listed_then_switched_off(staff_client):
    response = _add(staff_client, {"service": "payment", "kind": "crash", "orderId": 7})

    assert response.status_code == 201
    fault = response.json()
    assert fault == {
        "id": fault["id"],
        "service": "payment",
        "kind": "crash",
        "value": 0.0,
        "orderId": 7,
    }
    assert staff_client.get("/control/faults").json() == [fault]

    gone = staff_client.delete(f"/control/faults/{fault['id']}", headers=_token(staff_client))

    assert gone.status_code == 204
    assert staff_client.get("/control/faults").json() == []


def test_a_latency_in_whole_milliseconds_is_taken(staff_client):
    response = _add(staff_client, {"service": "notification", "kind": "latency", "value": 250})

    assert response.status_code == 201
    assert Fault.objects.get().value == 250


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service": "payment", "kind": "meteor"}, "kind"),
        ({"service": "payment"}, "kind"),
        ({"service": "shipping", "kind": "duplicate"}, "service"),
        ({"service": "inventory", "kind": "decline"}, "service"),
        ({"service": "payment", "kind": "failure", "value": 2}, "value"),
        ({"service": "payment", "kind": "failure"}, "value"),
        ({"service": "payment", "kind": "latency", "value": -5}, "value"),
        ({"service": "payment", "kind": "duplicate", "orderId": 0}, "orderId"),
        ({"service": "payment", "kind": "duplicate", "orderId": "7"}, "orderId"),
        ('{"service": "payment", "kind": "duplicate", "value": NaN}', "value"),
        (["payment", "duplicate"], "body"),
    ],
)
def test_a_wrong_fault_is_a_422_naming_the_field_and_nothing_is_switched_on(
    staff_client, body, field
):
    response = _add(staff_client, body)

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not Fault.objects.exists()


@pytest.mark.parametrize("fault_id", ["999", "9" * 30])
def test_switching_off_a_fault_that_is_not_on_is_a_404(staff_client, fault_id):
    response = staff_client.delete(f"/control/faults/{fault_id}", headers=_token(staff_client))

    assert response.status_code == 404


def test_a_value_is_kept_only_by_the_kinds_that_take_one(staff_client):
    response = _add(staff_client, {"service": "payment", "kind": "duplicate", "value": 5})

    assert response.status_code == 201
    assert response.json()["value"] == 0.0


def test_anonymous_requests_are_refused_and_change_nothing(client):
    fault = Fault.objects.create(service="payment", kind="duplicate")

    assert client.get("/control/faults").status_code == 403
    added = client.post(
        "/control/faults",
        data={"service": "payment", "kind": "crash"},
        content_type="application/json",
    )
    removed = client.delete(f"/control/faults/{fault.pk}")

    assert (added.status_code, removed.status_code) == (403, 403)
    assert list(Fault.objects.values_list("kind", flat=True)) == ["duplicate"]


def test_staff_without_the_csrf_token_changes_nothing(staff_client):
    fault = Fault.objects.create(service="payment", kind="duplicate")

    added = staff_client.post(
        "/control/faults",
        data={"service": "payment", "kind": "crash"},
        content_type="application/json",
    )
    removed = staff_client.delete(f"/control/faults/{fault.pk}")

    assert (added.status_code, removed.status_code) == (403, 403)
    assert Fault.objects.count() == 1
