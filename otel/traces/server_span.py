"""The middleware's server span: a light `opentelemetry.trace.Span` fed to the SDK's pipeline.

An SDK span costs about 35 us per request here (locks, attribute validation on every write, a
copy at the end) and leaves many objects for the garbage collector. The server span is the
one span every request has, and its attributes are plain strings and numbers the middleware
builds itself, so it is kept in a plain dict. Everything else is the SDK's: the provider's
sampler, id generator, resource and span limits decide, and its span processors (batching,
exporters, anything added) receive it as a `ReadableSpan`, as they receive every other span.
Anything a handler adds to the current span (attributes of other types, events, links) goes
through the SDK's own `BoundedAttributes`/`BoundedList`, so limits apply as they would on an SDK
span. `tests/test_server_span.py` checks the exported spans match the SDK tracer's.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping
from random import getrandbits
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from otel.traces.sampling import root_decision

log = logging.getLogger(__name__)

_UNSET = Status(StatusCode.UNSET)
# Guards the rare switches to the SDK's containers, should handler threads write concurrently.
_SWITCHING = threading.Lock()
_PLAIN_TYPES = frozenset((str, int, float, bool))


class ServerTracer:
    """Starts server spans as the SDK's tracer would, for one provider's pipeline."""

    def __init__(
        self,
        *,
        sampler: Sampler,
        id_generator: IdGenerator,
        resource: Callable[[], Resource],
        processor: SpanProcessor,
        limits: SpanLimits,
        scope: InstrumentationScope,
    ) -> None:
        """`resource` reads the provider's; it is read again in a forked child, where the SDK
        gives its tracers the child's resource (a new `service.instance.id`)."""
        self.sampler = sampler
        self.id_generator = id_generator
        self._resource_of = resource
        self.resource = resource()
        self.processor = processor
        self.limits = limits
        self.scope = scope
        self._root_decision = root_decision(sampler)
        # The SDK's own generator (not a subclass): random ids, drawn as it draws them.
        self._sdk_ids = type(id_generator) is RandomIdGenerator
        if hasattr(os, "register_at_fork"):
            # Registered after the provider's own handler, so it runs after it in the child.
            weak = weakref.WeakMethod(self._reread_resource)

            def after_fork_in_child() -> None:
                method = weak()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=after_fork_in_child)

    def _reread_resource(self) -> None:
        self.resource = self._resource_of()

    def start_server_span(
        self, name: str, context: Context | None, attributes: Callable[[], Mapping[str, Any]]
    ) -> trace.Span:
        """`start_span` for a request: `attributes()` is called only if the span will record.

        A new trace under one of the SDK's samplers is decided here by its id (see
        `otel.traces.sampling`); a dropped request then costs two ids and a `SpanContext`.
        """
        # An empty context (a request without trace headers) has no parent to look up.
        empty = context is not None and not context
        parent = None if empty else trace.get_current_span(context).get_span_context()
        decide = self._root_decision
        if decide is None or (parent is not None and parent.is_valid):
            return self._start(name, context, SpanKind.SERVER, attributes(), parent)
        ids = self.id_generator
        if self._sdk_ids:  # its ids without its method calls; a zero (invalid) id: ask it
            trace_id = getrandbits(128) or ids.generate_trace_id()
            span_id = getrandbits(64) or ids.generate_span_id()
            flags = _ROOT_FLAGS[decide(trace_id)]
        else:
            trace_id = ids.generate_trace_id()
            span_id = ids.generate_span_id()
            flags = _flags(decide(trace_id), ids.is_trace_id_random())
        span_context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        if not flags.sampled:
            return trace.NonRecordingSpan(span_context)
        return self._open(name, context, span_context, None, SpanKind.SERVER, attributes())

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.SERVER,
        attributes: Mapping[str, Any] | None = None,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        return self._start(name, context, kind, attributes, parent)

    def _start(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        parent: SpanContext | None,
    ) -> trace.Span:
        """As the SDK's tracer starts a span: the sampler decides."""
        if parent is not None and parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            parent = None
            trace_id = self.id_generator.generate_trace_id()
            random_id = self.id_generator.is_trace_id_random()
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes)
        sampled = result.decision.is_sampled()  # type: ignore[no-untyped-call]
        span_context = self._span_context(trace_id, random_id, sampled, result.trace_state)
        if not result.decision.is_recording():  # type: ignore[no-untyped-call]
            return trace.NonRecordingSpan(span_context)
        return self._open(name, context, span_context, parent, kind, result.attributes)

    def _span_context(
        self, trace_id: int, random_id: bool, sampled: bool, trace_state: TraceState | None
    ) -> SpanContext:
        return SpanContext(
            trace_id,
            self.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=_flags(sampled, random_id),
            trace_state=trace_state,
        )

    def _open(
        self,
        name: str,
        context: Context | None,
        span_context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
    ) -> ServerSpan:
        """A recording span, announced to the processors."""
        span = ServerSpan(self, name, span_context, parent, kind, attributes)
        self.processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span


class ServerSpan(trace.Span):
    """A recording span whose plain attributes live in a dict until it ends."""

    def __init__(
        self,
        tracer: ServerTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes: dict[str, Any] | BoundedAttributes = {}
        self._events: BoundedList[Event] | None = None
        self._links: BoundedList[Link] | None = None
        self._status = _UNSET
        self._start_time = time_ns()
        self._end_time: int | None = None
        if attributes:
            if self._all_plain(attributes):
                self._attributes = dict(attributes)
            else:
                self._set(attributes)

    # What processors may read while the span is open, as on an SDK span.
    name = property(lambda self: self._name)
    context = property(lambda self: self._context)
    parent = property(lambda self: self._parent)
    kind = property(lambda self: self._kind)
    start_time = property(lambda self: self._start_time)
    resource = property(lambda self: self._tracer.resource)
    instrumentation_scope = property(lambda self: self._tracer.scope)
    attributes = property(lambda self: MappingProxyType(self._attributes))

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self._end_time is not None:
            self._ended("set an attribute")
            return
        self._put(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._ended("set attributes"):
            return
        self._set(attributes)

    def update_name(self, name: str) -> None:
        if self._end_time is not None:
            self._ended("rename")
            return
        self._name = name

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if self._ended("add an event"):
            return
        limits = self._tracer.limits
        event = Event(name, _frozen(limits.max_event_attributes, attributes, limits), timestamp)
        self._bounded_list("_events", limits.max_events).append(event)

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        if self._ended("add a link") or not _valid_link(context, attributes):
            return
        limits = self._tracer.limits
        link = Link(context, _frozen(limits.max_link_attributes, attributes, limits))
        self._bounded_list("_links", limits.max_links).append(link)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK: OK is final, UNSET is ignored, a description only comes with a code.
        if self._ended("set the status") or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        cls = type(exception)
        module = cls.__module__
        event = {
            "exception.type": f"{module}.{cls.__qualname__}"
            if module and module != "builtins"
            else cls.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended("end"):
            return
        self._end_time = end_time if end_time is not None else time_ns()
        tracer = self._tracer
        tracer.processor.on_end(
            ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=tracer.resource,
                attributes=self._attributes,
                events=() if self._events is None else self._events,
                links=() if self._links is None else self._links,
                kind=self._kind,
                status=self._status,
                start_time=self._start_time,
                end_time=self._end_time,
                instrumentation_scope=tracer.scope,
            )
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """As an SDK span's: an exception leaving `with span:` is recorded and sets the error."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def _ended(self, what: str) -> bool:
        if self._end_time is None:
            return False
        log.warning("cannot %s: the span has ended", what)
        return True

    def _set(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self._put(key, value)

    def _put(self, key: str, value: Any) -> None:
        attributes, limits = self._attributes, self._tracer.limits
        # Whether the SDK's validation would keep this pair as it is (inline: on every request).
        kind, length = value.__class__, limits.max_span_attribute_length
        plain = kind in _PLAIN_TYPES and key.__class__ is str and key != ""
        if plain and (length is None or kind is not str or len(value) <= length):
            maximum = limits.max_span_attributes  # None: no limit
            if attributes.__class__ is dict and (
                maximum is None or len(attributes) < maximum or key in attributes
            ):
                attributes[key] = value
                if self._attributes is attributes:
                    return
                # Another thread moved the attributes to the SDK's container meanwhile.
        self._bounded()[key] = value

    def _all_plain(self, attributes: Mapping[str, Any]) -> bool:
        """`_plain` for every pair, and within the count limit; one loop, on every request."""
        limits = self._tracer.limits
        maximum, length = limits.max_span_attributes, limits.max_span_attribute_length
        if maximum is not None and len(attributes) > maximum:
            return False
        for key, value in attributes.items():
            kind = value.__class__
            if kind not in _PLAIN_TYPES or key.__class__ is not str or not key:
                return False
            if length is not None and kind is str and len(value) > length:
                return False
        return True

    def _bounded(self) -> BoundedAttributes:
        """From now on, the SDK's container validates and bounds every attribute."""
        with _SWITCHING:
            if not isinstance(self._attributes, BoundedAttributes):
                limits = self._tracer.limits
                self._attributes = BoundedAttributes(
                    limits.max_span_attributes,
                    self._attributes,
                    immutable=False,
                    max_value_len=limits.max_span_attribute_length,
                )
            return self._attributes

    def _bounded_list(self, name: str, maxlen: int | None) -> BoundedList[Any]:
        """The span's events or links, created on first use."""
        with _SWITCHING:
            found: BoundedList[Any] | None = getattr(self, name)
            if found is None:
                found = BoundedList(maxlen)
                setattr(self, name, found)
            return found


def _flags(sampled: bool, random_id: bool) -> TraceFlags:
    flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
    if random_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    return TraceFlags(flags)


# A new trace's flags with the SDK's generator, by whether it is sampled.
_ROOT_FLAGS = {sampled: _flags(sampled, random_id=True) for sampled in (False, True)}


def _frozen(
    maxlen: int | None, attributes: Mapping[str, Any] | None, limits: SpanLimits
) -> BoundedAttributes:
    """An event's or link's attributes, validated and bounded as the SDK does."""
    return BoundedAttributes(
        maxlen, attributes, immutable=True, max_value_len=limits.max_attribute_length
    )


def _valid_link(context: SpanContext, attributes: Mapping[str, Any] | None) -> bool:
    return bool(context and (context.is_valid or attributes or context.trace_state))
