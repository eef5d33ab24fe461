"""SQL and Redis child spans: the same spans as the instrumentors' own under a sampled parent, and
under an unsampled one nothing at all (the SDK is not entered: its sampler is never asked).

Each case runs the same calls twice, once instrumented by the upstream instrumentor (the
oracle), once by `otel.traces.child_spans`, each with its own tracer provider, and compares every
exported field but the random ids and the clocks.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import sqlalchemy
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel.traces.child_spans import ChildSpans, follows_parent
from tests.test_server_span import described

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REQUEST_SPAN_ID = 0x00F067AA0BA902B7


class CountingSampler(ParentBased):
    """The default sampler, counting how often the SDK asks it (once per span it starts)."""

    def __init__(self) -> None:
        super().__init__(ALWAYS_ON)
        self.asked = 0

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.asked += 1
        return super().should_sample(*args, **kwargs)


class Pipeline:
    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.sampler = CountingSampler()
        self.provider = TracerProvider(sampler=self.sampler, resource=Resource({"k": "v"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))

    def spans(self) -> list[dict[str, Any]]:
        # SQLAlchemyInstrumentor also wraps Engine.connect process-wide for a "connect" span;
        # ours instruments the statements of one engine only, without that global patch.
        finished = self.memory.get_finished_spans()
        return [described(s) for s in finished if s.name != "connect"]


@contextmanager
def parent(sampled: bool | None) -> Iterator[None]:
    """The current span while the calls run: the request's, sampled or not (fixed ids), or none."""
    if sampled is None:
        yield
        return
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    with trace.use_span(NonRecordingSpan(SpanContext(TRACE_ID, REQUEST_SPAN_ID, False, flags))):
        yield


def run_sql(engine: sqlalchemy.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS memo (id INTEGER, title TEXT)"))
        conn.execute(sqlalchemy.text("INSERT INTO memo VALUES (:id, :t)"), {"id": 1, "t": "a"})
        conn.execute(sqlalchemy.text("/* c */ SELECT title FROM memo WHERE id = :id"), {"id": 1})
        # The dialect's other ways to execute: executemany, no parameters, insertmanyvalues.
        conn.execute(
            sqlalchemy.text("INSERT INTO memo VALUES (:id, :t)"), [{"id": 2, "t": "b"}] * 2
        )
        conn.execution_options(no_parameters=True).exec_driver_sql("SELECT count(*) FROM memo")
        memo = sqlalchemy.table("memo", sqlalchemy.column("id"), sqlalchemy.column("title"))
        rows = [{"id": 3, "title": "c"}, {"id": 4, "title": "d"}]
        conn.execute(sqlalchemy.insert(memo).returning(memo.c.id), rows).all()
        with pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(sqlalchemy.text("SELECT * FROM no_such_table"))


def sql_spans(tmp_path: Path, ours: bool, sampled: bool | None) -> Pipeline:
    pipeline = Pipeline()
    # The same path for both: the database name is in the span names and attributes.
    database = tmp_path / "memo.db"
    database.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    if ours:
        ChildSpans(pipeline.provider).instrument_sqlalchemy(engine)
        with parent(sampled):
            run_sql(engine)
        engine.dispose()
        return pipeline
    instrumentor = SQLAlchemyInstrumentor()
    # The installed SQLAlchemy is newer than the range the instrumentor declares; EngineTracer
    # works with it (as the service's use of it shows), so the range check is skipped.
    instrumentor.instrument(engine=engine, tracer_provider=pipeline.provider, skip_dep_check=True)
    try:
        with parent(sampled):
            run_sql(engine)
    finally:
        instrumentor.uninstrument()
        engine.dispose()
    return pipeline


@pytest.mark.parametrize("sampled", [True, None], ids=["sampled parent", "no parent"])
def test_sql_spans_are_the_instrumentors(tmp_path: Path, sampled: bool | None) -> None:
    sdk, ours = sql_spans(tmp_path, False, sampled), sql_spans(tmp_path, True, sampled)
    assert ours.spans() == sdk.spans()
    names = [s["name"] for s in sdk.spans()]
    assert {"CREATE", "INSERT", "SELECT"} <= {n.split()[0] for n in names}, names
    assert any(s["status"][0] == trace.StatusCode.ERROR for s in sdk.spans())


def test_sql_under_an_unsampled_parent_never_enters_the_sdk(tmp_path: Path) -> None:
    sdk, ours = sql_spans(tmp_path, False, False), sql_spans(tmp_path, True, False)
    assert sdk.spans() == ours.spans() == []
    assert sdk.sampler.asked >= 4  # the upstream instrumentation starts a span per statement
    assert ours.sampler.asked == 0


async def run_redis(client: redis.asyncio.Redis) -> None:
    await client.set("bench:key", "1", ex=60)
    await client.get("bench:key")
    await client.incr("bench:counter")
    # New to the server each run, so both runs see the same NOSCRIPT, SCRIPT LOAD, EVALSHA.
    script = client.register_script(f"-- {uuid.uuid4()}\nreturn redis.call('GET', KEYS[1])")
    await script(keys=["bench:key"])
    async with client.pipeline() as pipe:
        await pipe.set("bench:other", "2").get("bench:other").execute()
    with pytest.raises(redis.ResponseError):  # a command failing: the span records it
        await client.hincrby("bench:key", "field", 1)


def redis_spans(url: str, ours: bool, sampled: bool | None) -> Pipeline:
    pipeline = Pipeline()

    async def calls() -> None:
        client = redis.asyncio.Redis.from_url(url)
        if ours:
            ChildSpans(pipeline.provider).instrument_redis(client)
        else:
            RedisInstrumentor.instrument_client(client, tracer_provider=pipeline.provider)
        with parent(sampled):
            await run_redis(client)
        await client.aclose()

    asyncio.run(calls())
    return pipeline


@pytest.mark.redis
@pytest.mark.parametrize("sampled", [True, None], ids=["sampled parent", "no parent"])
def test_redis_spans_are_the_instrumentors(redis_url: str, sampled: bool | None) -> None:
    sdk, ours = redis_spans(redis_url, False, sampled), redis_spans(redis_url, True, sampled)
    assert ours.spans() == sdk.spans()
    names = [s["name"] for s in sdk.spans()]
    assert {"SET", "GET", "INCRBY", "EVALSHA", "SCRIPT LOAD", "SET GET"} <= set(names), names
    failed = [s for s in sdk.spans() if s["name"] == "HINCRBY"]
    assert failed and failed[0]["status"][0] == trace.StatusCode.ERROR, failed


@pytest.mark.redis
def test_redis_under_an_unsampled_parent_never_enters_the_sdk(redis_url: str) -> None:
    sdk, ours = redis_spans(redis_url, False, False), redis_spans(redis_url, True, False)
    assert sdk.spans() == ours.spans() == []
    assert sdk.sampler.asked >= 5
    assert ours.sampler.asked == 0


SAMPLERS: dict[str, Callable[[], Sampler]] = {
    "parentbased_always_on (the default)": lambda: ParentBased(ALWAYS_ON),
    "parentbased_traceidratio": lambda: ParentBased(TraceIdRatioBased(0.5)),
    "parentbased_always_off": lambda: ParentBased(ALWAYS_OFF),
    "always_off": lambda: ALWAYS_OFF,
    "always_on": lambda: ALWAYS_ON,
    "traceidratio": lambda: TraceIdRatioBased(0.5),
    "parent-based, but unsampled parents kept": lambda: ParentBased(
        ALWAYS_ON, local_parent_not_sampled=ALWAYS_ON
    ),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_children_are_skipped_only_where_the_sampler_would_drop_them(name: str) -> None:
    """The SDK sampler's own decisions are the oracle: skipping is right only if it never samples
    a child of an unsampled parent, local or remote."""
    sampler, ids = SAMPLERS[name](), random.Random(7)
    decisions = set()
    for _ in range(200):
        trace_id = ids.getrandbits(128)
        for remote in (False, True):
            context = SpanContext(trace_id, ids.getrandbits(64), remote, TraceFlags(0))
            at = trace.set_span_in_context(NonRecordingSpan(context), Context())
            decisions.add(sampler.should_sample(at, trace_id, "child").decision.is_sampled())
    assert follows_parent(sampler) is (decisions == {False})


def test_neither_the_engine_nor_its_pool_gets_a_listener_only_the_dialect(tmp_path: Path) -> None:
    """An engine listener would make every connection fire every connection event (begin,
    commit, each execute) sampled or not; the dialect's execute events are reached per statement.
    """
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    pool_before = {name: len(getattr(engine.pool.dispatch, name)) for name in POOL_EVENTS}
    ChildSpans(Pipeline().provider).instrument_sqlalchemy(engine)
    assert {name: len(getattr(engine.pool.dispatch, name)) for name in POOL_EVENTS} == pool_before
    assert not engine._has_events
    executes = ("do_execute", "do_executemany", "do_execute_no_params")
    listeners = {name: len(getattr(engine.dialect.dispatch, name)) for name in executes}
    assert listeners == dict.fromkeys(executes, 1)
    engine.dispose()


# The pool events EngineTracer listens to for its connection-usage counter.
POOL_EVENTS = ("connect", "close", "checkin", "checkout")


@pytest.mark.parametrize("sampled", [True, False], ids=["sampled parent", "unsampled parent"])
def test_execute_listeners_added_later_run_as_without_us(tmp_path: Path, sampled: bool) -> None:
    """A dialect execute listener of the application's sees every statement once, and one that
    runs the statement itself (returning True) still does, within the statement's span."""
    seen: list[str] = []

    def look(cursor: Any, statement: str, *rest: Any) -> bool:
        seen.append(statement)
        return False

    def run_inserts(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if not statement.startswith("INSERT"):
            return False
        cursor.execute(statement, parameters)
        seen.append("ran " + statement)
        return True

    def statements(ours: bool) -> tuple[list[str], int, list[str]]:
        seen.clear()
        pipeline = Pipeline()
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / f'{ours}.db'}")
        if ours:
            ChildSpans(pipeline.provider).instrument_sqlalchemy(engine)
        for name in ("do_execute", "do_executemany", "do_execute_no_params"):
            sqlalchemy.event.listen(engine, name, look)
        sqlalchemy.event.listen(engine, "do_execute", run_inserts)
        with parent(sampled), engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE memo (id INTEGER)"))
            conn.execute(sqlalchemy.text("INSERT INTO memo VALUES (:id)"), {"id": 1})
            conn.execute(sqlalchemy.text("INSERT INTO memo VALUES (:id)"), [{"id": 2}, {"id": 3}])
            conn.execution_options(no_parameters=True).exec_driver_sql("SELECT 1")
            rows = conn.execute(sqlalchemy.text("SELECT count(*) FROM memo")).scalar_one()
        engine.dispose()
        return list(seen), rows, [s["name"].split()[0] for s in pipeline.spans()]

    plain, plain_rows, _ = statements(ours=False)
    ours, rows, spans = statements(ours=True)
    assert (ours, rows) == (plain, plain_rows) == (plain, 3)
    assert any(s.startswith("ran INSERT") for s in plain)
    expected = ["CREATE", "INSERT", "INSERT", "SELECT", "SELECT"] if sampled else []
    assert spans == expected
