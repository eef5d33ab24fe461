"""FaultProxy itself: closing it leaves no socket open, whatever its loop was in the middle of.

A leaked socket shows as a ResourceWarning when it is collected, which the suite's
`filterwarnings = error` turns into a failure of whichever test is running then.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings

from tests.faults.proxy import FaultProxy


def test_closing_right_after_a_connection_arrives_leaks_no_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        proxy = FaultProxy("127.0.0.1", upstream.getsockname()[1]).start()
        # Hold the proxy's loop still, so that the connection waits in the listen backlog and
        # the loop sees the shutdown and the new connection in the same turn, shutdown first.
        paused, release = threading.Event(), threading.Event()

        def pause() -> None:
            paused.set()
            release.wait()

        proxy._loop.call_soon_threadsafe(pause)
        assert paused.wait(timeout=10)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            shutdown = asyncio.run_coroutine_threadsafe(proxy._shutdown(), proxy._loop)
            release.set()
            shutdown.result(timeout=10)
            proxy.close()
            assert client.recv(1) == b""  # the proxy closed its end
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
