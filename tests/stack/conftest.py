"""The monitoring stack as local processes, started once per session for every test that asks.

Tests that stop a part use `Stack.stopped(...)`, which restarts it; `healthy_stack` restarts
whatever an earlier test left stopped, so the modules can run in any order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stack_support import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
def healthy_stack(stack: Stack) -> Stack:
    stack.ensure_running()
    return stack
