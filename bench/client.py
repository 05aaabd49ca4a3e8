"""A small asyncio HTTP/1.1 and WebSocket client, standard library only.

The load generator must not be the bottleneck on a 2-core machine that also runs the server, so
it skips what a general client does and we do not need: a keep-alive HTTP connection that reads
``Content-Length`` or chunked bodies, and a WebSocket that parses the server's (unmasked) frames
in ``data_received`` and hands each text message to a callback with its arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    """Where the deployment answers: ``http://host:port`` (https is not supported)."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// deployments are supported, not {parts.scheme}://")
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or 80)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


class HttpError(Exception):
    pass


class HttpConnection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.target.host, self.target.port
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Reconnects once if the server closed."""
        for attempt in (0, 1):
            if self._writer is None:
                await self._open()
            try:
                return await self._exchange(method, path, body, headers or {})
            except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.target.authority}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionResetError("server closed the connection")
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError):
            raise HttpError(f"bad status line {status_line!r}") from None
        length = None
        chunked = close = False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            data = await self._read_chunked()
        elif length is not None:
            data = await self._reader.readexactly(length)
        else:
            data = await self._reader.read()
            close = True
        if close:
            self.close()
        return status, data

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class ConnectionPool:
    """Idle keep-alive connections, handed out one request at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: list[HttpConnection] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        conn = self._idle.pop() if self._idle else HttpConnection(self.target)
        try:
            result = await conn.request(method, path, **kwargs)
        except BaseException:
            conn.close()
            raise
        self._idle.append(conn)
        return result

    async def post_json(self, path: str, data: Any) -> tuple[int, bytes]:
        return await self.request(
            "POST",
            path,
            body=json.dumps(data).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


OnMessage = Callable[[bytes, float], None]


class _WebSocketProtocol(asyncio.Protocol):
    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buffer[: self._buffer.find(b"\r\n")])
            del self._buffer[: end + 4]
            if b" 101 " not in status + b" ":
                self.handshake.set_exception(ConnectionError(f"no upgrade: {status!r}"))
                self.transport and self.transport.close()
                return
            self._upgraded = True
            self.handshake.set_result(None)
        self._parse(now)

    def _parse(self, now: float) -> None:
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if len(buf) - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            self._frame(first & 0x80, first & 0x0F, payload, now)
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes, now: float) -> None:
        if opcode in (0x1, 0x2, 0x0):
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = []
                self.on_message(message, now)
        elif opcode == 0x9:
            self._send_frame(0xA, payload)
        elif opcode == 0x8:
            self._send_frame(0x8, payload[:2])
            if self.transport:
                self.transport.close()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("closed before upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)


class WebSocket:
    """A client socket; every text message goes to ``on_message(data, monotonic_time)``."""

    def __init__(self, protocol: _WebSocketProtocol) -> None:
        self._protocol = protocol

    @classmethod
    async def connect(
        cls, target: Target, path: str, on_message: OnMessage, timeout: float = 10.0
    ) -> WebSocket:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _WebSocketProtocol(on_message), target.host, target.port
            ),
            timeout,
        )
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {target.authority}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert protocol.transport is not None
        protocol.transport.write(request.encode())
        await asyncio.wait_for(protocol.handshake, timeout)
        return cls(protocol)

    def send_text(self, text: str) -> None:
        self._protocol._send_frame(0x1, text.encode())

    @property
    def closed(self) -> asyncio.Future[None]:
        return self._protocol.closed

    def close(self) -> None:
        self._protocol._send_frame(0x8, struct.pack("!H", 1000))
        if self._protocol.transport is not None:
            self._protocol.transport.close()
