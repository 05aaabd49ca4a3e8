"""The Content-Security-Policy header, on every answer of the site.

The pages load their scripts from /static/ and run no inline script (data for a page travels in
``json_script`` blocks and ``data-`` attributes, which are not executed), so the policy forbids
inline script outright. Inline ``style`` attributes are allowed: a page sets some from the
server (the swimlane's number of lanes).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
