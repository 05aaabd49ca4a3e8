"""Django's error page (DEBUG's technical 500) and error mail never show a payment token whole."""

from __future__ import annotations

import json
import sys

import pytest
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class, technical_500_response

from orders import views
from tests.helpers import ARTICLE_ORDER

pytestmark = pytest.mark.django_db

TOKEN = "tok_WholeSecret9876"
BODY = {**ARTICLE_ORDER, "paymentToken": TOKEN}


def _request(form: bool, path: str):
    factory = RequestFactory(REMOTE_ADDR="10.255.0.1")
    if form:
        request = factory.post(path, data=BODY)
        request._dont_enforce_csrf_checks = True
        return request
    return factory.post(path, data=json.dumps(BODY), content_type="application/json")


def _reports(view, request) -> tuple[str, str]:
    try:
        view(request)
    except RuntimeError:
        exc_info = sys.exc_info()
    else:
        pytest.fail("the view did not fail")
    page = technical_500_response(request, *exc_info).content.decode()
    text = get_exception_reporter_class(request)(request, *exc_info).get_traceback_text()
    return page, text


def _boom(**kwargs):
    raise RuntimeError(f"the database went away while charging {TOKEN}")


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
@pytest.mark.parametrize(
    ("path", "view", "placing"),
    [
        ("/orders", views.orders_create, "order_place"),
        ("/orders/sync", views.orders_create_sync, "order_place_sync"),
    ],
    ids=["events", "sync"],
)
def test_the_error_page_of_a_failed_checkout_masks_the_token(
    customer, product, settings, monkeypatch, debug, form, path, view, placing
):
    settings.DEBUG = debug
    monkeypatch.setattr(views, placing, _boom)

    page, text = _reports(view, _request(form, path))

    for report in (page, text):
        assert "RuntimeError" in report and view.__name__ in report
        # The token was there, in the frames, the POST data and the message: masked each time.
        assert "tok_****9876" in report
        assert TOKEN not in report
        assert "WholeSecret" not in report
