"""Management commands: load_demo, rebuild_projections, and settings that fail loudly."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.models import Customer, Order, Product
from services.inventory.models import Stock
from tests.conftest import ROOT
from tests.helpers import post_order

pytestmark = pytest.mark.django_db


def test_load_demo_has_the_articles_customer_and_product_and_a_scarce_one():
    call_command("load_demo", stdout=StringIO())

    assert Customer.objects.get(pk=123).email
    assert Product.objects.get(pk=456)
    assert Product.objects.count() >= 4
    assert Stock.objects.filter(on_hand__lte=10).exists()


def test_load_demo_twice_changes_nothing_and_keeps_a_running_shops_stock():
    call_command("load_demo", stdout=StringIO())
    Stock.objects.filter(product_id=456).update(on_hand=7)

    call_command("load_demo", stdout=StringIO())

    assert Customer.objects.count() == 3
    assert Stock.objects.get(product_id=456).on_hand == 7


def test_load_demo_creates_admin_only_when_a_password_is_given(monkeypatch):
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert not get_user_model().objects.exists()
    assert "DJANGO_SUPERUSER_PASSWORD" in out.getvalue()

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    call_command("load_demo", stdout=StringIO())

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.check_password("s3cret-pass")


def test_rebuild_projections_reports_and_fixes_a_status_that_drifted(client, customer, product):
    order_id = post_order(client).json()["orderId"]
    Order.objects.filter(pk=order_id).update(status="SHIPPED")
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("rebuild_projections", "--check", stdout=out)
    assert f"order {order_id}: stored SHIPPED, events say INITIATED" in out.getvalue()

    call_command("rebuild_projections", stdout=StringIO())
    assert Order.objects.get(pk=order_id).status == "INITIATED"
    call_command("rebuild_projections", "--check", stdout=StringIO())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
        ("ORDER_MAX_QUANTITY", "ten", "ORDER_MAX_QUANTITY='ten' is not an integer"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y' must be a URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379' must be a URL"),
        ("EMAIL_URL", "pigeon://coop", "EMAIL_URL must start with one of"),
    ],
)
def test_a_wrong_setting_fails_loudly_and_names_the_variable(name, value, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert message in result.stderr
