"""GET /readyz: 200 while the database, the broker and the channel layer answer, else 503."""

from __future__ import annotations

import pytest
from django.test import override_settings

from checkout_site.embedded_redis import free_port

pytestmark = pytest.mark.django_db


def test_it_is_ready_when_every_part_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"database": "ok", "broker": "ok", "channel_layer": "ok"},
        "down": [],
    }


def test_it_names_the_broker_while_the_broker_is_unreachable_and_recovers(client, broker_proxy):
    broker_proxy.stop()
    try:
        response = client.get("/readyz")
    finally:
        broker_proxy.start()

    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["down"] == ["broker"]
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] != "ok"
    assert client.get("/readyz").status_code == 200


def test_it_names_the_channel_layer_when_its_redis_does_not_answer(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["down"] == ["channel_layer"]


def test_it_only_reads(client):
    assert client.post("/readyz").status_code == 405
