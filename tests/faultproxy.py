"""A fault-injecting HTTP/1.1 proxy on loopback, in front of the test servers.

The proxy forwards each request byte for byte to its upstream (moto, fake-gcs-server or
Azurite) and answers a configurable share of them with a fault instead::

    client ──> FaultProxy (127.0.0.1:port) ──> upstream server
                 │ per request: roll = keyed RNG(seed, method, path, n-th occurrence)
                 ├─ roll >= rate      forward, relay the answer
                 └─ roll <  rate      one of KINDS:
                      500             InternalError, request not forwarded
                      503             SlowDown (S3 XML / GCS JSON / Azure ServerBusy), not forwarded
                      reset           TCP RST (SO_LINGER 0) before anything is forwarded
                      truncate        forwarded; the answer's headers and half its body, then FIN
                      delay           forwarded after ``delay_s`` seconds

The roll depends on the request, never on the order requests arrive in, so a seeded
run injects the same faults whatever the concurrency. ``drop_response`` names requests
whose answer is lost *after* the server acted on them (the create-then-lost-answer case).
``stats.bytes_down`` counts the answer bodies relayed from the server (in total, and by
path in ``stats.bytes_down_by_path``): what the downloads cost the store.
The proxy runs its own asyncio loop in a daemon thread; ``stop()`` ends it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import random
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

KINDS = ("500", "503", "reset", "truncate", "delay")
#: the kinds that make a request fail (a delay only slows it)
FAILING_KINDS = ("500", "503", "reset", "truncate")

_BODIES = {
    ("s3", "500"): (
        "application/xml",
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
        b"<Message>We encountered an internal error. Please try again.</Message></Error>",
    ),
    ("s3", "503"): (
        "application/xml",
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message></Error>",
    ),
    ("gcs", "500"): (
        "application/json",
        b'{"error": {"code": 500, "message": "Internal Error", "errors": [{"reason": "internalError"}]}}',
    ),
    ("gcs", "503"): (
        "application/json",
        b'{"error": {"code": 503, "message": "Backend Error", "errors": [{"reason": "backendError"}]}}',
    ),
    ("azure", "500"): (
        "application/xml",
        b'<?xml version="1.0" encoding="utf-8"?><Error><Code>InternalError</Code>'
        b"<Message>The server encountered an internal error.</Message></Error>",
    ),
    ("azure", "503"): (
        "application/xml",
        b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
        b"<Message>The server is currently unable to receive requests.</Message></Error>",
    ),
}
_REASONS = {"500": "Internal Server Error", "503": "Slow Down"}

Rule = Callable[[str, str], bool]


@dataclass
class Stats:
    """What the proxy saw and did."""

    requests: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: list[str] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    #: bytes of the upstream's answer bodies relayed to clients (what a download cost the
    #: store), in total and by request path (its query left out); headers not counted
    bytes_down: int = 0
    bytes_down_by_path: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def injected(self) -> int:
        return sum(self.faults.values()) + len(self.dropped)


class _Closed(Exception):
    """The peer closed the connection between requests."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, list[tuple[str, str]]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw[:-4].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))
    return lines[0], headers


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, kept in its chunked form (forwarded as it came)."""
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        out += line
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = await reader.readuntil(b"\r\n")
                out += trailer
                if trailer == b"\r\n":
                    return bytes(out)
        out += await reader.readexactly(size + 2)


async def _read_body(
    reader: asyncio.StreamReader, headers: Sequence[tuple[str, str]], *, to_eof: bool
) -> tuple[bytes, bool]:
    """``(raw body, framed)``; ``framed`` is False for a body that ends at EOF."""
    if (_header(headers, "transfer-encoding") or "").lower().endswith("chunked"):
        return await _read_chunked(reader), True
    length = _header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length)), True
    if to_eof:
        return await reader.read(), False
    return b"", True


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST: the client sees 'connection reset by peer'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """A proxy to ``upstream`` (``http://127.0.0.1:port``) that injects faults.

    Parameters
    ----------
    upstream
        The real server's base URL.
    flavour
        ``s3``, ``gcs`` or ``azure``: the error bodies to answer with.
    rate
        Share of requests (0..1) that get a fault.
    kinds
        The faults to draw from (``KINDS``).
    seed
        Seeds every roll.
    delay_s
        How long a ``delay`` fault holds a request.
    only
        If given, only requests for which ``only(method, path)`` is true can get a fault.
    """

    def __init__(
        self,
        upstream: str,
        *,
        flavour: str,
        rate: float = 0.0,
        kinds: Sequence[str] = KINDS,
        seed: int = 0,
        delay_s: float = 1.0,
        only: Rule | None = None,
    ) -> None:
        host, _, port = upstream.removeprefix("http://").rstrip("/").partition(":")
        self.upstream = (host, int(port))
        self.flavour = flavour
        self.seed = seed
        #: text (a test's random bucket name) replaced by a constant before rolling
        self.mask: str | None = None
        self.delay_s = delay_s
        self.configure(rate=rate, kinds=kinds, only=only)
        #: ``(method, path, request body) -> bool``: answers to lose after the server acted
        self.drop_response: Callable[[str, str, bytes], bool] | None = None
        self.stats = Stats()
        self._seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self.url = ""

    def configure(self, *, rate: float, kinds: Sequence[str] = KINDS, only: Rule | None = None) -> None:
        """Change the fault rate and kinds from now on (takes effect on the next request)."""
        unknown = set(kinds) - set(KINDS)
        if unknown or not 0 <= rate <= 1 or not kinds:
            raise ValueError(f"bad fault configuration: rate={rate}, kinds={kinds}")
        self.rate, self.kinds, self.only = rate, tuple(kinds), only

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            # end every handler (a held ``delay`` too) so that none is destroyed pending
            # and no connection is left open when the loop closes
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions ------------------------------------------------------------------------
    def decide(self, method: str, path: str) -> str | None:
        """The fault for this request, or ``None`` (keyed on method, path without its
        query, and how often that pair was seen: independent of arrival order)."""
        bare = path.split("?", 1)[0]
        if self.mask:
            # the random bucket name of each test must not change which requests fail
            bare = bare.replace(self.mask, "<bucket>")
        key = (method, bare)
        with self._lock:
            self._seen[key] += 1
            nth = self._seen[key]
            self.stats.requests += 1
            self.stats.seen.append(f"{method} {path}")
        if self.rate <= 0 or (self.only is not None and not self.only(method, path)):
            return None
        digest = hashlib.sha256(f"{self.seed}|{key[0]}|{key[1]}|{nth}".encode()).digest()
        rng = random.Random(digest)
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.kinds)

    def _relayed(self, path: str, body: bytes) -> None:
        """Count ``body`` (an upstream answer's body, or the part of it sent) as relayed."""
        with self._lock:
            self.stats.bytes_down += len(body)
            self.stats.bytes_down_by_path[path.split("?", 1)[0]] += len(body)

    def _record(self, method: str, path: str, what: str) -> None:
        with self._lock:
            if what == "drop":
                self.stats.dropped.append(f"{method} {path}")
            else:
                self.stats.faults[what] += 1
            self.stats.log.append((method, path, what))

    # -- serving --------------------------------------------------------------------------
    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        opened: list[asyncio.StreamWriter] = []  # every upstream connection, closed at the end
        self._writers.add(client_w)
        try:
            while True:
                keep = await self._one(client_r, client_w, upstream, opened)
                if keep is None:
                    break
                upstream = keep
        except (ConnectionError, asyncio.IncompleteReadError, _Closed):
            client_w.transport.abort()
        except asyncio.CancelledError:
            client_w.transport.abort()
            raise
        finally:
            self._writers.discard(client_w)
            for up_w in opened:
                up_w.transport.abort()
            if not client_w.is_closing():
                client_w.close()

    async def _one(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        opened: list[asyncio.StreamWriter],
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Serve one request; the upstream connection to keep, or ``None`` to close (a
        connection it opens goes into ``opened``, which the handler closes)."""
        head = await _read_head(client_r)
        if head is None:
            return None
        request_line, headers = head
        method, path = request_line.decode("latin-1").split(" ")[:2]
        if (_header(headers, "expect") or "").lower() == "100-continue":
            client_w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        body, _ = await _read_body(client_r, headers, to_eof=False)
        fault = self.decide(method, path)
        if fault in ("500", "503"):
            self._record(method, path, fault)
            kind = fault
            content_type, payload = _BODIES[(self.flavour, kind)]
            extra = ""
            if self.flavour == "azure":
                extra = f"x-ms-error-code: {'ServerBusy' if kind == '503' else 'InternalError'}\r\n"
            answer = (
                f"HTTP/1.1 {kind} {_REASONS[kind]}\r\nContent-Type: {content_type}\r\n{extra}"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            ).encode()
            client_w.write(answer if method == "HEAD" else answer + payload)
            await client_w.drain()
            return None
        if fault == "reset":
            self._record(method, path, fault)
            _reset(client_w)
            return None
        if fault == "delay":
            self._record(method, path, fault)
            await asyncio.sleep(self.delay_s)
        if upstream is None:
            upstream = await asyncio.open_connection(*self.upstream)
            opened.append(upstream[1])
        up_r, up_w = upstream
        lines = [request_line] + [f"{k}: {v}".encode("latin-1") for k, v in headers]
        up_w.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await up_w.drain()
        response = await _read_head(up_r)
        if response is None:
            raise _Closed()
        status_line, resp_headers = response
        status = int(status_line.split(b" ")[1])
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            resp_body, framed = b"", True
        else:
            resp_body, framed = await _read_body(up_r, resp_headers, to_eof=True)
        raw_head = b"\r\n".join([status_line] + [f"{k}: {v}".encode("latin-1") for k, v in resp_headers])
        raw_head += b"\r\n\r\n"
        if self.drop_response is not None and self.drop_response(method, path, body):
            # the server acted; the client never hears of it
            self._record(method, path, "drop")
            _reset(client_w)
            return None
        if fault == "truncate":
            self._record(method, path, fault)
            if resp_body:
                client_w.write(raw_head + resp_body[: len(resp_body) // 2])
                self._relayed(path, resp_body[: len(resp_body) // 2])
                await client_w.drain()
                client_w.close()  # FIN: the body ends before its announced length
            else:
                _reset(client_w)  # nothing to cut: the answer is lost
            return None
        client_w.write(raw_head + resp_body)
        self._relayed(path, resp_body)
        await client_w.drain()
        if not framed or (_header(resp_headers, "connection") or "").lower() == "close":
            return None
        return upstream
