"""The worker exchange's interleavings, step by step: a scrape while a worker stops, a reused pid,
a thousand restarts, and which processes count as workers."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.core import CounterMetricFamily

from otel.export import workers
from otel.export.workers import Snapshot, WorkerExchange, merge, snapshot_of
from tests.servers import Processes, free_port, wait_for
from tests.test_workers import worker_pids

EVENT_TIMEOUT = 30.0
NOTHING: Snapshot = {"entries": [], "families": []}


def counting(jobs: int) -> Callable[[], Snapshot]:
    """The snapshot of a worker that has counted `jobs`."""
    snapshot = snapshot_of([], [CounterMetricFamily("jobs", "Jobs", value=jobs)])
    return lambda: snapshot


def total(own: Snapshot, peers: list[Snapshot]) -> float:
    _, families = merge(own, peers)
    return sum(s.value for f in families if f.name == "jobs" for s in f.samples)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "workers"


@pytest.fixture
def scraper(directory: Path) -> Iterator[WorkerExchange]:
    exchange = WorkerExchange(directory, counting(0))
    yield exchange
    exchange.close()


def test_a_scrape_while_a_worker_stops_serving_still_counts_it(
    directory: Path, scraper: WorkerExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopping = WorkerExchange(directory, counting(5))
    results: list[float] = []
    scrape = threading.Thread(
        target=lambda: results.append(total(NOTHING, scraper.peer_snapshots()))
    )
    waiting_for_lock = threading.Event()
    real_flock = fcntl.flock

    def flock(file: Any, mode: int) -> None:
        if threading.current_thread() is scrape and mode == fcntl.LOCK_SH:
            waiting_for_lock.set()
        real_flock(file, mode)

    real_stop = WorkerExchange._stop_serving

    def stop_then_scrape(self: WorkerExchange) -> None:
        real_stop(self)
        # The old order's hole: the socket is gone here. The final counts must already be out.
        published = [p.name for p in directory.glob("*.final.json")]
        assert published == [f"{self.worker_id}.final.json"]
        scrape.start()
        assert waiting_for_lock.wait(EVENT_TIMEOUT), "the scrape never asked for the lock"

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(WorkerExchange, "_stop_serving", stop_then_scrape)
    stopping.close()
    scrape.join(EVENT_TIMEOUT)
    assert results == [5]


def test_a_scrape_before_the_stop_counts_the_live_worker_once(
    directory: Path, scraper: WorkerExchange
) -> None:
    stopping = WorkerExchange(directory, counting(5))
    assert total(NOTHING, scraper.peer_snapshots()) == 5
    stopping.close()
    assert total(NOTHING, scraper.peer_snapshots()) == 5


def test_a_reused_pid_keeps_both_workers_counts(directory: Path, scraper: WorkerExchange) -> None:
    first = WorkerExchange(directory, counting(3))
    first.close()
    second = WorkerExchange(directory, counting(4))  # same process, so the same pid
    assert first.worker_id.split("-")[0] == second.worker_id.split("-")[0] == str(os.getpid())
    second.close()
    assert total(NOTHING, scraper.peer_snapshots()) == 7


def test_a_final_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "1.final.json"
    workers._write_new(path, counting(1)())
    with pytest.raises(FileExistsError):
        workers._write_new(path, counting(2)())
    assert total(NOTHING, [workers._read_final(path)]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["1.final.json"]  # no temporary left


def test_a_thousand_restarts_leave_one_file_to_read(
    directory: Path, scraper: WorkerExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "SERVER_POLL_SECONDS", 0.001)
    read: list[Path] = []
    real_read = workers._read_final
    monkeypatch.setattr(workers, "_read_final", lambda path: read.append(path) or real_read(path))
    shapes = []
    for restart in range(1, 1001):
        WorkerExchange(directory, counting(1)).close()
        if restart in (1, 10, 100, 1000):
            read.clear()
            assert total(NOTHING, scraper.peer_snapshots()) == restart
            assert [p.name for p in read] == ["retired.json"]
            retired = workers._read_final(directory / "retired.json")
            shapes.append([(f["name"], len(f["samples"])) for f in retired["families"]])
    assert shapes == [[("jobs", 1)]] * 4  # one series however many workers came and went
    assert {p.name for p in directory.iterdir()} == {
        "exchange.lock",
        "retired.json",
        f"{scraper.worker_id}.sock",
    }


def test_a_final_file_left_by_a_crash_is_counted_once(
    directory: Path, scraper: WorkerExchange
) -> None:
    WorkerExchange(directory, counting(2)).close()
    workers._write_new(directory / "crashed.final.json", counting(3)())
    assert total(NOTHING, scraper.peer_snapshots()) == 5
    WorkerExchange(directory, counting(1)).close()  # folds the crashed one in too
    assert not list(directory.glob("*.final.json"))
    assert total(NOTHING, scraper.peer_snapshots()) == 6


def _report_master(queue: Any) -> None:
    queue.put(workers._master_pid())


def test_a_plain_multiprocessing_child_is_not_a_worker() -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_report_master, args=(queue,))
    child.start()
    assert queue.get(timeout=EVENT_TIMEOUT) is None
    child.join(EVENT_TIMEOUT)


def test_uvicorn_reload_runs_no_exchange(processes: Processes, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "service.main:app", "--reload", "--port", str(port)]
    argv += ["--reload-dir", str(tmp_path)]  # watch nothing the tests write to
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}"}
    processes.start("reload", argv, cwd=Path(__file__).parent.parent, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "/health")
    assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200
    supervisor = processes.running["reload"].pid
    assert len(worker_pids(supervisor)) == 1, "the reloader runs the server in a spawned child"
    assert not list(Path(tempfile.gettempdir()).glob(f"otel-fastapi-workers-{supervisor}-*"))
