"""Django's ASGI handler, with a request's middleware and view in one hop to a kept thread.

Django runs a request's sync code (a sync view, the signals around it) in a thread of the
request's own: it enters asgiref's ``ThreadSensitiveContext``, which starts a single-thread
executor for the request and shuts it down when the request ends. Starting and joining that
thread was a tenth of daphne's CPU for a no-op view. Here the request gets such an executor from
the process's idle ones and gives it back afterwards, through the executor that asgiref's context
takes for this: one request at a time on each, as before, and a request's sync code still on one
thread. A thread's thread-locals outlive the request, as under WSGI: Django closes or keeps its
database connection at the request's end by ``CONN_MAX_AGE``, as it would there.

Every middleware and view of this site is sync. Under ASGI Django builds the chain for the event
loop, and then each of its middleware (Django's own are callable both ways) hands its
``process_request`` and ``process_response`` to the thread and back, and WhiteNoise, sync only,
one more pair: a dozen hand-offs per request. Here the chain is built as under WSGI and the whole
of it runs in one hand-off, as ``get_response`` (an async view would still work: Django runs it
from the sync chain as WSGI does).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

# More idle threads than this are shut down: a burst's extra threads do not stay.
_IDLE_MAX = 16


class RequestThreadsHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._give_back(executor)

    def _take(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def _give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < _IDLE_MAX:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)

    @property
    def idle_threads(self) -> int:
        with self._lock:
            return len(self._idle)
