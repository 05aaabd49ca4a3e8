"""A client that asks the feed to replay the log over and over and never reads the answers.

``python -m bench.flood --url http://127.0.0.1:8000 --pid <daphne's pid>`` opens one socket with
a tiny receive buffer, sends ``--frames`` ``{"resume": 0}`` frames (14 bytes each) at once and
then ten a second, reads nothing, and samples daphne's resident memory until daphne has dropped
the connection, and for a few seconds after the client has gone. It prints the figures as JSON:
daphne's RSS before, at its peak and after, and how long the server took to drop the client.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import struct
import time
from dataclasses import asdict, dataclass

import psutil

from bench.client import Target

MIB = 1024 * 1024


@dataclass(frozen=True)
class FloodResult:
    frames: int
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    dropped_after_s: float | None


def _frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def _open_non_reader(target: Target, path: str) -> socket.socket:
    """A socket past its handshake, whose receive buffer is as small as the kernel allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so the kernel does not grow it: what daphne sends then stays in
    # daphne's own buffer instead of ours.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((target.host, target.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {target.authority}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed during the handshake: {head!r}")
        head += byte
    if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError(f"no upgrade: {head.splitlines()[0]!r}")
    return sock


def _connected(process: psutil.Process, client_port: int) -> bool:
    return any(
        c.raddr and c.raddr.port == client_port and c.status == psutil.CONN_ESTABLISHED
        for c in process.net_connections(kind="tcp")
    )


def flood(
    target: Target,
    pid: int,
    *,
    path: str = "/ws/events/?after=0",
    frames: int = 1300,
    every_s: float = 0.1,
    watch_s: float = 30.0,
    settle_s: float = 2.0,
    give_up_mib: float = 256.0,
) -> FloodResult:
    """Flood, then watch daphne until it drops the client (or ``watch_s`` passes).

    The flood stops early, with the socket closed, if daphne grows by ``give_up_mib``: a
    server without the bounds would otherwise take the machine's memory.
    """
    daphne = psutil.Process(pid)
    before = daphne.memory_info().rss
    peak = before
    sock = _open_non_reader(target, path)
    client_port = sock.getsockname()[1]
    started = time.monotonic()
    dropped: float | None = None
    resume = _frame(json.dumps({"resume": 0}))
    # A server that stops reading must not stall the client: it goes on watching.
    sock.settimeout(2.0)
    sent = 0
    try:
        with contextlib.suppress(OSError):
            sock.sendall(resume * frames)
            sent = frames
        while time.monotonic() - started < watch_s:
            with contextlib.suppress(OSError):
                sent += sock.send(resume) // len(resume)
            peak = max(peak, daphne.memory_info().rss)
            if peak - before > give_up_mib * MIB:
                break
            if not _connected(daphne, client_port):
                dropped = time.monotonic() - started
                break
            time.sleep(every_s)
    finally:
        sock.close()
    time.sleep(settle_s)
    after = daphne.memory_info().rss
    return FloodResult(
        frames=sent,
        rss_before_mib=round(before / MIB, 1),
        rss_peak_mib=round(max(peak, after) / MIB, 1),
        rss_after_mib=round(after / MIB, 1),
        dropped_after_s=None if dropped is None else round(dropped, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, required=True, help="daphne's process id")
    parser.add_argument("--path", default="/ws/events/?after=0")
    parser.add_argument("--frames", type=int, default=1300)
    args = parser.parse_args()
    result = flood(Target.parse(args.url), args.pid, path=args.path, frames=args.frames)
    print(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
