"""The ``variants``, ``flops`` and ``report-flops`` commands; bad input exits 2 with one line."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archlab.arch.spec import AXES, KNOBS, variant_table
from archlab.report import flops as flops_report
from archlab.report.plots import PNG_SIGNATURE
from archlab.report.sweep import one_axis_variants
from tests.studykit import run_main


def test_variants_lists_every_axis_option_and_knob(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_main(capsys, "variants")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    for axis, reg in AXES.items():
        start = lines.index(f"{axis}:")
        block = lines[start + 1 : start + 1 + len(reg)]
        for e, line in zip(reg, block, strict=True):
            mark = "*" if e.name == reg.default else " "
            assert line.startswith(f"  {mark} {e.name} "), line
            assert e.description in line and f"[{e.paper}]" in line
    for knob in KNOBS:
        assert any(line.split()[:1] == [knob] for line in lines), knob


def test_variants_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "variants", "--json")
    data = json.loads(out)
    assert rc == 0
    assert data["options"] == variant_table()
    assert data["knobs"] == {k: v[0] for k, v in KNOBS.items()}


def test_flops_json_torchvision(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_main(capsys, "flops", "--model", "inception_v3_tv", "--json")
    assert rc == 0 and err == ""
    rep = json.loads(out)
    assert rep["model"] == "inception_v3_tv"
    assert (rep["input_size"], rep["in_chans"], rep["num_classes"]) == (299, 3, 1000)
    assert rep["params"] == 23_834_568
    assert rep["params_with_aux"] == 27_161_264
    assert rep["macs"] == 5_713_216_096
    assert rep["macs_fvcore_total"] == 5_731_282_144
    assert rep["macs_fvcore_extra"] == 5_731_282_144 - 5_713_216_096
    assert set(rep["by_stage"]) == {
        "stem",
        "stage_a",
        "reduction_1",
        "stage_b",
        "aux",
        "reduction_2",
        "stage_c",
        "head",
    }
    assert sum(s["macs"] for s in rep["by_stage"].values()) == rep["macs"]
    assert rep["spec"]["conv5x5"] == "5x5"


def test_flops_text_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "flops", "--set", "conv_nxn=2x2x2", "--set", "n=3")
    assert rc == 0
    assert out.startswith("model inception_mini  input 1x28x28")
    assert "1 MAC = 1 multiply-add" in out and "fvcore calls these flops" in out
    golden = json.loads((Path(__file__).parent / "data" / "complexity_golden.json").read_text())
    macs = golden["models"]["inception_mini"]["conv_nxn=2x2x2 n=3"]["macs"]
    assert f"{macs:,}" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--set", "colour=red"], ["unknown spec key 'colour'", "conv5x5", "width_mult"]),
        (["--set", "conv5x5=7x7"], ["conv5x5='7x7'", "valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1"]),
        (["--set", "n=4"], ["n=4", "odd integer >= 3"]),
        (["--set", "n=seven"], ["n='seven'", "odd integer >= 3"]),
        (["--set", "conv_nxn=2x2x2"], ["conv_nxn='2x2x2'", "n in [3]", "n=7"]),
        (["--set", "width_mult=0"], ["width_mult=0.0", "> 0"]),
        (["--set", "nothing"], ["override 'nothing' must look like key=value"]),
        (["--model", "resnet"], ["unknown model 'resnet'", "inception_mini", "inception_v3_tv"]),
        (["--input-size", "0"], ["--input-size=0", "positive"]),
        (["--input-size", "8"], ["input_size=8 is too small"]),
        (["--num-classes", "-1"], ["--num-classes=-1", "positive"]),
        (["--input-size", "big"], ["--input-size", "invalid int value"]),  # argparse's own
    ],
)
def test_bad_flops_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragments: list[str]
) -> None:
    rc, out, err = run_main(capsys, "flops", *argv)
    assert rc == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("archlab: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_script_exit_code() -> None:
    """The installed ``archlab`` script: one line on stderr, exit 2, no traceback."""
    script = Path(sys.executable).with_name("archlab")
    if not script.exists():
        pytest.skip("archlab is not installed in this environment")
    proc = subprocess.run(
        [str(script), "flops", "--set", "conv5x5=7x7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert (
        proc.stderr == "archlab: error: conv5x5='7x7' is not an option; "
        "valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1\n"
    )


def _fake_reference() -> dict:
    # the real row traces torchvision's model (seconds); test_measure checks those numbers
    return {
        "model": "inception_v3_tv",
        "macs": 5_713_216_096,
        "params": 23_834_568,
        "params_with_aux": 27_161_264,
        "fvcore_total": 5_731_282_144,
        "fvcore_extra": {"batch_norm": 17_934_976, "adaptive_avg_pool2d": 131_072},
        "flopcounter_agrees": "yes",
        "fvcore_agrees": "yes",
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _check_report(out_dir: Path, models: list[str]) -> list[dict[str, str]]:
    """Checks every report must pass; returns the CSV rows."""
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "flops.csv",
        "flops.md",
        "flops_macs.png",
        "model_claims.csv",
    ]
    assert (out_dir / "flops_macs.png").read_bytes().startswith(PNG_SIGNATURE)
    rows = _read_csv(out_dir / "flops.csv")
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        assert [(r["axis"], r["option"], r["spec"]) for r in mine] == [
            (v.axis, v.option, v.label) for v in one_axis_variants(model)
        ]
        assert {(r["axis"], r["option"]) for r in mine} == {
            (a, e.name) for a, reg in AXES.items() for e in reg
        }
        default = [r for r in mine if r["is_default"] == "True"]
        assert len(default) == len(AXES) and {r["macs_ratio"] for r in default} == {"1.000000"}
    assert {r["flopcounter_agrees"] for r in rows} == {"yes"}
    assert {r["fvcore_agrees"] for r in rows} <= {"yes", "not traced"}
    # every claim the paper puts a number on agrees exactly at block level
    assert {r["block_agrees"] for r in rows if r["claim"]} <= {"yes", ""}
    claims = {r["claim"].split(":")[0] for r in rows if r["claim"]}
    assert {"conv5x5_cost", "nxn_cost", "nxn7_cost", "2x2_cost", "grid_cost"} <= claims
    md = (out_dir / "flops.md").read_text()
    assert "1 MAC = 1 multiply-add; fvcore calls MACs flops" in md
    for number in ("23,834,568", "27,161,264", "5,713,216,096", "5,731,282,144", "18,066,048"):
        assert number in md
    assert "| conv5x5_cost | 3x3x2_sqrt / 5x5 (n=5) |" in md and "18/25 = 0.720" in md
    assert "![MACs per variant](flops_macs.png)" in md
    return rows


def test_report_flops_mini(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mini = [m for m in flops_report.REPORT_MODELS if m[0] == "inception_mini"]
    monkeypatch.setattr(flops_report, "REPORT_MODELS", tuple(mini))
    monkeypatch.setattr(flops_report, "reference_row", _fake_reference)
    out_dir = tmp_path / "new" / "flops"  # a folder that does not exist yet
    rc, out, err = run_main(capsys, "report-flops", "--out", str(out_dir))
    assert rc == 0 and err == ""
    assert str(out_dir / "flops.md") in out
    rows = _check_report(out_dir, ["inception_mini"])
    assert {r["fvcore_agrees"] for r in rows} == {"yes"}  # the mini is traced on every row
    # the whole model's cost claims, as scorecard rows for `archlab report-index`
    with open(out_dir / flops_report.MODEL_CLAIMS, newline="") as f:
        claims = list(csv.DictReader(f))
    assert {c["claim"] for c in claims} == {"v3_macs", "v3_params"}
    assert all(c["kind"] == "cost" and c["evidence"] in ("agrees", "disagrees") for c in claims)


@pytest.mark.slow
def test_report_flops_full(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, err = run_main(capsys, "report-flops", "--out", str(tmp_path))
    assert rc == 0 and err == ""
    _check_report(tmp_path, [m for m, _, _ in flops_report.REPORT_MODELS])


def test_study_run_help_lists_the_deciding_options(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "study", "run", "--help")
    assert rc == 0
    for flag in ("--until-decided", "--max-seeds K", "--budget MINUTES", "--yes", "--numerics"):
        assert flag in out, flag


def test_train_writes_predictions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import numpy as np

    out = tmp_path / "p.npz"
    argv = ["train", "--dataset", "synthetic:200", "--epochs", "0.5", "--quiet"]
    rc, text, _ = run_main(capsys, *argv, "--set", "width_mult=0.25", "--predictions", str(out))
    assert rc == 0
    with np.load(out) as z:
        hits = 100 * (z["test_pred"] == z["test_y"]).mean()
    top1 = float(text.split("test top-1")[1].split("%")[0])
    assert hits == pytest.approx(top1, abs=0.01)


def test_train_predictions_need_npz(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, err = run_main(capsys, "train", "--predictions", str(tmp_path / "p.txt"))
    assert rc == 2 and out == ""
    want = f"--predictions {tmp_path / 'p.txt'}: allowed: a file name ending in .npz"
    assert err == f"archlab: error: {want}\n"
    assert not (tmp_path / "p.txt").exists()
