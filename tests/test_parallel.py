"""Worker processes pinned to disjoint core sets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def _sleep_forever(out: str) -> None:
    Path(out, f"{os.getpid()}.pid").write_text("")
    while True:
        time.sleep(0.2)


@pytest.mark.skipif(len(usable_cores()) < 2, reason="needs 2 cores")
def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed parent (no signal reaches the workers) leaves no worker running."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from archlab.parallel import run_workers;"
        "from tests.test_parallel import _sleep_forever;"
        "run_workers(2, _sleep_forever, {'out': sys.argv[1]})"
    )
    root = str(Path(__file__).resolve().parents[1])
    # its own session: the kill below must not reach the workers through the process group
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path), root], start_new_session=True
    )
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline, "workers never started"
        assert parent.poll() is None, "parent exited early"
        time.sleep(0.1)
    workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60  # a bound, not a timing: the watch checks every second
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived their parent"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))
