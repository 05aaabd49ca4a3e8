"""Refuse a request whose declared body is too large before the site reads it.

Django refuses to read more than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when a view or a
middleware first touches the body, and then with an error page; this answers first, for every
path, from the ``Content-Length`` header alone, with the JSON refusal of the order service. No
form of the site, the admin's included, posts anything near the limit, and none uploads files.

Daphne receives the whole body before it calls the application, so the bytes have crossed the
network by then: a limit in front of that is the load balancer's (nginx's
``client_max_body_size 16k``, or an HAProxy rule on ``req.hdr_val(content-length)``).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from orders.contract import ApiError, error_response

_LENGTH = re.compile(r"[0-9]{1,18}")


class BodyLimitMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not _LENGTH.fullmatch(declared.strip()):
            return error_response(
                ApiError(400, "bad_content_length", "Content-Length must be a number of bytes")
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if int(declared) > limit:
            return error_response(
                ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
            )
        return None
