"""Child spans for SQL statements and Redis commands, free in a request that is not sampled.

The spans are the instrumentations' own (opentelemetry-instrumentation-sqlalchemy and -redis),
with tracers resolved once, under each instrumentation's own scope, whose recording spans are
the light ones of `otel.traces.light_tracer`. What is ours: when the
current span is not sampled and the sampler follows its parent, every child would be a
non-recording span, so the instrumentation is not entered at all: no attributes are built, the
sampler is not asked, no span object is made and nothing reaches the span processors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
)

from otel.traces.light_tracer import LightTracerProvider

SQLALCHEMY_SCOPE = "opentelemetry.instrumentation.sqlalchemy"


def follows_parent(sampler: Sampler) -> bool:
    """Whether an unsampled parent always means unsampled children under `sampler`.

    True for the parent-based samplers OTEL_TRACES_SAMPLER names (the default among them), whose
    rules for unsampled parents are left at always_off, and for always_off itself.
    """
    if isinstance(sampler, ParentBased):
        rules = ("_local_parent_not_sampled", "_remote_parent_not_sampled")
        return all(getattr(sampler, rule, None) is ALWAYS_OFF for rule in rules)
    return sampler is ALWAYS_OFF


class ChildSpans:
    """Instruments an engine or a Redis client for one tracer provider."""

    def __init__(self, provider: TracerProvider) -> None:
        self._follows_parent = follows_parent(provider.sampler)
        self._tracers = LightTracerProvider(provider)
        self._sql_tracer: trace.Tracer | None = None

    def wanted(self) -> bool:
        """False when the current span is unsampled and its children would be too."""
        context = trace.get_current_span().get_span_context()
        return context.trace_flags.sampled or not context.is_valid or not self._follows_parent

    def instrument_sqlalchemy(self, engine: Any) -> None:
        """Spans for the statements of `engine` (an Engine, or an AsyncEngine's sync_engine)."""
        engine_spans = _engine_spans_class()
        # The instrumentor is a process-wide singleton; an EngineTracer serves one engine only,
        # so two apps in one process keep their own providers. Pool usage is measured already.
        usage = NoOpMeter(SQLALCHEMY_SCOPE).create_up_down_counter("db.client.connections.usage")
        engine_spans(self.sql_tracer, getattr(engine, "sync_engine", engine), usage, self.wanted)

    @property
    def sql_tracer(self) -> trace.Tracer:
        """The tracer SQLAlchemyInstrumentor would use: its name, version and schema URL."""
        if self._sql_tracer is None:
            from opentelemetry.instrumentation._semconv import (
                _get_schema_url_for_signal_types,
                _OpenTelemetrySemanticConventionStability,
                _OpenTelemetryStabilitySignalType,
            )
            from opentelemetry.instrumentation.sqlalchemy.version import __version__

            _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
            signals = [
                _OpenTelemetryStabilitySignalType.DATABASE,
                _OpenTelemetryStabilitySignalType.HTTP,
            ]
            self._sql_tracer = self._tracers.get_tracer(
                SQLALCHEMY_SCOPE, __version__, _get_schema_url_for_signal_types(signals)
            )
        return self._sql_tracer

    def instrument_redis(self, client: Any) -> None:
        """Spans for the commands (and pipelines) of this Redis client only."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self._tracers)
        client.execute_command = _when_wanted(client.execute_command, self.wanted)
        client.pipeline = _when_wanted(client.pipeline, self.wanted)


def _when_wanted(traced: Any, wanted: Callable[[], bool]) -> Callable[..., Any]:
    """The instrumented method while spans are wanted; the method it wraps otherwise."""
    plain = traced.__wrapped__

    def call(*args: Any, **kwargs: Any) -> Any:
        return (traced if wanted() else plain)(*args, **kwargs)

    return call


# The statement hooks EngineTracer registers on its engine; its pool hooks fed a no-op counter.
_STATEMENT_HOOKS = ("before_cursor_execute", "after_cursor_execute", "handle_error")


@dataclass(frozen=True)
class _Failure:
    """What EngineTracer's handle_error hook reads of SQLAlchemy's ExceptionContext."""

    execution_context: Any
    original_exception: BaseException


def _engine_spans_class() -> type:
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    class EngineSpans(EngineTracer):
        """EngineTracer whose statement hooks run within the dialect's execute events, and only
        when the statement's span is wanted.

        On the engine, as EngineTracer registers them, the hooks would make every connection
        join the engine's event dispatch and fire each of its events (begin, commit, before and
        after every execute) whether the request is sampled or not. A dialect's execute event
        is one listener, reached at the statement only.
        """

        def __init__(
            self, tracer: trace.Tracer, engine: Any, usage: Any, wanted: Callable[[], bool]
        ) -> None:
            self._wanted = wanted
            self._hooks: dict[str, Callable[..., Any]] = {}
            super().__init__(tracer, engine, usage)  # type: ignore[no-untyped-call]
            _on_execution(engine, self._execute)

        def _register_event_listener(  # type: ignore[override]
            self, target: Any, identifier: str, func: Callable[..., Any], *args: Any, **kw: Any
        ) -> None:
            if identifier in _STATEMENT_HOOKS:
                self._hooks[identifier] = func

        def _execute(
            self,
            execute: Callable[..., None],
            cursor: Any,
            statement: str,
            parameters: Any,
            context: Any,
        ) -> bool:
            """True when the statement ran here, within its span; False leaves it to SQLAlchemy."""
            if context is None or not self._wanted():
                return False
            before, after, failed = (self._hooks[name] for name in _STATEMENT_HOOKS)
            connection, many = context.root_connection, context.executemany
            statement, parameters = before(connection, cursor, statement, parameters, context, many)
            try:
                execute(cursor, statement, parameters, context)
            except BaseException as error:
                failed(_Failure(context, error))
                raise
            after(connection, cursor, statement, parameters, context, many)
            return True

    return EngineSpans


def _on_execution(engine: Any, execute: Callable[..., bool]) -> None:
    """Routes the dialect's three ways of executing a statement through `execute`.

    Once a statement is ours to run, it runs as SQLAlchemy would have gone on: through the
    execute listeners added after ours (one may run it itself), else the dialect.
    """
    from sqlalchemy import event

    dialect = engine.dialect

    def route(name: str) -> None:  # do_execute and do_executemany: the same arguments
        def ours(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            return execute(run, cursor, statement, parameters, context)

        def run(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
            args = (cursor, statement, parameters, context)
            if not _later_listener_ran(getattr(dialect.dispatch, name), ours, *args):
                getattr(dialect, name)(*args)

        event.listen(engine, name, ours)

    def no_parameters(cursor: Any, statement: str, context: Any) -> bool:
        return execute(run_no_parameters, cursor, statement, (), context)

    def run_no_parameters(cursor: Any, statement: str, _: Any, context: Any) -> None:
        listeners = dialect.dispatch.do_execute_no_params
        if not _later_listener_ran(listeners, no_parameters, cursor, statement, context):
            dialect.do_execute_no_params(cursor, statement, context)

    route("do_execute")
    route("do_executemany")
    event.listen(engine, "do_execute_no_params", no_parameters)


def _later_listener_ran(listeners: Any, ours: Callable[..., bool], *args: Any) -> bool:
    """Calls the listeners after `ours` in turn, as SQLAlchemy would have; True once one ran it."""
    after_ours = False
    for listener in listeners:
        if after_ours and listener(*args):
            return True
        after_ours = after_ours or listener is ours
    return False
