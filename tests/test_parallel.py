"""Worker processes pinned to disjoint core sets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from archlab.parallel import cap_jobs, run_workers, split_cores, usable_cores


@pytest.mark.parametrize(
    ("n_jobs", "cores", "expected"),
    [
        (1, [0, 1], [{0, 1}]),
        (2, [0, 1], [{0}, {1}]),
        (3, list(range(8)), [{0, 1, 2}, {3, 4, 5}, {6, 7}]),
        (2, [9, 2, 5, 7], [{2, 5}, {7, 9}]),  # ids need not be contiguous or sorted
        (4, [0, 1, 2, 3], [{0}, {1}, {2}, {3}]),
    ],
)
def test_split_cores_is_even_disjoint_and_complete(
    n_jobs: int, cores: list[int], expected: list[set[int]]
) -> None:
    parts = split_cores(n_jobs, cores)
    assert parts == expected
    assert set().union(*parts) == set(cores) and sum(map(len, parts)) == len(cores)


@pytest.mark.parametrize("n_jobs", [0, 3])
def test_split_cores_needs_one_core_per_job(n_jobs: int) -> None:
    with pytest.raises(ValueError, match="cannot split 2 cores"):
        split_cores(n_jobs, [0, 1])


def test_cap_jobs_warns_beyond_the_cores(capsys: pytest.CaptureFixture) -> None:
    assert cap_jobs(8, 2) == 2
    assert "--jobs 8 > 2 usable cores; using 2" in capsys.readouterr().err
    assert cap_jobs(2, 4, n_tasks=1) == 1  # no idle workers
    assert cap_jobs(2, 4) == 2 and capsys.readouterr().err == ""


def _record_pinning(out: str) -> None:
    import torch

    Path(out, f"{os.getpid()}.json").write_text(
        json.dumps({"cores": sorted(os.sched_getaffinity(0)), "threads": torch.get_num_threads()})
    )


@pytest.mark.skipif(len(usable_cores()) < 2, reason="needs 2 cores")
def test_workers_are_pinned_to_their_own_cores(tmp_path: Path) -> None:
    polls = []
    codes = run_workers(2, _record_pinning, {"out": str(tmp_path)}, poll=lambda: polls.append(1))
    assert codes == [0, 0] and polls
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(seen) == 2
    a, b = (set(s["cores"]) for s in seen)
    assert not a & b and a | b <= set(usable_cores())
    assert all(s["threads"] == len(s["cores"]) for s in seen)


def test_one_job_runs_in_this_process(tmp_path: Path) -> None:
    assert run_workers(1, _record_pinning, {"out": str(tmp_path)}) == [0]
    assert [p.stem for p in tmp_path.glob("*.json")] == [str(os.getpid())]
