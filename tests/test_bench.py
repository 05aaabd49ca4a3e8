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
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.__main__ import IDLE_HOP_LIMIT_MS, smoke_check, table, targets_check
from bench.client import Target, WebSocket
from bench.load import LoadRun, _seq_of, percentile
from bench.report import headline, limits, page
from bench.targets import TARGETS


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
    flat = {"errors": 0, "cancelled": 0, "tasks_per_order": 7.0, "deliveries_due_per_order": 7.0}
    sockets = [{"delivered_fraction": 1.0, "in_order": True, "errors": 0}]
    results: dict[str, Any] = {
        "max_idle_hop_ms": 12.0,
        "orders_per_s_shipped": 20.0,
        "bare_tasks_per_s": 900.0,
        "cpu_ms_per_order": 55.0,
        "minimal_write_per_s": 110.0,
        "post_vs_minimal_write": 0.68,
        "post_cpu_ms": 14.0,
        "post_p99_sockets_ratio": 2.4,
        "details": {
            "idle": {"slowest_hop": "OrderCreated -> PaymentProcessed"},
            "e2e_errors": 0,
            "flat_out": flat,
            "sockets_scaling": sockets,
            "no_sockets": {
                "sockets": 0,
                "orders_per_s": 3,
                "post_ms": {"p50": 9.0, "p99": 11.0},
                "errors": 0,
            },
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


def test_smoke_judges_no_speed_even_where_a_target_is_missed() -> None:
    results = _results(max_idle_hop_ms=12.0, cpu_ms_per_order=59.0, post_vs_minimal_write=0.3)
    assert smoke_check(results) == []
    met = targets_check(results)
    assert met["max_idle_hop_ms"] is False  # the target is 5 ms; the smoke run allows 100
    assert met["cpu_ms_per_order"] is False
    assert met["post_vs_minimal_write"] is False


def test_smoke_fails_when_the_minimal_write_or_the_socket_ratio_was_not_measured() -> None:
    problems = smoke_check(_results(minimal_write_per_s=0.0, post_p99_sockets_ratio=None))
    assert problems == ["nothing was measured for minimal_write_per_s, post_p99_sockets_ratio"]


def test_smoke_fails_when_orders_failed_with_no_socket_open() -> None:
    results = _results()
    results["details"]["no_sockets"]["errors"] = 2
    assert any("no socket open" in p for p in smoke_check(results))


def test_targets_are_judged_in_the_right_direction() -> None:
    met = targets_check({"throughput_ratio": 0.6, "latency_ratio": 2.5, "e2e_p99_ms": 40.0})
    assert met["throughput_ratio"] is True
    assert met["latency_ratio"] is False
    assert met["e2e_p99_ms"] is True
    assert met["sockets"] is False  # not measured is not met


def test_targets_are_those_of_the_lean_hot_path() -> None:
    at_the_bound = {
        "cpu_ms_per_order": 20.0,
        "orders_per_s_shipped": 60.0,
        "throughput_ratio": 0.5,
        "latency_ratio": 2.0,
        "e2e_p99_ms": 50.0,
        "max_idle_hop_ms": 5.0,
        "post_vs_minimal_write": 0.7,
        "sockets": 1000,
        "socket_delivered_fraction": 1.0,
        "socket_p99_ms": 250.0,
        "post_p99_sockets_ratio": 3.0,
    }
    assert targets_check(at_the_bound) == dict.fromkeys(at_the_bound, True)
    worse = {"cpu_ms_per_order": 20.1, "post_vs_minimal_write": 0.69, "post_p99_sockets_ratio": 3.1}
    met = targets_check({**at_the_bound, **worse})
    assert [k for k, ok in met.items() if not ok] == list(worse)
    assert "post_ratio" not in met  # the no-op view is a figure, no longer a target


def test_the_table_shows_the_new_figures_with_their_targets() -> None:
    results = _results()
    results["targets_met"] = targets_check(results)
    rows = {line.split("|")[0].strip(): line for line in table(results).splitlines()}
    assert "<= 20" in rows["cpu_ms_per_order"] and "NOT MET" in rows["cpu_ms_per_order"]
    assert ">= 0.7" in rows["post_vs_minimal_write"]
    assert "met" in rows["post_p99_sockets_ratio"].split("|")[3]
    assert "110.0" in rows["minimal_write_per_s"]
    assert "14.0" in rows["post_cpu_ms"]


def _page_results(**overrides: Any) -> dict[str, Any]:
    """A whole run's results, as ``python -m bench`` writes them, for the page."""
    cpu = {"worker": 30.0, "daphne": 15.0, "redis": 2.0, "relay": 0.5, "total": 47.5}
    ms = {"n": 10, "p50": 20.0, "p90": 30.0, "p99": 40.0, "max": 41.0}
    rates = [
        {"rate": rate, "shipped_per_s": rate, "e2e_ms": ms, "post_ms": ms, "cpu_ms_per_order": cpu}
        for rate in (10, 20)
    ]
    sockets = [
        {
            "sockets": n,
            "orders_per_s": 1,
            "events": 90,
            "messages_delivered": 90 * n,
            "delivered_fraction": 1.0,
            "post_to_socket_ms": {**ms, "p99": 20.0 + n / 10},
            "fanout_spread_ms": ms,
            "post_ms": ms,
            "cpu_ms_per_message": {"daphne": 0.1},
        }
        for n in (10, 1000)
    ]
    results = _results(**overrides)
    results["details"].update(
        flat_out={
            **results["details"]["flat_out"],
            "in_flight": 48,
            "orders_per_s_shipped": 20.0,
            "cpu_ms_per_order": cpu,
        },
        orders_per_s_scaling=rates,
        sockets_scaling=sockets,
    )
    results["sockets"] = 1000
    results["machine"] = {"cpu": "a CPU", "cores": 2, "memory_gb": 4, "kernel": "6", "python": "3"}
    versions = ("Django", "celery", "channels", "daphne", "redis-server")
    results["versions"] = dict.fromkeys(versions, "1")
    return results


def test_the_page_judges_older_results_against_todays_targets_and_marks_what_is_missing() -> None:
    results = _results(max_idle_hop_ms=12.0)
    for key in ("cpu_ms_per_order", "post_vs_minimal_write", "post_p99_sockets_ratio"):
        del results[key]
    results["targets_met"] = {"max_idle_hop_ms": True}  # judged against the old 100 ms
    rows = {line.split("|")[1].strip(): line for line in headline(results).splitlines()[2:]}
    idle = rows["slowest broker hop on an idle pipeline, ms"]
    assert "≤ 5" in idle and "**not met**" in idle
    ratio = rows["POST ratio (orders / minimal outbox write)"]
    assert "| — |" in ratio and "not measured" in ratio


def test_the_page_shows_the_post_with_and_without_sockets() -> None:
    text = page(_page_results())
    assert "| 0 | 3 | — | — | — | — | — | 9.0 / 11.0 | — |" in text
    assert "takes 2.4 times its p99 with none" in text


def test_the_page_of_results_without_the_new_keys_still_renders() -> None:
    results = _page_results()
    del results["details"]["no_sockets"]
    for run in results["details"]["sockets_scaling"]:
        del run["post_ms"]
    text = page(results)
    assert "| 10 | 1 | 90 | 900 | 1.0 | 20.0 / 21.0 | 20.0 / 40.0 | — | 0.1 |" in text


async def _answer_orders(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    order_id = 0
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        order_id += 1
        body = json.dumps({"orderId": order_id}).encode()
        writer.write(
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    writer.close()


def test_an_open_loop_with_no_socket_only_times_the_posts() -> None:
    async def scenario() -> LoadRun:
        server = await asyncio.start_server(_answer_orders, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        run = LoadRun(
            Target("127.0.0.1", port), rate=50, duration=0.2, follow=False, progress=False
        )
        await asyncio.wait_for(run.run(), timeout=5)
        server.close()
        await server.wait_closed()
        return run

    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(asyncio.run, scenario()).result(timeout=30)
    assert run.stats.accepted == 10
    assert len(run.stats.post_ms) == 10
    assert run.stats.timeouts == run.stats.errors == 0


def test_the_report_writes_the_growth_plot_and_links_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PAGE", tmp_path / "performance.md")
    monkeypatch.setattr(report, "PLOT", tmp_path / "performance-growth.png")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_page_results()))
    assert report.main([str(results)]) == 0
    assert report.PLOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![How cost grows](performance-growth.png)" in report.PAGE.read_text()


def test_a_run_without_scaling_runs_gets_no_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PAGE", tmp_path / "performance.md")
    monkeypatch.setattr(report, "PLOT", tmp_path / "performance-growth.png")
    smoke = _page_results()
    smoke["details"]["orders_per_s_scaling"] = []
    smoke["details"]["sockets_scaling"] = smoke["details"]["sockets_scaling"][:1]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(smoke))
    assert report.main([str(results)]) == 0
    assert not report.PLOT.exists()
    assert "performance-growth.png" not in report.PAGE.read_text()


def _profiled() -> dict[str, Any]:
    return {
        "orders": 200,
        "profiled": {
            "deliveries": 1400,
            "ms_per_delivery_profiled": 4.4,
            "parts_ms": {"handlers": 1.7, "broadcast to the live pages": 0.9},
            "sql_statements_per_delivery": 7.6,
            "redis_sends_per_delivery": 3.4,
        },
    }


def test_the_page_says_what_limits_each_missed_target_with_the_profile() -> None:
    results = _page_results(max_idle_hop_ms=12.0)
    results["cpu_paths"] = _profiled()

    text = limits(results)

    assert "Flat out an order takes 47.5 ms of CPU" in text
    assert "ship at most about 42 orders/s" in text
    # The profile's parts, largest first, and what a delivery sends.
    assert "handlers 1.7 ms, broadcast to the live pages 0.9 ms" in text
    assert "7.6 SQL statements" in text and "3.4 Redis commands" in text
    assert "**The idle hop.**" in text
    assert "## What limits it" in page(results)


def test_without_a_profile_the_limits_are_said_from_the_run_alone() -> None:
    text = limits(_page_results())

    assert "Flat out an order takes 47.5 ms of CPU" in text
    assert "cProfile" not in text


def test_when_every_target_is_met_the_page_says_so() -> None:
    results = _page_results()
    results["targets_met"] = {}
    for key, _op, bound in TARGETS:
        results[key] = bound

    assert limits(results) == "Every target is met."


def test_cpu_paths_adds_where_a_delivery_goes_to_the_results(tmp_path) -> None:
    import subprocess
    import sys

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"kept": 1}))

    subprocess.run(
        [sys.executable, "-m", "bench.cpu_paths", "3", "--into", str(results)],
        cwd=report.ROOT,
        check=True,
        capture_output=True,
        timeout=240,
    )

    found = json.loads(results.read_text())
    paths, prof = found["cpu_paths"], found["cpu_paths"]["profiled"]
    assert found["kept"] == 1
    assert paths["orders"] == 3 and paths["deliveries_per_order"] == 7.0
    assert paths["delivery_cpu_ms"] > 0 and paths["post_cpu_ms"] > 0
    assert prof["deliveries"] == 21
    assert abs(sum(prof["parts_ms"].values()) - prof["ms_per_delivery_profiled"]) < 0.01
    assert prof["parts_ms"]["handlers"] > 0 and prof["sql_statements_per_delivery"] > 3


def test_a_missed_socket_ratio_is_explained_by_the_p50s_and_the_fan_out() -> None:
    results = _page_results(post_p99_sockets_ratio=4.0)

    text = limits(results)

    assert "**POST /orders beside 1000 sockets.** Each p99 comes from 10 POSTs" in text
    assert "first to last socket: p50 20.0 ms per event" in text
