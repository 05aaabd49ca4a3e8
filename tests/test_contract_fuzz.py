"""The order request parser (orders/contract.py) fuzzed through the real views, both checkouts.

Whatever the body, JSON or form: the answer is 400, 413 or 422, or the order is placed because
the body was a valid order; never a 500, and a refused body creates nothing. The examples per
test follow the Hypothesis profile (tests/conftest.py): a quick run by default, a deep one with
``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import event, given
from hypothesis import strategies as st

from orders.contract import FIELDS
from orders.models import Order
from services.bus.models import Event
from tests.helpers import ARTICLE_ORDER

pytestmark = pytest.mark.django_db

PATHS = ["/orders", "/orders/sync"]
REFUSED = {400, 413, 422}
# Placed: 202 (JSON) or 303 (form) on /orders, 201 on /orders/sync.
PLACED = {"/orders": {202, 303}, "/orders/sync": {201}}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def catalog(customer, product):
    return customer, product


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**20, max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["tok_abc123", "tok_declined\n", "tok_", "1", "²", "123", "456"])
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@st.composite
def _near_orders(draw: st.DrawFn) -> dict[str, Any]:
    """The article's order with some fields replaced, dropped or joined by others."""
    order: dict[str, Any] = {}
    for name, valid in ARTICLE_ORDER.items():
        how = draw(st.sampled_from(["keep", "replace", "drop"]))
        if how == "keep":
            order[name] = valid
        elif how == "replace":
            order[name] = draw(_json_values)
    order.update(draw(st.dictionaries(st.text(max_size=12), _json_values, max_size=3)))
    return order


_form_text = st.text(max_size=40) | st.sampled_from(["123", "456", "1", "tok_abc123", " 1 ", "²"])


@st.composite
def _form_fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Form pairs: the order's names (some repeated: the last one counts) and any others, with
    any text values, after the article's order as a form sends it, or not."""
    names = st.sampled_from(FIELDS) | st.text(max_size=12)
    valid = [(name, str(value)) for name, value in ARTICLE_ORDER.items()]
    start = valid if draw(st.booleans()) else []
    return start + draw(st.lists(st.tuples(names, _form_text), max_size=8))


def _post(path: str, body: bytes, content_type: str) -> int:
    before = (Order.objects.count(), Event.objects.count())
    response = Client().post(path, data=body, content_type=content_type)
    status = response.status_code
    event(f"answered {status}")
    if status in PLACED[path]:
        assert Order.objects.count() == before[0] + 1
    else:
        assert status in REFUSED, f"{status} for {body[:200]!r}"
        assert (Order.objects.count(), Event.objects.count()) == before
    return status


@pytest.mark.parametrize("path", PATHS)
@given(value=_json_values | _near_orders())
def test_any_json_value_is_refused_or_placed_never_a_500(path, value):
    _post(path, json.dumps(value).encode(), "application/json")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "content_type",
    ["application/json", FORM, "multipart/form-data", "multipart/form-data; boundary=B0und"],
)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_refused_never_a_500(path, content_type, body):
    _post(path, body, content_type)


@pytest.mark.parametrize("path", PATHS)
@given(fields=_form_fields())
def test_any_form_fields_are_refused_or_placed_never_a_500(path, fields):
    _post(path, urlencode(fields).encode(), FORM)


@pytest.mark.parametrize("path", PATHS)
@given(value=_near_orders())
def test_a_refused_json_order_names_a_field_it_was_sent_or_needs(path, value):
    response = Client().post(path, data=json.dumps(value), content_type="application/json")

    if response.status_code == 422:
        body = response.json()
        assert body["field"] in {*FIELDS, "body"}
        assert body["errors"][body["field"]] == body["message"]
