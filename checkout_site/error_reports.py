"""Error pages and error e-mails that never show a payment token whole, DEBUG on or off.

Django's own filter hides what ``sensitive_post_parameters`` and ``sensitive_variables`` name,
but only with DEBUG off, and it knows nothing of a token inside a JSON body, a pydantic model or
an exception's message. Here every value a report shows is masked the way pages mask tokens:
the frames' variables before they are printed (a long ``bytes`` is printed in pieces, which could
split a token past a pattern's reach), the POST data, and the finished report as a last pass
over what is left (the query string, headers, the exception's text).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from services.bus.schemas import mask_tokens_in


class _Masked:
    """A value shown by its masked ``repr``, which is what the report prints of it."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


def _masked(value: Any) -> Any:
    try:
        text = repr(value)
    except Exception:  # a half-built object in a frame; Django's filter copes with the same
        return value
    masked = mask_tokens_in(text)
    return value if masked == text else _Masked(masked)


class TokenSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        # Django's filter stands aside with DEBUG on; make run has DEBUG on.
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for name, values in parameters.lists():
            cleansed.setlist(name, [mask_tokens_in(v) for v in values])
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [
            (name, _masked(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class TokenSafeExceptionReporter(ExceptionReporter):
    def get_traceback_html(self) -> str:
        return mask_tokens_in(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return mask_tokens_in(super().get_traceback_text())
