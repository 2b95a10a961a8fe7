"""A TCP proxy that adds a round-trip delay, so a loopback server behaves like a bucket.

Loopback answers in microseconds and hides the round trips that dominate real object
stores. Every chunk read from either side is delivered to the other side ``rtt / 2``
later (a delay line: order is kept and throughput is not throttled), and a new
connection waits one round trip before its first byte flows, like a TCP handshake.

Run it alone::

    python benchmarks/proxy.py --target 127.0.0.1:5000 --listen 127.0.0.1:5001 --rtt-ms 20

or in-process with ``LatencyProxy(...).start()`` / ``.stop()`` (a thread with its own loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import threading
import time

CHUNK = 2**16


class LatencyProxy:
    """Forward ``listen`` to ``target`` with ``rtt_ms`` of added round-trip time."""

    def __init__(
        self, target: tuple[str, int], rtt_ms: float = 20.0, listen: tuple[str, int] = ("127.0.0.1", 0)
    ):
        self.target = target
        self.one_way = rtt_ms / 2000.0
        self.listen = listen
        self.port = 0
        self.connections = 0
        #: bytes relayed from the server to clients (downloads) and from clients to it
        self.bytes_down = 0
        self.bytes_up = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._main: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, down: bool = False
    ) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``one_way`` seconds after it arrived."""
        # bounded: a slow receiver pushes back on the sender instead of filling memory
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

        sender = asyncio.create_task(deliver())
        try:
            while not sender.done() and (data := await reader.read(CHUNK)):
                if down:
                    self.bytes_down += len(data)
                else:
                    self.bytes_up += len(data)
                item = (time.monotonic() + self.one_way, data)
                if not queue.full():
                    queue.put_nowait(item)
                    continue
                put = asyncio.create_task(queue.put(item))
                # a dead receiver must not leave us blocked on a full queue
                await asyncio.wait({put, sender}, return_when=asyncio.FIRST_COMPLETED)
                if not put.done():
                    put.cancel()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            sender.cancel()  # shutting down: drop what is still in flight
            raise
        finally:
            if not sender.done() and not sender.cancelling():
                await queue.put((time.monotonic() + self.one_way, b""))
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await sender

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_writer = None
        try:
            await asyncio.sleep(2 * self.one_way)  # the handshake's round trip
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            pumps = [
                asyncio.create_task(self._pump(client_reader, upstream_writer)),
                asyncio.create_task(self._pump(upstream_reader, client_writer, down=True)),
            ]
            try:
                await asyncio.gather(*pumps)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (ConnectionError, OSError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(ConnectionError, OSError):
                        await writer.wait_closed()

    async def serve(self) -> None:
        """Serve until cancelled."""
        self._server = await asyncio.start_server(self._handle, *self.listen, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}:{self.port}"

    def start(self) -> LatencyProxy:
        """Serve in a daemon thread; returns once the port is bound."""

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._main = loop.create_task(self.serve())
            try:
                loop.run_until_complete(self._main)
            except asyncio.CancelledError:
                pass
            finally:
                # unwind every connection before the loop goes: no task left to the GC
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)
        if self._thread is not None:
            self._thread.join(10)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, type=_address, help="HOST:PORT of the server")
    parser.add_argument("--listen", default="127.0.0.1:0", type=_address, help="HOST:PORT to listen on")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="added round trip (ms)")
    args = parser.parse_args()
    proxy = LatencyProxy(args.target, args.rtt_ms, args.listen)

    async def run() -> None:
        task = asyncio.create_task(proxy.serve())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # nothing to flush: leave at once instead of unwinding every open connection
            loop.add_signal_handler(sig, os._exit, 0)
        while not proxy._ready.is_set():
            await asyncio.sleep(0.01)
        print(proxy.port, flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())


if __name__ == "__main__":
    main()
