"""Requests on threads kept between them (checkout_site/request_threads.py), driven as daphne
drives the ASGI application: a scope, a receive and a send."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started

from checkout_site import request_threads
from checkout_site.request_threads import RequestThreadsHandler


@pytest.fixture
def threads_seen() -> Iterator[list[tuple[str, threading.Thread]]]:
    """(signal, thread id) of each request's start and end, which Django sends from the
    request's sync thread."""
    seen: list[tuple[str, threading.Thread]] = []

    def started(**_: Any) -> None:
        seen.append(("started", threading.current_thread()))

    def finished(**_: Any) -> None:
        seen.append(("finished", threading.current_thread()))

    request_started.connect(started, weak=False)
    request_finished.connect(finished, weak=False)
    yield seen
    request_started.disconnect(started)
    request_finished.disconnect(finished)


async def _get(
    app: Any, path: str = "/healthz", *, method: str = "GET", body: bytes = b""
) -> list[dict[str, Any]]:
    headers = [(b"host", b"testserver")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Future()  # no disconnect: Django cancels this wait when it has answered
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _status(sent: list[dict[str, Any]]) -> int:
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_requests_one_after_another_run_on_one_kept_thread(threads_seen):
    app = RequestThreadsHandler()

    async def two() -> list[list[dict[str, Any]]]:
        return [await _get(app), await _get(app)]

    answers = asyncio.run(two())

    assert [_status(a) for a in answers] == [200, 200]
    assert [signal for signal, _ in threads_seen] == ["started", "finished"] * 2
    assert len({thread for _, thread in threads_seen}) == 1, "each request started a thread"
    assert app.idle_threads == 1


def test_requests_at_once_each_get_a_thread_of_their_own_and_give_it_back(threads_seen):
    app = RequestThreadsHandler()
    inside = threading.Barrier(3, timeout=10)

    def meet(**_: Any) -> None:
        inside.wait()  # all three requests are in their sync code at the same time

    request_started.connect(meet, weak=False)
    try:

        async def three() -> list[list[dict[str, Any]]]:
            return list(await asyncio.gather(*(_get(app) for _ in range(3))))

        answers = asyncio.run(three())
    finally:
        request_started.disconnect(meet)

    assert [_status(a) for a in answers] == [200, 200, 200]
    started = [thread for signal, thread in threads_seen if signal == "started"]
    finished = [thread for signal, thread in threads_seen if signal == "finished"]
    assert len(set(started)) == 3 and set(finished) == set(started)
    assert app.idle_threads == 3


def test_past_the_limit_a_burst_s_extra_threads_are_shut_down(monkeypatch):
    monkeypatch.setattr(request_threads, "_IDLE_MAX", 1)
    app = RequestThreadsHandler()
    taken = [app._take(), app._take()]
    for executor in taken:
        app._give_back(executor)

    assert app.idle_threads == 1
    kept, dropped = taken
    assert kept.submit(threading.get_ident).result(5)
    with pytest.raises(RuntimeError, match="shutdown"):
        dropped.submit(threading.get_ident)


def _headers(sent: list[dict[str, Any]]) -> dict[bytes, bytes]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {k.lower(): v for k, v in start["headers"]}


def _body(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_site_answers_through_the_sync_chain_as_through_djangos_own():
    """The middleware chain is built as under WSGI; the site still answers as it does."""
    app = RequestThreadsHandler()
    assert not asyncio.iscoroutinefunction(app._middleware_chain)

    async def three() -> list[list[dict[str, Any]]]:
        return [
            await _get(app, "/healthz"),
            await _get(app, "/no-such-page"),
            await _get(app, "/orders", method="POST", body=b'{"userId": "x"'),
        ]

    ok, missing, bad = asyncio.run(three())

    assert _status(ok) == 200 and _body(ok) == b"ok"
    assert b"content-security-policy" in _headers(ok)  # the middleware ran
    assert _headers(ok)[b"x-frame-options"] == b"DENY"
    assert _status(missing) == 404
    assert _status(bad) == 400 and b"malformed_json" in _body(bad)
