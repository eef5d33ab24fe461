"""Reading `/metrics` in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]

# The runtime series of the contract, named as prometheus_client names them.
RUNTIME_SERIES = (
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
    "python_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)


# The HELP texts of the original prometheus_client service, kept on every export path.
ORIGINAL_HELP = {
    "fastapi_requests_total": "Total number of requests",
    "fastapi_request_duration_seconds": "Request duration in seconds",
    "memo_total": "Total number of memos in the database",
    "fastapi_active_connections": "Number of active database connections",
}


class Scrape:
    """One parsed scrape: samples by name and label set."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, Labels], float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (sample, labels) in self.samples if sample == name]

    def label_values(self, name: str, label: str) -> set[str]:
        return {labels[label] for labels in self.series(name) if label in labels}


def scrape(client: Any, headers: Mapping[str, str] | None = None) -> Scrape:
    response = client.get("/metrics", headers=dict(headers or {}))
    assert response.status_code == 200, response.text
    return Scrape(response.text)
