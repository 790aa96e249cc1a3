"""Shared fixtures: never download in tests; a real PostgreSQL server when one can start."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# tests must never reach the network for data (archlab.train.sources honours this)
os.environ.setdefault("ARCHLAB_NO_DOWNLOAD", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread: tiny nets gain nothing from more, and OpenMP on busy cores collapses."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server; skipped where none starts, except in CI."""
    from tests.pgserver import postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except Exception as e:  # no binaries, no permissions: a developer machine without postgres
        if os.environ.get("ARCHLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but did not start: {e}")
        pytest.skip(f"no PostgreSQL server could be started: {e}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
