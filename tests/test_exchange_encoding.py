"""The worker exchange's data: what live peers send (marshal) and what files hold (JSON) merge to
the same totals, and the totals are the sums of what each worker recorded."""

from __future__ import annotations

import json
import marshal

import pytest

from otel.export.workers import Snapshot, merge, merge_into, snapshot_of
from otel.metrics.aggregator import RequestAggregator

# (worker, method, endpoint, status, seconds): what each worker served.
REQUESTS = [
    *[(0, "GET", "/memos/{memo_id}", 200, 0.004)] * 3,
    *[(1, "GET", "/memos/{memo_id}", 200, 0.020)] * 2,
    (1, "GET", "/memos/{memo_id}", 404, 0.002),
    (2, "POST", "/memos/", 201, 0.300),
    (2, "GET", "/memos/{memo_id}", 200, 75.0),  # beyond the last bound (10 s): +Inf
]


def snapshots() -> list[Snapshot]:
    workers = [RequestAggregator() for _ in range(3)]
    for worker, method, endpoint, status, seconds in REQUESTS:
        workers[worker].record(method, endpoint, status, seconds)
    return [snapshot_of(w.entries(), []) for w in workers]


@pytest.mark.parametrize("wire", ["marshal", "json"])
def test_merged_totals_are_the_sums_of_what_each_worker_served(wire: str) -> None:
    dumps, loads = (marshal.dumps, marshal.loads) if wire == "marshal" else (json.dumps, json.loads)
    own, *peers = snapshots()
    entries, _ = merge(own, [loads(dumps(p)) for p in peers])
    by_pair = {(e.method, e.endpoint): e for e in entries}
    read = by_pair["GET", "/memos/{memo_id}"]
    assert read.statuses == {200: 6, 404: 1}
    assert read.count == 7
    assert read.sum == pytest.approx(3 * 0.004 + 2 * 0.020 + 0.002 + 75.0)
    assert read.buckets[-1] == 1  # the 75 s request
    create = by_pair["POST", "/memos/"]
    assert (create.statuses, create.count, create.sum) == ({201: 1}, 1, pytest.approx(0.3))


def test_both_wire_formats_merge_to_the_same_entries() -> None:
    own, *peers = snapshots()
    live, _ = merge(own, [marshal.loads(marshal.dumps(p)) for p in peers])
    files, _ = merge(own, [json.loads(json.dumps(p)) for p in peers])
    assert sorted(live, key=lambda e: e.endpoint) == sorted(files, key=lambda e: e.endpoint)


def test_a_peer_with_other_buckets_is_refused() -> None:
    own, peer = snapshots()[:2]
    peer["entries"][0][3] = peer["entries"][0][3][:-1]
    with pytest.raises(ValueError, match="buckets"):
        merge(own, [peer])


def test_own_entries_given_as_they_are_merge_as_their_snapshot_would() -> None:
    workers = [RequestAggregator() for _ in range(2)]
    for worker, method, endpoint, status, seconds in REQUESTS:
        workers[min(worker, 1)].record(method, endpoint, status, seconds)
    own, peer = (snapshot_of(w.entries(), []) for w in workers)
    as_snapshot, _ = merge(own, [peer])
    as_entries, _ = merge_into(workers[0].entries(), snapshot_of((), []), [peer])
    assert sorted(as_entries, key=lambda e: e.endpoint) == sorted(
        as_snapshot, key=lambda e: e.endpoint
    )
    assert sum(e.count for e in as_entries) == len(REQUESTS)
