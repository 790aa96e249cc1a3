"""Reports: every file written, HTML self-contained and escaped, principle helpers and page."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from archlab.analysis.principles import PRINCIPLES, analyze, epochs_to_reach
from archlab.analysis.stats import compare_to_baseline, pareto_front
from archlab.io import CSV_FLOAT
from archlab.report.doc import (
    FOLD_ROWS,
    Doc,
    fmt_mean_ci,
    fmt_millions,
    fmt_num,
    md_table,
    to_html,
    to_markdown,
)
from archlab.report.plots import PNG_SIGNATURE
from archlab.report.principles import (
    evidence_of,
    literal_section,
    render_principles,
    run_principle,
)
from archlab.report.study import pool_bins, render_report

SEEDS = (0, 1, 2)
EVIL = "<script>alert(1)</script>"
SPEC = {
    "conv5x5": "3x3x2_sqrt",
    "conv_nxn": "1xn_nx1",
    "factor_act": "relu",
    "stem": "3x3x3",
    "grid_reduction": "parallel",
    "aux_head": "aux",
    "coarse_module": "expanded",
    "n": 7,
    "width_mult": 1.0,
    "depth_mult": 1.0,
    "reduce_ratio": np.nan,
    "label_smoothing": 0.1,
}


def _run(variant: str, seed: int, top1: float, macs: float, **extra) -> dict:
    row = {
        **SPEC,
        "study": "demo",
        "variant": variant,
        "is_baseline": variant == "baseline",
        "group": "",
        "seed": seed,
        "status": "complete",
        "run_key": f"{variant}-{seed}",
        "dataset": "fashion-mnist",
        "scale": "quick",
        "macs": macs,
        "params": macs / 30,
        "test_top1": top1,
        "test_top5": min(100.0, top1 + 8),
        "test_nll": 0.3 - top1 / 1000,
        "test_ece": 0.02,
        "train_time_s": 60.0,
    }
    row.update(extra)
    return row


def study_tables(with_reliability: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline, a 5x5 variant (1 pt worse), a 7x7 stem, a noisy hostile label; with curves."""
    rows = []
    for seed in SEEDS:
        rows += [
            _run("baseline", seed, 90.0 + 0.3 * seed, 30e6),
            _run("conv5x5=5x5", seed, 89.0 + 0.3 * seed, 36e6, conv5x5="5x5"),
            _run("stem=7x7", seed, 89.5 + 0.3 * seed, 29e6, stem="7x7"),
            _run(EVIL, seed, 90.0 + 0.3 * seed + (0.5, -0.6, 0.2)[seed], 31e6),
        ]
    rows.append(_run("stem=7x7", 3, math.nan, 29e6, stem="7x7", status="diverged"))
    rows.append(_run("stem=7x7", 4, math.nan, 29e6, stem="7x7", status="failed"))
    runs = pd.DataFrame(rows)
    if with_reliability:
        conf = np.linspace(0.05, 0.95, 15)
        bins = {"bin_conf": conf.tolist(), "bin_acc": (conf - 0.03).tolist(), "bin_count": [5] * 15}
        runs["reliability"] = json.dumps(bins)
    curves = pd.DataFrame(
        [
            {
                "run_key": r.run_key,
                "variant": r.variant,
                "seed": r.seed,
                "epoch": e,
                "train_loss": 1.0 / e,
                "train_top1": 50 + 4 * e,
                "test_top1": r.test_top1 - (10 - e),
            }
            for r in runs[runs["status"] == "complete"].itertuples()
            for e in range(1, 11)
        ]
    )
    return runs, curves


META = {
    "study": "demo",
    "title": f"factorization {EVIL}",
    "description": "synthetic study for tests",
    "dataset": "fashion-mnist",
    "scale": "quick",
    "seeds": list(SEEDS),
    "recipe": {"epochs": 10, "optimizer": "sgd", "note": EVIL},
    "baseline": "baseline",
    "version": "0.1.0",
    "commit": "abc1234",
    "machine": "test box",
    "claims": ["conv5x5_acc", "conv5x5_cost", "stem_7x7", "aux_converge"],
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs, curves = study_tables()
    out = tmp_path_factory.mktemp("report")
    return render_report(runs, curves, META, out, n_boot=500), out


def test_render_report_writes_every_file(report):
    files, out = report
    for name in ("report.md", "report.html", "summary.csv", "comparisons.csv", "claims.csv"):
        assert files[name] == out / name and files[name].stat().st_size > 0
    pngs = [p for name, p in files.items() if name.endswith(".png")]
    assert {p.name for p in pngs} >= {"acc_vs_macs.png", "cost.png", "curves.png"}
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in pngs)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_html_is_self_contained_and_escaped(report):
    files, _ = report
    page = files["report.html"].read_text()
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") >= 3
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in files["report.md"].read_text()


def test_report_sections_and_numbers(report):
    files, out = report
    md = files["report.md"].read_text()
    for heading in (
        "Paper claim vs our measurement",
        "Summary per variant",
        "Comparisons with the baseline",
        "1 MAC = 1 multiply-add",
        "abc1234",
        "test box",
    ):
        assert heading in md
    assert "5 (3/1/1)" in md  # stem=7x7: 5 runs, 3 complete, 1 diverged, 1 failed
    assert "inconclusive (a 95% interval spans 0)" in md  # the noisy variant
    claims = pd.read_csv(out / "claims.csv").set_index("claim")
    assert claims.loc["conv5x5_acc", "evidence"] == "agrees"
    assert claims.loc["stem_7x7", "evidence"] == "agrees"
    assert claims.loc["conv5x5_cost", "evidence"] == "agrees"
    summary = pd.read_csv(out / "summary.csv").set_index("variant")
    assert summary.loc["baseline", "test_top1_mean"] == pytest.approx(90.3)
    assert bool(summary.loc["stem=7x7", "pareto"])  # fewest MACs


def test_reliability_adds_diagram_and_calibration_columns(tmp_path):
    runs, curves = study_tables(with_reliability=True)
    files = render_report(runs, curves, {**META, "claims": []}, tmp_path, n_boot=200)
    assert files["reliability.png"].read_bytes()[:8] == PNG_SIGNATURE
    md = files["report.md"].read_text()
    assert "test ECE" in md and "test NLL" in md
    comps = pd.read_csv(tmp_path / "comparisons.csv")
    assert set(comps["metric"]) == {"test_top1", "test_nll", "test_ece"}


def test_lower_nll_and_ece_are_better(tmp_path):
    """NLL and ECE are lower-is-better: a variant 1 pt less accurate but better calibrated is
    'worse' on top-1 and 'better' on NLL and ECE, in the analysis and in the report."""
    rows = []
    for seed in SEEDS:
        jitter = 0.001 * (seed % 2)  # paired noise the variant does not share exactly
        rows += [
            _run("baseline", seed, 90.0 + 0.3 * seed, 30e6, test_nll=0.40, test_ece=0.050),
            _run(
                "calibrated",
                seed,
                89.0 + 0.3 * seed + jitter,
                30e6,
                test_nll=0.30 + jitter,
                test_ece=0.020 + jitter,
            ),
        ]
    runs = pd.DataFrame(rows)
    for metric, verdict in (("test_top1", "worse"), ("test_nll", "better"), ("test_ece", "better")):
        comp = compare_to_baseline(runs, metric, n_boot=200)
        assert comp["verdict"].tolist() == [verdict], metric
        assert comp["mean_diff"].iloc[0] < 0  # variant minus baseline: lower in all three
    conf = np.linspace(0.05, 0.95, 15)
    bins = {"bin_conf": conf.tolist(), "bin_acc": conf.tolist(), "bin_count": [5] * 15}
    runs["reliability"] = json.dumps(bins)  # calibration data: the report compares NLL and ECE
    meta = {**META, "claims": [], "title": "calibration"}
    render_report(runs, pd.DataFrame(), meta, tmp_path, n_boot=200)
    comp = pd.read_csv(tmp_path / "comparisons.csv").set_index("metric")
    assert comp.loc[["test_top1", "test_nll", "test_ece"], "verdict"].tolist() == [
        "worse",
        "better",
        "better",
    ]


def test_reliability_bins_pool_by_count():
    a = {"bin_conf": [0.5, 0.9], "bin_acc": [0.4, 0.8], "bin_count": [1, 3]}
    b = {"bin_conf": [0.7, 0.9], "bin_acc": [0.6, 1.0], "bin_count": [1, 1]}
    pooled = pool_bins([json.dumps(a), b])
    assert pooled["bin_conf"] == pytest.approx([0.6, 0.9])
    assert pooled["bin_acc"] == pytest.approx([0.5, 0.85])
    assert pooled["bin_count"] == [2.0, 4.0]


def test_search_report_and_missing_optional_columns(tmp_path):
    runs, curves = study_tables()
    runs = runs.drop(columns=["group", "test_top5", "is_baseline"])  # a search: no baseline
    meta = {k: v for k, v in META.items() if k not in ("claims", "recipe", "seeds", "baseline")}
    files = render_report(runs, curves.iloc[0:0], {**meta, "kind": "search"}, tmp_path, n_boot=200)
    assert "edf.png" in files and "curves.png" not in files
    md = files["report.md"].read_text()
    assert "Pareto front" in md and "the study has no baseline" in md
    assert pd.read_csv(tmp_path / "comparisons.csv").empty


def test_epochs_to_reach_interpolates():
    curve = pd.DataFrame({"epoch": [1, 2, 3], "train_top1": [40.0, 60.0, 80.0]})
    assert epochs_to_reach(curve, 70.0) == pytest.approx(2.5)
    assert epochs_to_reach(curve, 20.0) == pytest.approx(0.5)  # linear from 0% at epoch 0
    assert math.isnan(epochs_to_reach(curve, 90.0))


def _principle_runs(key: str, values, effect, **fixed) -> pd.DataFrame:
    rows = []
    for i, v in enumerate(values):
        for seed in SEEDS:
            top1 = 88.0 + effect(v) + 0.2 * seed + 0.01 * ((i + seed) % 2)
            macs = fixed.pop("_macs", None) or 30e6 * (1 + 0.1 * i)
            rows.append(_run(f"{key}={v}", seed, top1, macs, **{key: v, **fixed}))
    return pd.DataFrame(rows)


def test_principle1_agrees_when_milder_bottleneck_is_better(tmp_path):
    runs = _principle_runs("min_repr", [0.125, 0.25, 0.5, 1.0], lambda v: 2 * np.log2(v))
    runs["grid_reduction"] = np.where(runs["min_repr"] < 0.3, "pool_conv", "parallel")
    path, verdict, detail, _ = run_principle(1, runs, None, tmp_path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert evidence_of(verdict) == "agrees"
    assert "+2.00 pt per doubling" in verdict
    assert len(detail) == 4


def test_principle2_wider_trains_faster(tmp_path):
    runs = _principle_runs("width_mult", [0.5, 1.0, 2.0], lambda v: 0.0)
    curves = pd.DataFrame(
        [
            {"run_key": r.run_key, "variant": r.variant, "seed": r.seed, "epoch": e}
            | {"train_top1": min(99.0, 20 + 10 * e * r.width_mult + r.seed)}
            for r in runs.itertuples()
            for e in range(1, 11)
        ]
    )
    path, verdict, detail, _ = run_principle(2, runs, curves, tmp_path, threshold=60.0)
    assert evidence_of(verdict) == "agrees"
    assert set(detail["not reached"]) == {0}
    assert path.exists()


def test_principle3_needs_four_ratios(tmp_path):
    runs = _principle_runs("reduce_ratio", [0.25, 0.5, 1.0], lambda v: 0.0)
    _, verdict, _, _ = run_principle(3, runs, None, tmp_path)
    assert verdict.startswith("inconclusive: 3 reduce_ratio values")
    runs = _principle_runs("reduce_ratio", [0.125, 0.25, 0.5, 1.0], lambda v: 0.1 * v)
    _, verdict, detail, _ = run_principle(3, runs, None, tmp_path)
    assert evidence_of(verdict) == "agrees" and len(detail) == 4


def test_principle4_flags_off_budget_points_and_finds_balance(tmp_path):
    rows = []
    configs = [(0.5, 1.4, 30.0e6), (1.0, 1.0, 30.2e6), (2.0, 0.7, 29.9e6), (3.0, 0.6, 33e6)]
    for d, w, macs in configs:
        for seed in SEEDS:
            top1 = 89.0 + (1.0 if d == 1.0 else 0.0) + 0.2 * seed
            rows.append(_run(f"d={d}", seed, top1, macs, depth_mult=d, width_mult=w))
    path, verdict, detail, _ = run_principle(4, pd.DataFrame(rows), None, tmp_path)
    assert detail["outside tolerance"].tolist() == ["", "", "", "yes"]  # 33 M is +10%
    assert evidence_of(verdict) == "agrees"
    assert "best is d=1, w=1" in verdict


def test_render_report_for_a_principle_study(tmp_path):
    runs = _principle_runs("reduce_ratio", [0.125, 0.25, 0.5, 1.0], lambda v: 0.1 * v)
    runs["is_baseline"] = runs["variant"] == "reduce_ratio=1.0"
    meta = {**META, "kind": "principle3", "claims": ["principle3"], "baseline": None}
    files = render_report(runs, pd.DataFrame(), meta, tmp_path, n_boot=200)
    assert "principle3.png" in files
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert claims["claim"].tolist() == ["principle3"]
    assert claims["evidence"].iloc[0] == "agrees"


@pytest.mark.parametrize("method", ["planned", "anytime"])
@pytest.mark.parametrize("looks", [0, 2])
def test_a_principle_verdict_looked_at_says_how_it_was_judged(tmp_path, looks, method):
    runs = _principle_runs("reduce_ratio", [0.125, 0.25, 0.5, 1.0], lambda v: 0.1 * v)
    runs["is_baseline"] = runs["variant"] == "reduce_ratio=1.0"
    rounds = [
        {"round": k, "seeds": 2 + k, "open": [["*", "*"]], "principle_open": True}
        for k in range(looks)
    ]
    record = {"rounds": [*rounds, {"round": looks, "seeds": 9, "open": []}], "method": method}
    meta = {**META, "kind": "principle3", "claims": ["principle3"], "baseline": None}
    meta.update(looks=[2, 3, 4], until_decided=record)
    render_report(runs, pd.DataFrame(), meta, tmp_path, n_boot=200)
    ours = pd.read_csv(tmp_path / "claims.csv")["ours"].iloc[0]
    # anytime studies have no plan to spend over: confidence sequences instead
    assert ("anytime-valid 95% confidence sequences" in ours) == (method == "anytime")
    # planned looks: judged look by look at the plan's group-sequential levels
    assert ("at that look's group-sequential level" in ours) == (method == "planned")


def test_a_principle_study_page_names_the_figure_its_runs_cannot_carry(tmp_path):
    runs = _principle_runs("coarse_module", ["expanded", "plain"], lambda v: 0.0)
    analysis = {"curve": "val_top1", "threshold": 80.0}
    meta = {**META, "kind": "principle2", "claims": ["principle2"], "analysis": analysis}
    files = render_report(runs, pd.DataFrame(), {**meta, "baseline": None}, tmp_path, n_boot=200)
    assert "principle2.png" not in files  # no curves: nothing to draw
    md = files["report.md"].read_text()
    assert "Not drawn: validation curves: no run has the val_top1 curve." in md


def test_render_principles_page(tmp_path):
    runs = _principle_runs("reduce_ratio", [0.125, 0.25, 0.5, 1.0], lambda v: 0.1 * v)
    path, verdict, detail, _ = run_principle(3, runs, None, tmp_path)
    sections = [
        {
            "principle": 3,
            "title": "reduce",
            "statement": "1x1 first",
            "plot": path,
            "verdict": verdict,
            "detail": detail,
        },
        {
            "principle": 1,
            "title": EVIL,
            "statement": "no bottlenecks",
            "plot": None,
            "verdict": "not run",
            "detail": "| a |",
        },
    ]
    files = render_principles(
        sections, {"title": "principles", "dataset": "fashion-mnist"}, tmp_path / "p"
    )
    page = files["report.html"].read_text()
    assert "data:image/png;base64," in page and "<script>" not in page
    assert "https://" not in page and "http://" not in page
    md = files["report.md"].read_text()
    assert md.index("Principle 1") < md.index("Principle 3")
    assert "../principle3.png" in md


def test_single_seed_and_all_failed_variant_do_not_crash(tmp_path):
    runs, curves = study_tables()
    runs = runs[runs["seed"] == 0].copy()
    runs.loc[runs["variant"] == "conv5x5=5x5", ["status", "test_top1"]] = ["failed", math.nan]
    files = render_report(runs, curves[curves["seed"] == 0], META, tmp_path, n_boot=200)
    md = files["report.md"].read_text()
    assert "inconclusive (fewer than 2 paired seeds)" in md
    assert "(1 run, no CI)" in md
    claims = pd.read_csv(tmp_path / "claims.csv").set_index("claim")
    assert claims.loc["stem_7x7", "evidence"] == "inconclusive"  # one seed proves nothing


def test_principles_are_one_table_with_one_signature(tmp_path):
    assert sorted(PRINCIPLES) == [1, 2, 3, 4]
    runs = _principle_runs("reduce_ratio", [0.125, 0.25, 0.5, 1.0], lambda v: 0.1 * v)
    result = analyze(3, runs, pd.DataFrame())
    assert result.principle == 3 and result.evidence == "agrees" and len(result.per) == 4
    assert result.facts["low"] == 0.125 and result.facts["diff"].n == len(SEEDS)
    with pytest.raises(ValueError, match="unknown principle 5; valid: 1, 2, 3, 4"):
        analyze(5, runs, None)
    with pytest.raises(ValueError, match="unknown study kind 'principle5'"):
        meta = {**META, "kind": "principle5", "baseline": None}
        render_report(runs, pd.DataFrame(), meta, tmp_path, n_boot=50)


def test_principle4_needs_three_configurations_on_budget(tmp_path):
    rows = [
        _run(f"d={d}", seed, 89.0 + seed, 30e6, depth_mult=d, width_mult=w)
        for d, w in ((1.0, 1.0), (2.0, 0.7))
        for seed in SEEDS
    ]
    _, verdict, detail, _ = run_principle(4, pd.DataFrame(rows), None, tmp_path)
    assert verdict == "inconclusive: 2 iso-MAC configurations, at least 3 needed"
    assert len(detail) == 2


def test_doc_tables_and_number_formats(tmp_path):
    table = md_table(["a|b", "n"], [["<b>x</b>", 1], ["two\nlines", 2]], align=["left", "right"])
    assert table.splitlines() == [
        "| a\\|b | n |",
        "|---|---:|",
        "| &lt;b>x&lt;/b> | 1 |",
        "| two lines | 2 |",
    ]
    assert (fmt_num(1.234), fmt_num(math.nan), fmt_num("x"), fmt_num(2.5, 0)) == (
        "1.23",
        "n/a",
        "x",
        "2",
    )
    assert fmt_mean_ci(1.0, 0.5, 1.5) == "1.00 [0.50, 1.50]"
    assert fmt_mean_ci(1.0, math.nan, math.nan, 0) == "1 (1 run, no CI)"
    assert fmt_mean_ci(math.nan, 0.0, 1.0) == "n/a"
    assert (fmt_millions(1_234_567_000), fmt_millions(None)) == ("1,234.57", "n/a")
    doc = Doc()
    doc.add("h2", "t")
    doc.add("table", pd.DataFrame({"x": [1]}))
    assert to_markdown(doc, tmp_path) == "## t\n\n| x |\n|---|\n| 1 |\n"
    with pytest.raises(ValueError, match="unknown block kind 'h4'"):
        doc.add("h4", "t")


def test_labelled_tables_longer_than_a_screen_fold_into_details(tmp_path):
    doc = Doc()
    doc.add("table", pd.DataFrame({"x": range(FOLD_ROWS + 1)}), "long <x>")
    doc.add("table", pd.DataFrame({"y": range(FOLD_ROWS)}), "short")
    doc.add("table", pd.DataFrame({"z": range(FOLD_ROWS + 1)}))  # no label: never folded
    page = to_html(doc, "t")
    summary = f"<details><summary>long &lt;x&gt; ({FOLD_ROWS + 1} rows)</summary><table>"
    assert page.count("<details>") == 1 and summary in page
    assert page.index("</table></details>") < page.index("<th>y</th>")
    md = to_markdown(doc, tmp_path)
    assert md.startswith(summary.replace("<table>", "\n\n| x |"))
    assert md.count("<details>") == 1


def test_a_study_page_folds_its_long_tables_after_the_answer(tmp_path, monkeypatch):
    import archlab.report.doc

    monkeypatch.setattr(archlab.report.doc, "FOLD_ROWS", 2)  # the demo's tables are short
    runs, curves = study_tables()
    files = render_report(runs, curves, META, tmp_path, n_boot=200)
    page = files["report.html"].read_text()
    answer = page.index("Answer: the paper")
    assert page.index("</table>", answer) < page.index("<details>")  # the answer stays open
    assert len(pd.read_csv(tmp_path / "claims.csv")) > 2  # though longer than the fold
    folded = [s.split(" (")[0] for s in page.split("<details><summary>")[1:]]
    assert folded == [
        "every claim row: the paper, the pair, ours, evidence",
        "the training recipe, one setting a row",
        "one row per variant: means, 95% CIs, costs",
        "paired differences against the baseline, per variant and metric",
    ]
    n_variants = runs["variant"].nunique()
    assert f"one row per variant: means, 95% CIs, costs ({n_variants} rows)</summary>" in page


def test_whole_model_cost_rows_judge_5g_macs_and_25m_params():
    from archlab.report.flops import whole_model_rows

    sweeps = {
        "inception_v3_paper": [
            {"model": "inception_v3_paper", "macs": 5.2e9, "params": 23_000_000, "is_default": 1},
            {"model": "inception_v3_paper", "macs": 9e9, "params": 30_000_000, "is_default": 0},
        ]
    }
    ref = {"model": "inception_v3_tv", "macs": 6.5e9, "params": 27_000_000}
    rows = whole_model_rows(sweeps, ref)
    verdicts = [(claim, model, verdict) for claim, _, model, _, verdict in rows]
    assert verdicts == [
        ("v3_macs", "`inception_v3_paper`", "agrees"),
        ("v3_params", "`inception_v3_paper`", "agrees"),
        ("v3_macs", "`inception_v3_tv`", "disagrees"),  # 1.3x: outside 20%
        ("v3_params", "`inception_v3_tv`", "disagrees"),
    ]


def test_a_search_front_is_chosen_on_validation_never_on_test(tmp_path):
    runs, curves = study_tables()
    runs = runs.drop(columns=["group", "is_baseline"])
    # validation ranks the variants the other way round from test
    runs["val_top1"] = 200.0 - runs["test_top1"]
    meta = {k: v for k, v in META.items() if k not in ("claims", "recipe", "seeds", "baseline")}
    files = render_report(runs, curves.iloc[0:0], {**meta, "kind": "search"}, tmp_path, n_boot=200)
    summary = pd.read_csv(tmp_path / "summary.csv")
    on_val = pareto_front(summary, "macs", "val_top1_mean").tolist()
    assert on_val != pareto_front(summary, "macs", "test_top1_mean").tolist()  # it can tell
    assert summary["pareto"].tolist() == on_val
    md = files["report.md"].read_text()
    assert "## Pareto front (fewest MACs for the validation top-1" in md


def test_principles_page_shows_principle4_as_worded_from_its_claim_rows(tmp_path):
    assert literal_section(tmp_path) is None  # no report of the study yet: no section
    d = tmp_path / "principle4-literal"
    d.mkdir()
    rows = [
        ("balance_vs_depth", "accuracy", "depth_mult=2.5 vs baseline", "+0.40 pt", "agrees"),
        ("balance_vs_width", "accuracy", "depth_mult=1 vs baseline", "−0.10 pt", "inconclusive"),
    ]
    cols = ["claim", "kind", "comparison", "ours", "evidence"]
    pd.DataFrame(rows, columns=cols).to_csv(d / "claims.csv", index=False)
    sec = literal_section(tmp_path)
    assert sec["principle"] == 4
    assert (
        sec["verdict"] == "inconclusive: balance_vs_depth: agrees; balance_vs_width: inconclusive"
    )
    files = render_principles([sec], {"title": "principles"}, tmp_path / "p")
    md = files["report.md"].read_text()
    assert "Principle 4: as worded, at twice the compute" in md
    assert "| balance_vs_depth | depth_mult=2.5 vs baseline | +0.40 pt | agrees |" in md


def test_report_tables_do_not_change_with_the_last_bits_of_a_float():
    """Two intervals equal but for summation order write the same CSV bytes, and figures survive."""
    a = pd.DataFrame({"ci_lo": [-0.03908546803936086], "p": [3.4999825000875e-05]})
    b = pd.DataFrame({"ci_lo": [-0.03908546803936139], "p": [3.4999825000875e-05]})
    assert a.to_csv(index=False) != b.to_csv(index=False)  # the churn this guards against
    assert a.to_csv(index=False, float_format=CSV_FLOAT) == b.to_csv(
        index=False, float_format=CSV_FLOAT
    )
    back = pd.read_csv(io.StringIO(a.to_csv(index=False, float_format=CSV_FLOAT)))
    assert back["ci_lo"][0] == pytest.approx(a["ci_lo"][0], rel=1e-11)
    assert back["p"][0] == pytest.approx(a["p"][0], rel=1e-11)


def test_a_row_kept_as_it_stopped_is_named_in_claims_and_design(report, tmp_path):
    _, out = report
    label = pd.read_csv(out / "claims.csv").set_index("claim").loc["conv5x5_acc", "comparison"]
    kept = {"claim": "conv5x5_acc", "comparison": label, "looks": [2, 3], "n": 3}
    record = {"rounds": [], "stopped_rows": [kept], "extended": [{"from": 3, "to": 4}]}
    record["extended"].append({"from": 4, "to": 6})
    runs, curves = study_tables()
    meta = {**META, "looks": [2, 3, 4, 5, 6], "until_decided": record}
    files = render_report(runs, curves, meta, tmp_path, n_boot=200)
    row = pd.read_csv(files["claims.csv"]).set_index("claim").loc["conv5x5_acc"]
    assert row["evidence"] == "agrees" and row["n"] == 3
    assert "of 2..3 seeds, kept when the plan grew" in row["ours"]
    md = files["report.md"].read_text()
    said = f"when the plan grew: conv5x5_acc {label} (decided at 3 seeds of looks 2..3)"
    assert said in md
    assert "the plan was extended once begun (3 → 4 → 6 seeds)" in md


def test_an_anytime_design_line_names_its_method_its_switch_and_every_round(tmp_path):
    runs, curves = study_tables()
    rounds = [
        {"round": 1, "seeds": 2, "open": [["a", "b"]], "elapsed_s": 60.0},  # before runs were kept
        {"round": 2, "seeds": 3, "runs": 9, "open": [["a", "b"]], "elapsed_s": 120.0},
        # a lagging pair grew under the same largest seed count: a look of its own
        {"round": 3, "seeds": 3, "runs": 11, "open": [], "elapsed_s": 180.0},
        {"round": 3, "seeds": 3, "runs": 11, "open": [], "elapsed_s": 5.0},  # resumed: same look
    ]
    record = {"rounds": rounds, "method": "anytime", "switched": {"from": "planned", "seeds": 2}}
    meta = {**META, "looks": [2, 3], "until_decided": record}
    files = render_report(runs, curves, meta, tmp_path, n_boot=200)
    md = files["report.md"].read_text()
    assert "judged anytime-valid (95% confidence sequences of the safe paired t-test" in md
    assert "| ours [95% confidence sequence] |" in md and "unadjusted" not in md
    assert (
        "rounds: 2 (1 open, 1.0 min into its run), 3 (9 runs, 1 open, 2.0 min into its run), " in md
    )
    assert "3 (11 runs, 0 open, 3.0 min into its run)." in md.replace(";", ".")
    assert "0.1 min" not in md
    assert "judged over planned looks until 2 seeds, then switched to anytime-valid" in md
    claims = pd.read_csv(files["claims.csv"])
    decided = claims[(claims["kind"] == "accuracy") & claims["estimate"].notna()]
    assert decided["ours"].str.contains("(95% confidence sequence)", regex=False).all()
