"""Tests for archlab.bench and its report: a --quick run end to end, the paired loops, targets.

No timing assertions: the speed targets are checked by `make bench`, never here.
"""

import copy
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archlab import bench
from archlab.arch.spec import ArchSpec
from archlab.cli import main
from archlab.report import bench as bench_report
from archlab.report.doc import md_text
from archlab.train.data import load_dataset
from archlab.train.profile import TOP_OPS
from archlab.train.reference import baseline_run

Check = Callable[[Any], bool]


def integer(lo: int, hi: int) -> Check:
    """An int (not a bool) in [lo, hi]."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def number(lo: float, hi: float) -> Check:
    """A finite real in [lo, hi]: NaN, infinities, strings and None fail."""
    real = (int, float)
    return lambda v: (
        isinstance(v, real) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    )


def positive(hi: float) -> Check:
    """A finite real in (0, hi]: a rate, a duration or a ratio that was measured."""
    return lambda v: number(0, hi)(v) and v > 0


def each(check: Check, *, n: int | None = None) -> Check:
    """A non-empty list (of n items if given) whose every item passes ``check``."""
    return lambda v: (
        isinstance(v, list) and len(v) > 0 and (n is None or len(v) == n) and all(map(check, v))
    )


def text(*, empty: bool = False) -> Check:
    return lambda v: isinstance(v, str) and (empty or v.strip() != "")


def one_of(*values: object) -> Check:
    return lambda v: v in values


def flag(v: object) -> bool:
    return isinstance(v, bool)


PERCENT = number(0, 100)
RATE = positive(1e7)  # images/s: positive and finite; 10 M/s is far past any CPU or GPU here
GMACS = positive(1e6)  # GMAC/s: under 1 PMAC/s
SECONDS = positive(3600)  # the quick run takes seconds; an hour means a broken clock

# every field bench.json must hold, as dotted paths ("*" = each device), with what it must be
FIELDS: dict[str, Check] = {
    "version": one_of(1),
    "settings.seeds": integer(1, 100),
    "settings.steps": integer(1, 100_000),
    "settings.batch_size": integer(1, 1 << 16),
    "machine.cpu_model": text(),
    "machine.usable_cores": integer(1, 4096),
    "machine.torch": text(),
    "machine.bf16_native": flag,
    "machine.torch_threads_used": integer(1, 4096),
    "machine.cuda": lambda v: v is None or text()(v),
    "data.dataset": one_of("synthetic", "fashion-mnist"),
    "data.real": flag,
    "data.note": text(empty=True),
    "model.macs": integer(10**5, 10**10),  # the mini: ~40 M
    "model.params": integer(10**3, 10**9),
    "devices.*.peak.peak_gmacs": GMACS,
    "devices.*.peak.fp32_gmacs": GMACS,
    "devices.*.peak.dtype": one_of("bf16", "fp32"),
    "devices.*.peak.threads": integer(1, 4096),
    "devices.*.baseline.images_per_s": RATE,
    "devices.*.baseline.test_top1": each(PERCENT),
    "devices.*.baseline.test_top1_mean": PERCENT,
    "devices.*.archlab.images_per_s": RATE,
    "devices.*.archlab.test_top1": each(PERCENT),
    "devices.*.archlab.test_top1_mean": PERCENT,
    "devices.*.archlab_throughput.per_epoch_images_per_s": each(RATE),
    "devices.*.profile.top_ops": each(lambda op: isinstance(op, dict) and text()(op.get("op"))),
    "devices.*.profile.category_percent": lambda v: (
        isinstance(v, dict) and len(v) > 0 and all(map(PERCENT, v.values()))
    ),
    "devices.*.derived.speedup": positive(1000),
    "devices.*.derived.effective_gmacs": GMACS,
    "devices.*.derived.peak_fraction": positive(10),
    "devices.*.derived.top1_gap": number(-100, 100),
    "counting.seconds": SECONDS,
    "counting.variants": integer(1, 100_000),
    "counting.full_model_s": SECONDS,
    "jobs.jobs1.images_per_s": RATE,
    "jobs.jobs2.images_per_s": RATE,  # None with one usable core (see _get)
    "jobs.ratio": positive(10),
    "study_runs.workers": integer(1, 4096),
    "study_runs.ratio": positive(100),
    "study_runs.stock.runs_per_hour": positive(1e7),
    "study_runs.tuned.runs_per_hour": positive(1e7),
    "study_runs.stock.mean_wall_s": SECONDS,
    "study_runs.tuned.mean_train_s": SECONDS,
    "study_runs.stock.test_top1": each(PERCENT),
    "study_runs.tuned.test_top1": each(PERCENT),
    "study_runs.accuracy.ci95": each(number(-100, 100), n=2),
    "study_runs.accuracy.identical": integer(0, 100),
    "probes.ms_per_seed_step.stock": positive(1e5),
    "probes.ms_per_seed_step.tuned": positive(1e5),
    "probes.vs_stock.tuned": positive(100),
    "probes.ms_per_seed_step.stacked_2_seeds": positive(1e5),
    "probes.vs_stock.stacked_8_seeds": positive(100),
    "load_average.start": number(0, 1e4),
    "load_average.end": number(0, 1e4),
    "checks": each(lambda c: isinstance(c, dict) and c.get("id") in bench_report.TARGETS),
    "elapsed_s": SECONDS,
}
#: measured only where two cores can be pinned apart: None on a one-core machine
TWO_CORES_ONLY = ("jobs.jobs2.images_per_s", "jobs.ratio")


def _get(obj: dict, path: str) -> list:
    """Values at a dotted path; "*" fans out over a dict's values."""
    values = [obj]
    for key in path.split("."):
        values = [v for d in values for v in (d.values() if key == "*" else [d[key]])]
    return values


def _two_cores(result: dict) -> bool:
    return result["machine"]["usable_cores"] >= 2


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


def check_field(result: dict, path: str) -> None:
    """The field is on every device and holds a sane value (a KeyError names a missing one)."""
    if path in TWO_CORES_ONLY and not _two_cores(result):
        assert result["jobs"]["jobs2"] is None and result["jobs"]["ratio"] is None
        return
    values = _get(result, path)
    assert values, f"{path}: no value"
    bad = [v for v in values if not FIELDS[path](v)]
    assert not bad, f"{path}: not a sane value: {bad}"


@pytest.mark.parametrize("path", FIELDS)
def test_json_has_field(quick: tuple[dict, str], path: str) -> None:
    check_field(quick[0], path)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("devices.*.derived.speedup", math.nan),
        ("devices.*.derived.speedup", -1.5),
        ("devices.*.baseline.images_per_s", 0.0),
        ("devices.*.archlab.test_top1", [101.0, 50.0]),
        ("counting.seconds", math.inf),
        ("machine.cuda", ""),
        ("model.macs", 1.5e7),
    ],
)
def test_field_checks_reject_nonsense(quick: tuple[dict, str], path: str, bad: object) -> None:
    result = copy.deepcopy(quick[0])
    *parents, last = path.split(".")
    for holder in _get(result, ".".join(parents)) if parents else [result]:
        holder[last] = bad
    with pytest.raises(AssertionError, match="not a sane value"):
        check_field(result, path)


def test_fields_agree_with_each_other(quick: tuple[dict, str]) -> None:
    result = quick[0]
    seeds = result["settings"]["seeds"]
    for dev in result["devices"].values():
        assert len(dev["baseline"]["test_top1"]) == len(dev["archlab"]["test_top1"]) == seeds
        peak = dev["peak"]
        assert peak["peak_gmacs"] == peak["bf16_gmacs" if peak["dtype"] == "bf16" else "fp32_gmacs"]
        assert dev["derived"] == bench.derive(dev, result["model"]["macs"])
    assert result["elapsed_s"] >= result["counting"]["seconds"]
    assert result["counting"]["seconds"] >= result["counting"]["full_model_s"]


def test_quick_run_is_synthetic_and_complete(quick: tuple[dict, str]) -> None:
    result, _ = quick
    assert result["settings"]["quick"] and not result["data"]["real"]
    assert "synthetic" in result["data"]["note"]
    assert "cpu" in result["devices"]
    assert len(result["devices"]["cpu"]["profile"]["top_ops"]) == TOP_OPS
    if not _two_cores(result):  # e.g. under taskset -c 1: no --jobs 2 comparison
        assert result["jobs"]["jobs2"] is None
        return
    assert len(result["jobs"]["jobs2"]["workers"]) == 2
    # two workers pinned to disjoint cores
    cores = [set(w["cores"]) for w in result["jobs"]["jobs2"]["workers"]]
    assert not cores[0] & cores[1]


def test_every_target_checked(quick: tuple[dict, str]) -> None:
    result, md = quick
    ids = {c["id"] for c in result["checks"]}
    assert ids == set(bench_report.TARGETS) - (set() if _two_cores(result) else {"jobs"})
    assert "## Targets" in md and "| target | device | measured | result |" in md
    for tid in ids:
        assert md_text(bench_report.TARGETS[tid][0]) in md  # as a cell: "|" and "<" escaped
    for c in result["checks"]:
        assert c["passed"] or c["reason"]  # a shortfall always says why


def test_markdown_has_profile_and_results(quick: tuple[dict, str]) -> None:
    md = quick[1]
    assert "## Study runs per hour: today's trainer vs the new one" in md
    assert "## The trainer vs a hand-written PyTorch loop" in md
    assert "## Profile of one archlab training step" in md
    assert "flags: " in md  # the CPU's flags are with every timing
    assert "## Ways to more runs per hour, measured" in md
    if "cuda" not in quick[0]["devices"]:
        assert "CUDA: not measured" in md
    assert "--quick run" in md


def test_shortfalls_say_by_how_much_and_why(quick: tuple[dict, str]) -> None:
    result = copy.deepcopy(quick[0])
    result["devices"]["cpu"]["derived"].update(peak_fraction=0.05)
    result["study_runs"]["ratio"] = 1.25
    result["study_runs"]["accuracy"].update(ci95=[0.4, 1.2], diffs=[0.5, 1.1])
    result["counting"]["seconds"] = 25.0
    result["checks"] = bench_report.checks(result)
    short = {c["id"]: c for c in result["checks"] if not c["passed"]}
    assert {"runs_per_hour", "mac_util", "run_accuracy", "count_s"} <= set(short)
    assert short["runs_per_hour"]["shortfall_shown"] == "0.75x"
    assert short["run_accuracy"]["shortfall_shown"] == "0.40 pt"  # 0 lies 0.4 pt below
    assert short["count_s"]["shortfall_shown"] == "15.0 s"
    assert all(c["reason"] for c in short.values())
    assert "+0.50, +1.10" in short["run_accuracy"]["reason"]
    assert "FALLS SHORT by 0.75x" in bench_report.markdown(result)


def test_baseline_and_archlab_are_paired() -> None:
    """Same seed, fp32, NCHW, no weight decay: the two loops compute the same training run."""
    data = load_dataset("synthetic:128")
    spec = ArchSpec(width_mult=0.25, depth_mult=0.5)
    cfg = bench.archlab_config(bench.QUICK, "cpu").replace(
        augment=False, precision="fp32", channels_last=False, weight_decay=0.0, seed=1
    )
    base = baseline_run(data, spec, cfg, 3)
    arch = bench.archlab_run(data, spec, cfg, 3)
    assert base["train_loss"] == pytest.approx(arch["train_loss"], rel=1e-4)
    assert base["test_top1"] == pytest.approx(arch["test_top1"], abs=1e-9)


def test_bad_seeds_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--seeds", "0", "--out", "unused"]) == 2
    assert "--seeds 0" in capsys.readouterr().err
    assert not Path("unused").exists()


def _device(base_ips: float, arch_ips: float, base_top1: list, arch_top1: list, peak: float):
    return {
        "peak": {"peak_gmacs": peak},
        "baseline": {"images_per_s": base_ips, "test_top1": base_top1},
        "archlab": {"images_per_s": arch_ips, "test_top1": arch_top1},
    }


def test_derive_arithmetic() -> None:
    dev = _device(200.0, 500.0, [80.0, 82.0, 84.0], [81.0, 81.5, 85.0], peak=100.0)
    d = bench.derive(dev, 40_000_000)
    assert d["speedup"] == pytest.approx(2.5)
    # forward + two backward matmuls per MAC: 3 x 40 M MACs x 500 img/s = 60 GMAC/s
    assert d["effective_gmacs"] == pytest.approx(60.0)
    assert d["baseline_effective_gmacs"] == pytest.approx(24.0)
    assert d["peak_fraction"] == pytest.approx(0.6)
    # paired per seed, archlab minus baseline
    assert d["top1_gap_per_seed"] == pytest.approx([1.0, -0.5, 1.0])
    assert d["top1_gap"] == pytest.approx(0.5)
    assert d["top1_gap_std"] == pytest.approx(statistics.stdev([1.0, -0.5, 1.0]))


def test_derive_one_seed_and_unpaired_seeds() -> None:
    d = bench.derive(_device(100.0, 100.0, [50.0], [49.0], peak=3.0), 10_000_000)
    assert d["speedup"] == 1.0 and d["top1_gap"] == -1.0 and d["top1_gap_std"] == 0.0
    assert d["peak_fraction"] == pytest.approx(1.0)  # 3 x 10 M x 100 = 3 GMAC/s of 3
    with pytest.raises(ValueError):  # a seed without its pair is a bug, not a number
        bench.derive(_device(100.0, 100.0, [50.0, 51.0], [49.0], peak=3.0), 10_000_000)


def test_a_gpu_only_result_is_judged_and_rendered(quick: tuple[dict, str]) -> None:
    """``--device cuda``: the GPU's section, runs and probes alone, no --jobs comparison."""
    result = copy.deepcopy(quick[0])
    result["devices"] = {"cuda": result["devices"]["cpu"]}
    result["jobs"] = None
    result["study_runs"]["device"] = "cuda"
    result["probes"]["device"] = "cuda"
    result["checks"] = bench_report.checks(result)
    assert {c["id"] for c in result["checks"]} == set(bench_report.TARGETS) - {"jobs"}
    assert {c["device"] for c in result["checks"] if c["id"] != "count_s"} == {"cuda"}
    md = bench_report.markdown(result)
    assert "CPU: not measured in this run" in md and "CUDA: not measured" not in md
    assert "workers sharing one GPU" in md and "(cuda, batch" in md
    assert "Not measured: a GPU-only run" in md


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda"])
def test_devices_measured(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: no CUDA device"):
            bench.settings(quick=True, device=device)
        return
    got = bench.devices(bench.settings(quick=True, device=device))
    gpu = ["cuda"] if torch.cuda.is_available() else []
    assert got == {"auto": ["cpu", *gpu], "cpu": ["cpu"], "cuda": ["cuda"]}[device]


def test_bad_device_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--device", "tpu", "--out", "unused"]) == 2
    assert "--device tpu: must be one of auto, cpu, cuda" in capsys.readouterr().err
    assert not Path("unused").exists()
