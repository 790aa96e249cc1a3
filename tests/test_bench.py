"""Tests for archlab.bench and its report: a --quick run end to end, the paired loops, targets.

No timing assertions: the speed targets are checked by `make bench`, never here.
"""

import copy
import json
from pathlib import Path

import pytest

from archlab import bench
from archlab.arch.spec import ArchSpec
from archlab.cli import main
from archlab.report import bench as bench_report
from archlab.report.doc import md_text
from archlab.train.data import load_dataset
from archlab.train.profile import TOP_OPS
from archlab.train.reference import baseline_run

# every field bench.json must hold, as dotted paths ("*" = each device)
FIELDS = [
    "version",
    "settings.seeds",
    "settings.steps",
    "settings.batch_size",
    "machine.cpu_model",
    "machine.usable_cores",
    "machine.torch",
    "machine.bf16_native",
    "machine.torch_threads_used",
    "machine.cuda",
    "data.dataset",
    "data.real",
    "data.note",
    "model.macs",
    "model.params",
    "devices.*.peak.peak_gmacs",
    "devices.*.peak.fp32_gmacs",
    "devices.*.peak.dtype",
    "devices.*.peak.threads",
    "devices.*.baseline.images_per_s",
    "devices.*.baseline.test_top1",
    "devices.*.baseline.test_top1_mean",
    "devices.*.archlab.images_per_s",
    "devices.*.archlab.test_top1",
    "devices.*.archlab.test_top1_mean",
    "devices.*.archlab_throughput.per_epoch_images_per_s",
    "devices.*.profile.top_ops",
    "devices.*.profile.category_percent",
    "devices.*.derived.speedup",
    "devices.*.derived.effective_gmacs",
    "devices.*.derived.peak_fraction",
    "devices.*.derived.top1_gap",
    "counting.seconds",
    "counting.variants",
    "counting.full_model_s",
    "jobs.jobs1.images_per_s",
    "jobs.jobs2.images_per_s",
    "jobs.ratio",
    "load_average.start",
    "load_average.end",
    "checks",
    "elapsed_s",
]


def _get(obj: dict, path: str) -> list:
    """Values at a dotted path; "*" fans out over a dict's values."""
    values = [obj]
    for key in path.split("."):
        values = [v for d in values for v in (d.values() if key == "*" else [d[key]])]
    return values


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


@pytest.mark.parametrize("path", FIELDS)
def test_json_has_field(quick: tuple[dict, str], path: str) -> None:
    assert _get(quick[0], path)  # KeyError names a missing field


def test_quick_run_is_synthetic_and_complete(quick: tuple[dict, str]) -> None:
    result, _ = quick
    assert result["settings"]["quick"] and not result["data"]["real"]
    assert "synthetic" in result["data"]["note"]
    assert "cpu" in result["devices"]
    assert len(result["devices"]["cpu"]["profile"]["top_ops"]) == TOP_OPS
    assert len(result["jobs"]["jobs2"]["workers"]) == 2
    # two workers pinned to disjoint cores
    cores = [set(w["cores"]) for w in result["jobs"]["jobs2"]["workers"]]
    assert not cores[0] & cores[1]


def test_every_target_checked(quick: tuple[dict, str]) -> None:
    result, md = quick
    ids = {c["id"] for c in result["checks"]}
    assert ids == set(bench_report.TARGETS)
    assert "## Targets" in md and "| target | device | measured | result |" in md
    for what, _ in bench_report.TARGETS.values():
        assert md_text(what) in md  # as a table cell: "|" and "<" escaped
    for c in result["checks"]:
        assert c["passed"] or c["reason"]  # a shortfall always says why


def test_markdown_has_profile_and_results(quick: tuple[dict, str]) -> None:
    md = quick[1]
    assert "## Results" in md and "## Profile of one archlab training step" in md
    assert "--quick run" in md


def test_shortfalls_say_by_how_much_and_why(quick: tuple[dict, str]) -> None:
    result = copy.deepcopy(quick[0])
    dev = result["devices"]["cpu"]["derived"]
    dev.update(speedup=1.5, peak_fraction=0.05, top1_gap=-2.0)
    result["counting"]["seconds"] = 25.0
    result["checks"] = bench_report.checks(result)
    short = {c["id"]: c for c in result["checks"] if not c["passed"]}
    assert {"speedup", "mac_util", "top1_gap", "count_s"} <= set(short)
    assert short["speedup"]["shortfall_shown"] == "1.50x"
    assert short["count_s"]["shortfall_shown"] == "15.0 s"
    assert all(c["reason"] for c in short.values())
    assert "FALLS SHORT by 1.50x" in bench_report.markdown(result)


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
