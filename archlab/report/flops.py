"""``archlab report-flops``: MACs and params of every option of every design axis.

For the mini model (28x28x1, 10 classes) and full-size Inception-v3 (``inception_v3_paper``:
the paper's layout with Fig. 5's two 3x3 in module A; 299x299x3, 1000 classes), one axis is
changed at a time from the model's default. Every row is counted three ways: closed-form per
layer, torch's FlopCounterMode / 2 and fvcore, which must agree. The paper's block-level cost
ratios are checked exactly against our blocks' analytic formulas and fvcore counts, and the
torchvision layout is listed as the reference. The counting is ``archlab.report.sweep``'s;
this module tabulates, plots and writes ``flops.md``, ``flops.csv`` and ``flops_macs.png``,
each atomically.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from archlab.arch.cost import CONV_LINEAR_OPS
from archlab.arch.models import default_spec
from archlab.arch.spec import ArchSpec
from archlab.io import write_atomic
from archlab.report.doc import fmt, macs_unit, md_table
from archlab.report.sweep import (
    BLOCK_C,
    BLOCK_D,
    BlockClaim,
    BlockResult,
    Counts,
    block_results,
    count,
    one_axis_variants,
)

#: The models of the report: (registry name, title, fvcore-trace every row by default?).
#: fvcore traces a real forward (about a second at 299x299), so full size traces its default.
REPORT_MODELS: tuple[tuple[str, str, bool], ...] = (
    ("inception_mini", "mini (28x28x1, 10 classes)", True),
    ("inception_v3_paper", "full-size Inception-v3, paper layout (299x299x3, 1000 classes)", False),
)
REFERENCE_MODEL = "inception_v3_tv"

# --- the report ---------------------------------------------------------------------------------


def _fmt_ratio(r: Fraction | float | None) -> str:
    if r is None:
        return ""
    if isinstance(r, Fraction):
        exact = f"{r.numerator}/{r.denominator} = {fmt('ratio', r)}"
        return exact if r.denominator != 1 else str(r)
    return fmt("ratio", r)


def _yes(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def sweep_rows(model_name: str, *, fvcore_all: bool = True) -> list[dict[str, Any]]:
    """One row per one-axis variant: counts, ratios to the default, three-way agreement.

    fvcore traces every row with ``fvcore_all``, else only the default row.
    """
    cache: dict[ArchSpec, Counts] = {}
    rows = []
    for v in one_axis_variants(model_name):
        if v.spec not in cache:
            traced = fvcore_all or not v.overrides
            cache[v.spec] = count(model_name, v.spec, fvcore=traced)
        rows.append((v, cache[v.spec]))
    base = cache[default_spec(model_name)]
    out = []
    for v, c in rows:
        out.append(
            {
                "model": model_name,
                "axis": v.axis,
                "option": v.option,
                "spec": v.label,
                "n": v.spec.n,
                "is_default": not v.overrides,
                "macs": c.macs,
                "params": c.params,
                "params_with_aux": c.params_with_aux,
                "macs_ratio": c.macs / base.macs,
                "params_ratio": c.params / base.params,
                "flopcounter_agrees": _yes(c.flop_counter_macs == c.macs),
                "fvcore_macs": c.fvcore_macs,
                "fvcore_agrees": (
                    "not traced" if c.fvcore_macs is None else _yes(c.fvcore_macs == c.macs)
                ),
                "fvcore_total": c.fvcore_total,
            }
        )
    return out


def add_claims(rows: list[dict[str, Any]], blocks: list[BlockResult]) -> None:
    """Put each block claim's paper/block/whole-model ratios on its option's row."""
    for row in rows:
        row.update(claim="", paper_ratio="", block_ratio="", block_agrees="", model_ratio="")
    for bc, analytic, _ in blocks:

        def find(option: str, bc: BlockClaim = bc) -> dict[str, Any] | None:
            for r in rows:
                if r["axis"] == bc.axis and r["option"] == option:
                    if bc.n is None or bc.axis != "conv_nxn" or r["n"] == bc.n:
                        return r
            return None

        opt, ref = find(bc.option), find(bc.reference)
        if opt is None or ref is None:
            continue
        opt.update(
            claim=f"{bc.id}: {bc.option} / {bc.reference}",
            paper_ratio=_fmt_ratio(bc.expected) if bc.expected is not None else "none",
            block_ratio=_fmt_ratio(analytic),
            block_agrees=_yes(None if bc.expected is None else analytic == bc.expected),
            model_ratio=_fmt_ratio(opt["macs"] / ref["macs"]),
        )


def block_rows(
    blocks: list[BlockResult], sweeps: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The block-level claims table: paper vs analytic vs fvcore, and whole-model ratios."""
    out = []
    for bc, analytic, counted in blocks:
        row = {
            "claim": bc.id,
            "ratio": f"{bc.option} / {bc.reference}" + (f" (n={bc.n})" if bc.n else ""),
            "paper": bc.paper,
            "expected": _fmt_ratio(bc.expected) if bc.expected is not None else "none",
            "analytic": _fmt_ratio(analytic),
            "fvcore": _fmt_ratio(counted),
            "agrees exactly": (
                "n/a" if bc.expected is None else _yes(analytic == counted == bc.expected)
            ),
        }
        for model, rows in sweeps.items():
            hit = [r for r in rows if r.get("claim", "").startswith(f"{bc.id}:")]
            row[f"whole {model}"] = hit[0]["model_ratio"] if hit else ""
        out.append(row)
    return out


def reference_row() -> dict[str, Any]:
    """torchvision's Inception-v3 counted like every other row, with fvcore's extra ops."""
    c = count(REFERENCE_MODEL, default_spec(REFERENCE_MODEL), fvcore=True)
    assert c.fvcore_by_op is not None
    extra = {k: v for k, v in c.fvcore_by_op.items() if k not in CONV_LINEAR_OPS}
    return {
        "model": REFERENCE_MODEL,
        "macs": c.macs,
        "params": c.params,
        "params_with_aux": c.params_with_aux,
        "fvcore_total": c.fvcore_total,
        "fvcore_extra": extra,
        "flopcounter_agrees": _yes(c.flop_counter_macs == c.macs),
        "fvcore_agrees": _yes(c.fvcore_macs == c.macs),
    }


CSV_COLUMNS = [
    "model",
    "axis",
    "option",
    "spec",
    "n",
    "is_default",
    "macs",
    "params",
    "params_with_aux",
    "macs_ratio",
    "params_ratio",
    "flopcounter_agrees",
    "fvcore_macs",
    "fvcore_agrees",
    "fvcore_total",
    "claim",
    "paper_ratio",
    "block_ratio",
    "block_agrees",
    "model_ratio",
]


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {k: f"{v:.6f}" if isinstance(v := r.get(k, ""), float) else v for k in CSV_COLUMNS}
        )
    return buf.getvalue()


NUMERIC = {"macs", "params", "macs_ratio", "params_ratio", "fvcore_total", "params_with_aux"}
MACS_COLUMNS = {"macs", "fvcore_total", "fvcore_macs"}  # shown in the table's unit, M or G


def _cell(key: str, v: object, unit: str) -> str:
    if isinstance(v, bool):
        return "yes" if v else ""
    if key in MACS_COLUMNS and isinstance(v, int | float):
        return fmt("macs", v, unit=unit)
    if isinstance(v, int):
        return fmt("count", v)
    if isinstance(v, float):
        return fmt("ratio", v)
    return str(v)


def _table(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    """Markdown table of ``rows`` with ``columns`` (key -> header); numbers right-aligned.

    MACs columns are in M, or G when the table's largest count reaches 1e9 (the header says
    which); exact counts are in flops.csv.
    """
    unit = macs_unit(r[k] for r in rows for k in columns if k in MACS_COLUMNS)
    headers = [f"{h} ({unit})" if k in MACS_COLUMNS else h for k, h in columns.items()]
    align = ["right" if k in NUMERIC else "left" for k in columns]
    cells = ([_cell(k, r[k], unit) for k in columns] for r in rows)
    return md_table(headers, cells, align=align)


SWEEP_COLUMNS = {
    "axis": "axis",
    "option": "option",
    "spec": "changed from default",
    "macs": "MACs",
    "macs_ratio": "MACs / default",
    "params": "params",
    "params_ratio": "params / default",
    "fvcore_agrees": "fvcore = closed form",
    "flopcounter_agrees": "FlopCounterMode/2 = closed form",
    "claim": "paper claim",
    "paper_ratio": "paper ratio",
    "block_ratio": "block ratio (formula)",
    "block_agrees": "block = paper",
    "model_ratio": "whole-model ratio",
}


def _with_exact(macs: int) -> str:
    """MACs in M or G, then the exact count: the reference is checked digit for digit."""
    return f"{fmt('macs', macs)} ({fmt('count', macs)})"


def _reference_table(ref: dict[str, Any]) -> str:
    extra = ref["fvcore_total"] - ref["macs"]
    extra_ops = ", ".join(f"{k} {fmt('count', v)}" for k, v in sorted(ref["fvcore_extra"].items()))
    rows = [
        ("params (no aux head)", fmt("count", ref["params"])),
        ("params with aux head", fmt("count", ref["params_with_aux"])),
        ("MACs, conv + linear", _with_exact(ref["macs"])),
        ("fvcore total", _with_exact(ref["fvcore_total"])),
        ("fvcore total - MACs", f"{fmt('count', extra)} ({extra_ops})"),
    ]
    return md_table(["quantity", "value"], rows, align=["left", "right"])


#: Whole-model claims (Sec. 8, Tables 3-4): Inception-v3 costs about 5 G multiply-adds and has
#: fewer than 25 M parameters. "About": within 20% (the paper rounds; its layout details vary).
PAPER_MACS, PAPER_MACS_TOLERANCE, PAPER_MAX_PARAMS = 5e9, 0.2, 25e6


def whole_model_rows(
    sweeps: dict[str, list[dict[str, Any]]], ref: dict[str, Any]
) -> list[tuple[str, str, str, str, str]]:
    """(claim, paper, model, ours, verdict) for the full-size models' total cost."""
    models = [
        (r["model"], r["macs"], r["params"])
        for r in sweeps.get("inception_v3_paper", [])
        if r.get("is_default")
    ][:1]
    models.append((ref["model"], ref["macs"], ref["params"]))
    rows = []
    for model, macs, params in models:
        close = abs(macs / PAPER_MACS - 1) <= PAPER_MACS_TOLERANCE
        rows.append(
            (
                "v3_macs",
                "about 5 G multiply-adds (Sec. 8, Table 3)",
                f"`{model}`",
                f"{fmt('macs', macs)} MACs ({fmt('ratio', macs / PAPER_MACS)}x 5 G)",
                "agrees" if close else "disagrees",
            )
        )
        rows.append(
            (
                "v3_params",
                "fewer than 25 M parameters (Sec. 8)",
                f"`{model}`",
                f"{fmt('count', params)} (no aux head)",
                "agrees" if params < PAPER_MAX_PARAMS else "disagrees",
            )
        )
    return rows


def _markdown(
    sweeps: dict[str, list[dict[str, Any]]],
    blocks: list[dict[str, Any]],
    ref: dict[str, Any],
) -> str:
    titles = {m: t for m, t, _ in REPORT_MODELS}
    lines = [
        "# MACs and parameters of every design option",
        "",
        "1 MAC = 1 multiply-add; fvcore calls MACs flops; torch's FlopCounterMode counts 2 flops "
        "per MAC. `MACs` are conv + linear multiply-adds per image in eval mode (the auxiliary "
        "head does not run); `params` exclude the auxiliary head. Every row is counted three "
        "ways (closed-form per layer, FlopCounterMode / 2, fvcore) and the columns say whether "
        "they agree exactly.",
        "",
        "Full size uses `inception_v3_paper`: torchvision's layout with the paper's Fig. 5 "
        "module A (two 3x3 in place of the 5x5), the paper's Inception-v3. One axis is changed "
        "at a time from each model's default; each axis's default row is the model's default.",
        "",
        "## Reference: torchvision's Inception-v3 (`inception_v3_tv`, 299x299x3)",
        "",
        _reference_table(ref),
        "",
        f"fvcore = closed form: {ref['fvcore_agrees']}; FlopCounterMode/2 = closed form: "
        f"{ref['flopcounter_agrees']}. fvcore's total adds eval-mode BatchNorm (2 per "
        "element: scale and shift) and the adaptive average pool (1 per input element) to the "
        "conv + linear MACs; those are not multiply-adds with a layer's weights (and BN folds "
        "into the convs at inference), so archlab's `macs` leave them out.",
        "",
        "## Block-level cost ratios (paper) vs our blocks",
        "",
        f"Equal channels c = {BLOCK_C} in and out (and between factors), stride 1, 'same' "
        f"padding, a {BLOCK_D}x{BLOCK_D} grid; any c and grid give the same ratio. `analytic` "
        "comes from the registered blocks' closed-form `.macs` formulas, `fvcore` from counting "
        "the built blocks; both are exact fractions. The whole-model columns are the same "
        "option / reference MAC ratio of the full networks, where the rest of the net dilutes "
        "it.",
        "",
        _table(blocks, {k: k for k in blocks[0]}),
        "",
        "The grid-reduction ratio is conv_pool / pool_conv for one 3x3 conv k -> 2k: the paper's "
        "text gives 2d²k² vs 2(d/2)²k² (pool first costs a quarter), while its Fig. 9 caption "
        "says the conv-first version is '3 times more expensive'.",
        "",
        "## Whole-model cost (paper) vs our full-size models",
        "",
        f"'About 5 G' counts as agreeing within {fmt('percent', 100 * PAPER_MACS_TOLERANCE)}%.",
        "",
        md_table(["claim", "paper", "model", "ours", "verdict"], whole_model_rows(sweeps, ref)),
        "",
    ]
    for model, rows in sweeps.items():
        lines += [f"## {titles[model]}: `{model}`", "", _table(rows, SWEEP_COLUMNS), ""]
    lines += [
        "![MACs per variant](flops_macs.png)",
        "",
        "Regenerate with `make flops` (`archlab report-flops --out reports/flops`; "
        "`--fvcore-all` traces every full-size row with fvcore too).",
        "",
    ]
    return "\n".join(lines)


def _bar_label(row: dict[str, Any]) -> str:
    """``axis: option``, with n where the row's kernel size matters or was changed."""
    n_changed = any(w.startswith("n=") for w in row["spec"].split())
    shown = row["axis"] == "conv_nxn" or n_changed
    return f"{row['axis']}: {row['option']}" + (f" (n={row['n']})" if shown else "")


def _plot(sweeps: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Horizontal MAC bars per variant, one panel per model, the default marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from archlab.report.plots import MACS_SCALE, GroupedTicks, save_png

    titles = {m: t for m, t, _ in REPORT_MODELS}
    n = max(len(rows) for rows in sweeps.values())
    fig = Figure(figsize=(13, 0.32 * n + 2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (model, rows) in enumerate(sweeps.items()):
        ax = fig.add_subplot(1, len(sweeps), i + 1)
        unit = macs_unit(r["macs"] for r in rows)
        scale = MACS_SCALE[unit]
        base_macs = next(r["macs"] for r in rows if r["is_default"])
        base = base_macs / scale
        vals = [r["macs"] / scale for r in rows]
        names = [_bar_label(r) for r in rows]
        colors = ["tab:orange" if r["is_default"] else "tab:blue" for r in rows]
        pos = list(range(len(rows)))
        ax.barh(pos, vals, color=colors)
        ax.axvline(base, color="black", ls="--", lw=1, label=f"default: {fmt('macs', base_macs)}")
        for p, v, r in zip(pos, vals, rows, strict=True):
            ax.annotate(
                f"{fmt('ratio', r['macs_ratio'])}x",
                (v, p),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                # a backing box keeps the label readable where it crosses the default's line
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
            )
        ax.set_yticks(pos, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(vals) * 1.15)
        ax.xaxis.set_major_formatter(GroupedTicks())
        ax.set_xlabel(f"MACs per image ({unit}, 1 MAC = 1 multiply-add; conv + linear, eval)")
        ax.set_title(titles[model], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "MACs per design option, one axis changed from the default (orange bars = default;"
        " labels: ratio to it)",
        fontsize=10,
    )
    return save_png(fig, path)


def write_report(out_dir: Path | str, *, fvcore_all: bool = False) -> dict[str, Path]:
    """Count every variant and write flops.md, flops.csv and flops_macs.png to ``out_dir``.

    ``fvcore_all`` traces every full-size row with fvcore too (about a second each).
    """
    out = Path(out_dir)
    threads = torch.get_num_threads()
    # counting needs no parallel speed, and OpenMP threads on busy cores are several times
    # slower than one thread (measured; see the bench report)
    torch.set_num_threads(1)
    try:
        blocks = block_results()
        sweeps = {m: sweep_rows(m, fvcore_all=fvcore_all or all_) for m, _, all_ in REPORT_MODELS}
        for rows in sweeps.values():
            add_claims(rows, blocks)
        ref = reference_row()
    finally:
        torch.set_num_threads(threads)
    paths = {
        "csv": write_atomic(out / "flops.csv", _csv([r for rows in sweeps.values() for r in rows])),
        "png": _plot(sweeps, out / "flops_macs.png"),
    }
    md = _markdown(sweeps, block_rows(blocks, sweeps), ref)
    paths["md"] = write_atomic(out / "flops.md", md)
    paths["claims"] = write_atomic(out / MODEL_CLAIMS, _model_claims_csv(sweeps, ref))
    return paths


#: the whole-model cost claims as scorecard rows (``archlab report-index`` adds them)
MODEL_CLAIMS = "model_claims.csv"


def _model_claims_csv(sweeps: dict[str, list[dict[str, Any]]], ref: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["claim", "kind", "paper", "comparison", "ours", "evidence"])
    for claim, paper, model, ours, verdict in whole_model_rows(sweeps, ref):
        w.writerow([claim, "cost", paper, f"{model.strip('`')} (whole model)", ours, verdict])
    return buf.getvalue()
