"""The OTLP Summary point, which the SDK's data model lacks.

Only bridged prometheus_client summaries produce it; the OTLP exporters in
`otel/export/otlp_bridged.py` encode it, remote write and the console exporter read it as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SummaryDataPoint:
    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    sum: float
    quantile_values: tuple[tuple[float, float], ...] = ()

    def to_json(self, indent: int | None = 4) -> str:
        return json.dumps(
            {
                "attributes": self.attributes,
                "start_time_unix_nano": self.start_time_unix_nano,
                "time_unix_nano": self.time_unix_nano,
                "count": self.count,
                "sum": self.sum,
                "quantile_values": [list(q) for q in self.quantile_values],
            },
            indent=indent,
        )


@dataclass(frozen=True)
class Summary:
    data_points: list[SummaryDataPoint] = field(default_factory=list)

    def to_json(self, indent: int | None = 4) -> str:
        points = [json.loads(p.to_json(indent=indent)) for p in self.data_points]
        return json.dumps({"data_points": points}, indent=indent)
