"""Shared fixtures: no downloads in tests; real data and a real PostgreSQL server (CI: required)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def real_fashion_mnist() -> None:
    """The real Fashion-MNIST files; skipped where absent, except in CI (ARCHLAB_REQUIRE_DATA=1)."""
    if REAL_FMNIST.is_dir() or "ARCHLAB_DATA" in os.environ:
        return
    if os.environ.get("ARCHLAB_REQUIRE_DATA") == "1":
        pytest.fail(
            "the real Fashion-MNIST files are required here: apt-get install dataset-fashion-mnist"
        )
    pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


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


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict:
    """PNG file name -> the matplotlib Figure saved there (through ``plots.save_titled``)."""
    import archlab.report.plots as plots

    seen = {}
    real = plots.save_titled

    def keep(fig, path, title, caption):
        seen[path.name] = fig
        return real(fig, path, title, caption)

    monkeypatch.setattr(plots, "save_titled", keep)
    return seen
