"""``archlab report-flops``: MACs and params of every option of every design axis.

For the mini model (28x28x1, 10 classes) and full-size Inception-v3 (``inception_v3_paper``:
the paper's layout with Fig. 5's two 3x3 in module A; 299x299x3, 1000 classes), one axis is
changed at a time from the model's default. Every row is counted three ways: closed-form per
layer, torch's FlopCounterMode / 2 and fvcore, which must agree. The paper's block-level cost
ratios are checked exactly against our blocks' analytic formulas and fvcore counts, and the
torchvision layout is listed as the reference. Output: ``flops.md``, ``flops.csv``,
``flops_macs.png``, each written atomically.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archlab.blocks.conv import conv_macs
from archlab.claims import CLAIMS
from archlab.measure import CONV_LINEAR_OPS, conv_linear_macs, fvcore_counts
from archlab.models import MODELS, build_model, default_spec
from archlab.plots import write_atomic
from archlab.variants import AXES, STEM, ArchSpec

#: The models of the report: (registry name, title, fvcore-trace every row by default?).
#: fvcore traces a real forward (about a second at 299x299), so full size traces its default.
REPORT_MODELS: tuple[tuple[str, str, bool], ...] = (
    ("inception_mini", "mini (28x28x1, 10 classes)", True),
    ("inception_v3_paper", "full-size Inception-v3, paper layout (299x299x3, 1000 classes)", False),
)
REFERENCE_MODEL = "inception_v3_tv"
#: Extra kernel sizes of the conv_nxn axis: the paper's 3x3 ratios (2/3, 8/9) need n = 3.
EXTRA_N: tuple[int, ...] = (3,)
#: Cost claims of ``archlab.claims`` checked at block level, with the kernel size n they use.
CLAIM_N: dict[str, int] = {"conv5x5_cost": 5, "nxn_cost": 3, "nxn7_cost": 7, "2x2_cost": 3}
GRID_CLAIM = "grid_cost"
#: Equal channels c and grid d of the block-level ratios (any values give the same ratio).
BLOCK_C, BLOCK_D = 16, 14


@dataclass(frozen=True)
class Variant:
    """One spec of a one-axis-at-a-time sweep: the axis and option it sets."""

    axis: str
    option: str
    spec: ArchSpec
    overrides: tuple[str, ...]  # key=value changes from the model's default; () = the default

    @property
    def label(self) -> str:
        """``default`` or the overrides, e.g. ``conv_nxn=2x2x2 n=3``."""
        return " ".join(self.overrides) or "default"


def one_axis_variants(model_name: str, extra_n: Sequence[int] = EXTRA_N) -> list[Variant]:
    """Every option of every axis, one axis changed at a time from the model's default.

    An option that exists only for some kernel sizes (2x2x2: n = 3) takes the smallest;
    conv_nxn's options are also listed at each ``extra_n``.
    """
    base = default_spec(model_name)
    out: list[Variant] = []
    for axis, reg in AXES.items():
        for option in reg.names():
            ns: list[int | None] = [None, *(extra_n if axis == "conv_nxn" else ())]
            for n in ns:
                changes: dict[str, Any] = {axis: option}
                valid_n = getattr(reg.get(option), "valid_n", None)
                if n is not None:
                    changes["n"] = n
                elif valid_n is not None and base.n not in valid_n:
                    changes["n"] = min(valid_n)
                spec = base.replace(**changes)
                overrides = tuple(f"{k}={v}" for k, v in changes.items() if getattr(base, k) != v)
                v = Variant(axis, option, spec, overrides)
                if all(o.spec != spec or o.axis != axis for o in out):
                    out.append(v)
    return out


@dataclass(frozen=True)
class Counts:
    """Costs of one model variant, counted three ways."""

    macs: int  # closed form, conv + linear
    flop_counter_macs: int  # FlopCounterMode / 2
    fvcore_macs: int | None  # fvcore conv + linear (None: not traced)
    fvcore_total: int | None  # fvcore's total (adds BatchNorm and adaptive pooling)
    fvcore_by_op: dict[str, int] | None
    params: int  # inference (aux head excluded)
    params_with_aux: int


def count(model_name: str, spec: ArchSpec, *, fvcore: bool = True) -> Counts:
    """Closed-form, FlopCounterMode and (optionally) fvcore counts of one variant, eval mode."""
    d = MODELS.get(model_name)
    shape = (1, d.in_chans, d.input_size, d.input_size)
    if fvcore:  # fvcore traces with TorchScript, which needs real tensors
        with torch.random.fork_rng():  # weight init must not move the caller's RNG
            model = build_model(model_name, spec).eval()
        x = torch.zeros(shape)
    else:
        # shapes are all the closed form and FlopCounterMode need: on the meta device nothing
        # is initialized or computed, so a full-size row costs a fraction of a real forward
        with torch.device("meta"):
            model = build_model(model_name, spec).eval()
        x = torch.zeros(shape, device="meta")
    by_op = None
    if fvcore:
        by_op = {k: int(v) for k, v in fvcore_counts(model, x)[0].by_operator().items()}
    # one forward serves two counts: the closed form's hooks run inside FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        closed = sum(conv_linear_macs(model, x).values())
    total = sum(p.numel() for p in model.parameters())
    aux = model.AuxLogits
    aux_params = sum(p.numel() for p in aux.parameters()) if aux is not None else 0
    return Counts(
        macs=closed,
        flop_counter_macs=counter.get_total_flops() // 2,  # it counts 2 flops per MAC
        fvcore_macs=None if by_op is None else sum(by_op.get(op, 0) for op in CONV_LINEAR_OPS),
        fvcore_total=None if by_op is None else sum(by_op.values()),
        fvcore_by_op=by_op,
        params=total - aux_params,
        params_with_aux=total,
    )


# --- block-level ratios -------------------------------------------------------------------------


def _fvcore_conv_macs(layers: list[nn.Module], cin: int, d: int) -> int:
    """fvcore's conv count of a chain of layers on a d x d input."""
    model = nn.Sequential(*layers).eval()
    return int(fvcore_counts(model, torch.zeros(1, cin, d, d))[0].by_operator().get("conv", 0))


def _factor_block(axis: str, option: str, n: int) -> tuple[int, int]:
    """Analytic and fvcore MACs of a factorization at equal channels c, stride 1, d x d."""
    c, d = BLOCK_C, BLOCK_D
    f = AXES[axis].get(option)
    layers = f.layers(c, c, c, n, act=nn.ReLU())
    return f.macs(c, c, c, n, d, d), _fvcore_conv_macs(layers, c, d)


def _stem_block(option: str) -> tuple[int, int]:
    """Analytic and fvcore MACs of a stem at stride 1, 'same' padding, equal widths."""
    c, d = BLOCK_C, BLOCK_D
    stem = STEM.get(option)
    layers = [m for _, m in stem.build(c, (c, c, c), 1, False)]
    return stem.macs(c, (c, c, c), 1, d, d, False), _fvcore_conv_macs(layers, c, d)


def _grid_block(option: str) -> tuple[int, int]:
    """A k -> 2k 3x3 conv before (conv_pool) or after (pool_conv) halving a d x d grid."""
    c, d = BLOCK_C, BLOCK_D
    conv = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    if option == "conv_pool":
        return conv_macs(c, 2 * c, 3, 3, d, d), _fvcore_conv_macs([conv, pool], c, d)
    return conv_macs(c, 2 * c, 3, 3, d // 2, d // 2), _fvcore_conv_macs([pool, conv], c, d)


@dataclass(frozen=True)
class BlockClaim:
    """A block-level cost ratio option / reference, and what the paper (or claims) says."""

    id: str
    axis: str
    option: str
    reference: str
    n: int | None
    expected: Fraction | None  # None: the paper gives no block-level number
    paper: str
    cost: Callable[[str], tuple[int, int]]  # option -> (analytic MACs, fvcore MACs)

    def ratios(self) -> tuple[Fraction, Fraction]:
        """Exact analytic and fvcore ratios option / reference."""
        (a_opt, f_opt), (a_ref, f_ref) = self.cost(self.option), self.cost(self.reference)
        return Fraction(a_opt, a_ref), Fraction(f_opt, f_ref)


def block_claims() -> list[BlockClaim]:
    """The paper's block-level cost ratios (from ``archlab.claims``) and the stem's."""
    out = []
    for cid, n in CLAIM_N.items():
        c = CLAIMS[cid]
        cost = functools.partial(_factor_block, c.axis, n=n)
        out.append(
            BlockClaim(cid, c.axis, c.option, c.reference, n, c.expected, c.paper_number, cost)
        )
    g = CLAIMS[GRID_CLAIM]
    out.append(
        BlockClaim(
            g.id, g.axis, g.option, g.reference, None, g.expected, g.paper_number, _grid_block
        )
    )
    out.append(
        BlockClaim(
            "stem_cost",
            "stem",
            "3x3x3",
            "7x7",
            None,
            None,
            "no block number (Table 3: whole nets 3.8 -> 4.8 Bn ops)",
            _stem_block,
        )
    )
    return out


# --- the report ---------------------------------------------------------------------------------


def _fmt_ratio(r: Fraction | float | None) -> str:
    if r is None:
        return ""
    if isinstance(r, Fraction):
        return f"{r.numerator}/{r.denominator} = {float(r):.4f}" if r.denominator != 1 else str(r)
    return f"{r:.4f}"


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


#: A block claim with its exact analytic and fvcore-counted ratios.
BlockResult = tuple[BlockClaim, Fraction, Fraction]


def block_results() -> list[BlockResult]:
    """Every block claim with its ratios (fvcore traces each block once)."""
    return [(bc, *bc.ratios()) for bc in block_claims()]


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


def _md_table(rows: list[dict[str, Any]], columns: dict[str, str]) -> str:
    """Markdown table of ``rows`` with ``columns`` (key -> header)."""

    def cell(v: object) -> str:
        if isinstance(v, bool):
            return "yes" if v else ""
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("---:" if k in NUMERIC else "---" for k in columns) + "|"
    body = ["| " + " | ".join(cell(r[k]) for k in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


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


def _markdown(
    sweeps: dict[str, list[dict[str, Any]]],
    blocks: list[dict[str, Any]],
    ref: dict[str, Any],
) -> str:
    extra = ref["fvcore_total"] - ref["macs"]
    extra_ops = ", ".join(f"{k} {v:,}" for k, v in sorted(ref["fvcore_extra"].items()))
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
        "| quantity | value |",
        "|---|---:|",
        f"| params (no aux head) | {ref['params']:,} |",
        f"| params with aux head | {ref['params_with_aux']:,} |",
        f"| MACs, conv + linear | {ref['macs']:,} |",
        f"| fvcore total | {ref['fvcore_total']:,} |",
        f"| fvcore total - MACs | {extra:,} ({extra_ops}) |",
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
        _md_table(blocks, {k: k for k in blocks[0]}),
        "",
        "The grid-reduction ratio is conv_pool / pool_conv for one 3x3 conv k -> 2k: the paper's "
        "text gives 2d²k² vs 2(d/2)²k² (pool first costs a quarter), while its Fig. 9 caption "
        "says the conv-first version is '3 times more expensive'.",
        "",
    ]
    for model, rows in sweeps.items():
        lines += [f"## {titles[model]}: `{model}`", "", _md_table(rows, SWEEP_COLUMNS), ""]
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

    titles = {m: t for m, t, _ in REPORT_MODELS}
    n = max(len(rows) for rows in sweeps.values())
    fig = Figure(figsize=(13, 0.32 * n + 2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (model, rows) in enumerate(sweeps.items()):
        ax = fig.add_subplot(1, len(sweeps), i + 1)
        scale, unit = (1e9, "G") if max(r["macs"] for r in rows) >= 1e9 else (1e6, "M")
        base = next(r["macs"] for r in rows if r["is_default"]) / scale
        vals = [r["macs"] / scale for r in rows]
        names = [_bar_label(r) for r in rows]
        colors = ["tab:orange" if r["is_default"] else "tab:blue" for r in rows]
        pos = list(range(len(rows)))
        ax.barh(pos, vals, color=colors)
        ax.axvline(base, color="black", ls="--", lw=1, label=f"default: {base:.3f} {unit}")
        for p, v, r in zip(pos, vals, rows, strict=True):
            ax.annotate(
                f"{r['macs_ratio']:.3f}x",
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
        ax.set_xlabel(f"MACs per image ({unit}, 1 MAC = 1 multiply-add; conv + linear, eval)")
        ax.set_title(titles[model], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "MACs per design option, one axis changed from the default (orange bars = default;"
        " labels: ratio to it)",
        fontsize=10,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return write_atomic(path, buf.getvalue())


def write_report(out_dir: Path | str, *, fvcore_all: bool = False) -> dict[str, Path]:
    """Count every variant and write flops.md, flops.csv and flops_macs.png to ``out_dir``.

    ``fvcore_all`` traces every full-size row with fvcore too (about a second each).
    """
    out = Path(out_dir)
    threads = torch.get_num_threads()
    # counting needs no parallel speed, and OpenMP threads on busy cores are several times
    # slower than one thread (DESIGN.md section 7)
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
    return paths
