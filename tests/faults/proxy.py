"""A TCP proxy the test controls, put between the service and a real server.

    with FaultProxy("127.0.0.1", 5432) as proxy:   # listens on proxy.port
        proxy.cut()          # close every connection and refuse new ones (the port stops listening)
        proxy.blackhole()    # accept connections but forward nothing, either way
        proxy.latency(0.5)   # deliver every chunk half a second late, both ways
        proxy.restore()      # back to forwarding at once

It runs its own event loop in a daemon thread, so tests stay synchronous. Black-holed data is
held, not dropped: on `restore()` it flows again, as after a healed network partition.

Tests wait on what it observes instead of sleeping:

        proxy.wait_until(lambda p: p.held > 0, timeout, "an export held")

`upstream_open` counts the open connections to the upstream server, `sent_upstream` every chunk
read from a client (monotonic), `held` the chunks and connections a black hole is holding now.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.accepted = 0  # connections accepted, for tests that want to see reconnects
        self.upstream_open = 0
        self.sent_upstream = 0
        self.held = 0
        self._changed = threading.Condition()
        self._delay = 0.0
        self._flowing: asyncio.Event | None = None
        self._listener: socket.socket | None = None
        self._connections: set[asyncio.Task[None]] = set()  # the loop keeps tasks weakly
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # --- control, from the test's thread ----------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Close every connection and stop listening: new connections are refused."""
        self._call(self._cut())

    def blackhole(self) -> None:
        """Accept connections, forward nothing; what is held flows again on `restore()`."""
        self._call(self._set_flowing(False))

    def latency(self, seconds: float) -> None:
        """Deliver each chunk `seconds` late, in both directions (on top of any black hole)."""
        self._delay = seconds

    def restore(self) -> None:
        """Listen again if cut, forward what a black hole held, drop the added latency."""
        self._delay = 0.0
        self._call(self._restore())

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_until(
        self, condition: Callable[[FaultProxy], bool], timeout: float, what: str
    ) -> None:
        """Block until `condition(self)` holds; fail with `what` after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout=timeout):
                raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # --- the loop's side --------------------------------------------------------------------------

    def _count(self, name: str, change: int) -> None:
        with self._changed:
            setattr(self, name, getattr(self, name) + change)
            self._changed.notify_all()

    async def _unless_held(self) -> None:
        """Return once data may flow; counted in `held` while a black hole holds it."""
        assert self._flowing is not None
        if self._flowing.is_set():
            return
        self._count("held", 1)
        try:
            await self._flowing.wait()
        finally:
            self._count("held", -1)

    async def _listen(self) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        # Our own listening socket, not asyncio.Server: Python 3.11's Server leaks a connection
        # it accepted but had not yet wrapped when it is closed (`_attach` fails), and a cut
        # closes it at any moment.
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._loop.add_reader(self._listener, self._accept, self._listener)

    def _accept(self, listener: socket.socket) -> None:
        """A connection is waiting: accept it at once and serve it in a task of its own."""
        try:
            connection, _ = listener.accept()
        except OSError:  # gone again before it was accepted
            return
        self.accepted += 1
        task = self._loop.create_task(self._serve(connection))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _cut(self) -> None:
        if self._listener is not None:
            self._loop.remove_reader(self._listener)
            self._listener.close()
            self._listener = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server's host goes away
        self._writers.clear()

    async def _shutdown(self) -> None:
        """Close every connection and let every task end by itself: cancelled before it first
        ran, a task would leave the connection it was given open. After the cut, every task
        ends within one latency."""
        await self._cut()
        await self._set_flowing(True)  # nothing is held any more: held tasks see the cut
        current = asyncio.current_task()
        while tasks := asyncio.all_tasks() - {current}:  # a task may start another: wait again
            await asyncio.wait(tasks)

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _restore(self) -> None:
        await self._set_flowing(True)
        if self._listener is None:
            await self._listen()

    async def _serve(self, connection: socket.socket) -> None:
        try:
            client_r, client_w = await asyncio.open_connection(sock=connection)
        except OSError:
            connection.close()
            return
        if self._listener is None:  # cut since it was accepted
            self._drop(client_w)
            return
        self._writers.add(client_w)
        try:
            await self._unless_held()
            upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._drop(client_w)
            return
        if client_w not in self._writers:  # cut while connecting
            self._drop(upstream_w)
            return
        self._writers.add(upstream_w)
        self._count("upstream_open", 1)
        try:
            await asyncio.gather(
                self._pump(client_r, upstream_w, client_w, to_upstream=True),
                self._pump(upstream_r, client_w, upstream_w, to_upstream=False),
            )
        finally:
            self._count("upstream_open", -1)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: asyncio.StreamWriter,
        *,
        to_upstream: bool,
    ) -> None:
        """Copy reader -> writer; each chunk waits out the latency and any black hole."""
        flowing = self._flowing
        assert flowing is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            try:
                while True:
                    due, data = await queue.get()
                    if not data:
                        return
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    await self._unless_held()
                    writer.write(data)
                    await writer.drain()
            finally:
                self._drop(writer)
                self._drop(peer)

        delivery = asyncio.ensure_future(deliver())
        try:
            while True:
                await flowing.wait()
                data = await reader.read(CHUNK)
                if data and to_upstream:
                    self._count("sent_upstream", 1)
                await queue.put((time.monotonic() + self._delay, data))
                if not data:
                    break
            await delivery
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            delivery.cancel()
            self._drop(writer)
            self._drop(peer)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.transport.abort()
