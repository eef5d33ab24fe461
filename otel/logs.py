"""JSON log lines that carry the trace and span of the request that wrote them."""

from __future__ import annotations

import logging

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn's loggers keep their own handlers; they get the same format.
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (hex, as trace backends show them) inside a span."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def configure_json_logging(level: str = "INFO") -> None:
    """Every handler of the root and uvicorn loggers writes JSON with the trace context."""
    formatter = JsonFormatter(
        FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI-coloured copy
    )
    context = TraceContextFilter()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level.upper())
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
            if context not in handler.filters and not _has_context_filter(handler):
                handler.addFilter(context)


def _has_context_filter(handler: logging.Handler) -> bool:
    return any(isinstance(f, TraceContextFilter) for f in handler.filters)
