"""The benchmark's own parts: its client, its arithmetic, and what makes its smoke run fail.

The benchmark itself runs with ``make bench`` / ``make bench-smoke``, not in the suite.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.__main__ import IDLE_HOP_LIMIT_MS, smoke_check, targets_check
from bench.client import Target, WebSocket
from bench.load import _seq_of, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_seq_is_read_from_a_socket_message_without_decoding_it() -> None:
    message = {"kind": "event", "event": {"seq": 40213, "type": "OrderCreated"}, "prevSeq": 3}
    assert _seq_of(json.dumps(message).encode()) == 40213
    assert _seq_of(json.dumps(message, separators=(",", ":")).encode()) == 40213


def test_target_takes_host_and_port_and_refuses_https() -> None:
    assert Target.parse("127.0.0.1:8001") == Target("127.0.0.1", 8001)
    assert Target.parse("http://localhost/") == Target("localhost", 80)
    with pytest.raises(ValueError, match="http://"):
        Target.parse("https://shop.example.com")


async def _serve_frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    small = b'{"seq": 1}'
    large = json.dumps({"seq": 2, "pad": "x" * 300}).encode()
    frames = struct.pack("!BB", 0x81, len(small)) + small
    frames += struct.pack("!BBH", 0x81, 126, len(large)) + large
    # Split mid-header and mid-payload: the client must reassemble both.
    for piece in (frames[:1], frames[1:7], frames[7:20], frames[20:]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)
    await reader.read()  # until the client closes
    writer.close()


def test_websocket_client_reassembles_frames_split_across_reads() -> None:
    async def scenario() -> list[Any]:
        server = await asyncio.start_server(_serve_frames, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        got: list[Any] = []
        ws = await WebSocket.connect(
            Target("127.0.0.1", port), "/ws/events/", lambda data, _t: got.append(json.loads(data))
        )
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        ws.close()
        server.close()
        await server.wait_closed()
        return got

    # A thread of its own: a browser test's Playwright may keep a loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        got = pool.submit(asyncio.run, scenario()).result(timeout=30)
    assert [m["seq"] for m in got] == [1, 2]
    assert len(got[1]["pad"]) == 300


def _results(**overrides: Any) -> dict[str, Any]:
    flat = {"errors": 0, "cancelled": 0, "tasks_per_order": 8.0}
    sockets = [{"delivered_fraction": 1.0, "in_order": True, "errors": 0}]
    results: dict[str, Any] = {
        "max_idle_hop_ms": 12.0,
        "orders_per_s_shipped": 20.0,
        "bare_tasks_per_s": 900.0,
        "details": {
            "idle": {"slowest_hop": "OrderCreated -> PaymentProcessed"},
            "e2e_errors": 0,
            "flat_out": flat,
            "sockets_scaling": sockets,
        },
    }
    results.update(overrides)
    return results


def test_smoke_passes_when_everything_arrived_quickly() -> None:
    assert smoke_check(_results()) == []


def test_smoke_fails_on_an_idle_hop_over_the_limit() -> None:
    problems = smoke_check(_results(max_idle_hop_ms=IDLE_HOP_LIMIT_MS + 900))
    assert len(problems) == 1
    assert "OrderCreated -> PaymentProcessed" in problems[0]


def test_smoke_fails_when_a_socket_missed_an_event() -> None:
    results = _results()
    results["details"]["sockets_scaling"][0]["delivered_fraction"] = 0.999
    assert any("sockets missed events" in p for p in smoke_check(results))


def test_targets_are_judged_in_the_right_direction() -> None:
    met = targets_check({"throughput_ratio": 0.6, "latency_ratio": 2.5, "e2e_p99_ms": 40.0})
    assert met["throughput_ratio"] is True
    assert met["latency_ratio"] is False
    assert met["e2e_p99_ms"] is True
    assert met["sockets"] is False  # not measured is not met
