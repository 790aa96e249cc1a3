"""The principle studies in words and pictures, and the page that gathers them.

``run_principle`` runs one analysis of ``archlab.analysis.principles`` and renders it: a plot
(``principleN.png``: the data with the fitted relation and its 95% band,
``archlab.report.principle_plots``), a verdict sentence starting with its evidence word
("agrees: ...", "disagrees: ...", "inconclusive: ...", so a claim table can reuse it), a detail
table with one row per configuration and, when the runs cannot carry the fitted figure, what
they lack. ``render_principles`` writes ``reports/principles/``: the four verdicts on one page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from archlab import __version__
from archlab.analysis.bands import quadratic_band, squeeze_band
from archlab.analysis.claims import combine
from archlab.analysis.principle_looks import LOOK_FACT, judge_over_looks
from archlab.analysis.principles import (
    SQUEEZE_ORDER,
    Estimate,
    Paired,
    PrincipleResult,
    principle_number,
)
from archlab.analysis.stats import SlopeResult
from archlab.report.doc import (
    Doc,
    fmt,
    fmt_date,
    fmt_end,
    fmt_interval,
    macs_unit,
    quantity_of,
    write_doc,
)
from archlab.report.plots import MACS_NOTE, caption_from, metric_label, plot_xy_ci
from archlab.report.principle_plots import (
    plot_depth_quadratic,
    plot_squeeze_lines,
    plot_threshold_curves,
    plot_tost,
)

__all__ = ["Rendered", "evidence_of", "principle_of", "render_principles", "run_principle"]


class Rendered(NamedTuple):
    """What one principle renders to: plot, verdict sentence, detail table, what is missing.

    ``plot`` is None when the runs give nothing to draw; ``missing`` says which runs the
    fitted figure needs ("" when it is drawn).
    """

    plot: Path | None
    verdict: str
    detail: pd.DataFrame
    missing: str = ""


#: The quantity of each numeric key column of a detail table (the knobs a principle varies).
KEY_QUANTITY = {
    "min_repr": "ratio",
    "width_mult": "setting",
    "depth_mult": "setting",
    "reduce_ratio": "setting",
    "bottleneck_ratio": "setting",
    "squeeze_ratio": "setting",
}


def run_principle(
    n: int, runs: pd.DataFrame, curves: pd.DataFrame | None, out_dir: Path, **options: Any
) -> Rendered:
    """Analyse principle ``n`` on ``runs`` (and ``curves``), draw its plot into ``out_dir``.

    ``options`` go to the analysis (``metric``; ``threshold`` for 2, ``tolerance`` for 4; the
    study's planned ``looks`` and sequential ``method``: ``judge_over_looks``).
    """
    result = judge_over_looks(n, runs, curves, **options)
    rendered = _RENDER[n](result, caption_from(runs), Path(out_dir))
    look = result.facts.get(LOOK_FACT)
    # principle 2's paired sentence says it itself
    if result.facts.get("anytime") and "paired_speed" not in result.facts:
        note = (
            " (its intervals are anytime-valid 95% confidence sequences, its tests read off them: "
            "the study added seeds round by round)"
        )
        return rendered._replace(verdict=rendered.verdict + note)
    if not look:
        return rendered
    # the intervals in the sentence are at the look's level, not 95%: say so
    when = "decided" if look["decided"] else "still open"
    note = (
        f" ({when} at look {look['look']} of {look['of']} planned, {look['seeds']} seeds: "
        f"intervals and tests at that look's group-sequential level, "
        f"{fmt('percent', 100 * (1 - look['level']))}% confidence)"
    )
    return rendered._replace(verdict=rendered.verdict + note)


def evidence_of(verdict: str) -> str:
    """The evidence word a principle verdict starts with."""
    return verdict.split(":", 1)[0].strip()


# --- pieces shared by the four renderings --------------------------------------------------------


def _detail(per: pd.DataFrame, keys: Sequence[str], metrics: Mapping[str, str]) -> pd.DataFrame:
    """The per-configuration table as shown: keys, n, "mean [CI]" per metric, MACs."""
    out = per[list(keys)].copy()
    for k in keys:
        if k in KEY_QUANTITY:
            out[k] = per[k].map(lambda v, q=KEY_QUANTITY[k]: fmt(q, v))
    out["n"] = per["n"]
    for m, label in metrics.items():
        out[label] = [
            fmt_interval(quantity_of(m), a, b, c)
            for a, b, c in zip(per[f"{m}_mean"], per[f"{m}_lo"], per[f"{m}_hi"], strict=True)
        ]
    unit = macs_unit(per["macs"])
    out[f"MACs ({unit})"] = per["macs"].map(lambda v: fmt("macs", v, unit=unit))
    return out


def _points(per: pd.DataFrame, x: str, metric: str, **extra: Any) -> pd.DataFrame:
    """Input of plot_xy_ci: x, y, lo, hi, MACs note, plus series/flag columns when given."""
    pts = pd.DataFrame(
        {
            "x": per[x].astype(float),
            "y": per[f"{metric}_mean"],
            "lo": per[f"{metric}_lo"],
            "hi": per[f"{metric}_hi"],
            "note": [f"{fmt('macs', m)} MACs" for m in per["macs"]],
        }
    )
    return pts.assign(**extra)


def _levels(res: PrincipleResult) -> tuple[str, str]:
    """The confidence (%) of a result's intervals and of its TOST intervals, as shown."""
    look = res.facts.get(LOOK_FACT)
    if res.facts.get("anytime"):
        return "95", "95"  # a TOST read off the 95% confidence sequence
    alpha = float(look["level"]) if look else 0.05

    def pct(a: float) -> str:
        text = fmt("percent", 100 * (1 - a))
        return text.removesuffix(".0")

    return pct(alpha), pct(2 * alpha)


def _slope_text(res: SlopeResult, unit: str, quantity: str = "accuracy", level: str = "95") -> str:
    slope, lo, hi = (fmt(quantity, v, sign=True) for v in (res.slope, res.lo, res.hi))
    return (
        f"slope {slope} {unit}, {level}% CI [{lo}, {hi}] (union of seed bootstrap and t over "
        f"per-seed slopes), r = {fmt('correlation', res.r)}, {res.n_points} runs over "
        f"{res.n_clusters} seeds"
    )


def _diff_text(d: Paired, quantity: str = "accuracy", unit: str = "pt") -> str:
    mean = fmt(quantity, d.mean, sign=True)
    # an anytime-valid sequence may still be unbounded: its ends show as infinite
    lo, hi = (fmt_end(quantity, v, sign=True) or "n/a" for v in (d.lo, d.hi))
    return f"{mean} {unit} [{lo}, {hi}], n={d.n}"


# --- one rendering per principle -----------------------------------------------------------------


def _estimate_text(e: Estimate, unit: str = "pt") -> str:
    value, lo, hi = (fmt("accuracy", v, sign=True) for v in (e.value, e.lo, e.hi))
    return f"{value} {unit} [{lo}, {hi}]"


#: What the fitted figure needs when the stored runs are an earlier design of the study.
MISSING = {
    1: "the fitted lines per squeeze place: need runs of the squeeze design (squeeze_at x "
    "squeeze_ratio at equal MACs, studies/principle1-bottleneck.yaml); these are the earlier "
    "smallest-representation sweep",
    2: "validation curves of expanded vs plain: need runs of the iso-MAC design (the two coarse "
    "modules at equal MACs with validation curves, studies/principle2-highdim.yaml); these are "
    "the earlier width sweep",
    3: "the paired differences against the equivalence margin: need at least 4 reduce_ratio "
    "values at equal MACs (studies/principle3-reduction.yaml)",
}


def _render1(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    if "squeeze_at" in res.keys:
        return _render1_squeeze(res, caption, out_dir)
    per, metric = res.per, res.metric
    path = plot_xy_ci(
        _points(per, "min_repr", metric, series=per["grid_reduction"].astype(str)),
        out_dir / "principle1.png",
        xlabel="smallest representation H*W*C / the first stage's (log2 scale)",
        ylabel=metric_label(metric),
        title="principle 1: avoid representational bottlenecks",
        caption=caption,
        logx=True,
    )
    unit = "pt per doubling of the smallest representation"
    verdict = f"{res.evidence}: " + _slope_text(res.facts["slope"], unit, level=_levels(res)[0])
    detail = _detail(per, res.keys, {metric: metric_label(metric)})
    return Rendered(path, verdict, detail, MISSING[1])


def _render1_squeeze(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    per, metric, f = res.per, res.metric, res.facts
    places = f.get("places") or [p for p in SQUEEZE_ORDER if (per["squeeze_at"] == p).any()]
    squeezed = per[per["squeeze_at"] != "none"]["squeeze_ratio"]
    band = squeeze_band(f["fit"], places, squeezed.tolist()) if "fit" in f else None
    path = plot_squeeze_lines(
        per,
        band,
        out_dir / "principle1.png",
        metric=metric,
        places=places,
        slopes=f.get("slopes"),
        caption=caption,
    )
    detail = _detail(per, res.keys, {metric: metric_label(metric)})
    if "mean" not in f:
        verdict = f"inconclusive: {f.get('n_places', 0)} squeeze places, at least 2"
        lacks = "fitted lines: need 2 squeeze places and 2 seeds"
        return Rendered(path, verdict, detail, lacks)
    slopes = "; ".join(f"{p}: {_estimate_text(e)}" for p, e in f["slopes"].items())
    conf, tost = _levels(res)
    verdict = (
        f"{res.evidence}: loss per halving of the channels kept, by place ({conf}% CI): {slopes}; "
        f"average {_estimate_text(f['mean'])}; early ({f['places'][0]}) minus late "
        f"({f['places'][-1]}): {_estimate_text(f['early_minus_late'])} (OLS with seed "
        "intercepts; agrees when the average and the early-minus-late difference are both "
        "above 0"
    )
    if "margin" in f:
        i90 = f["early_minus_late_90"]
        verdict += (
            f"; smaller than claimed when the squeeze hurts but early minus late lies inside "
            f"±{fmt('accuracy', f['margin'])} pt per halving at {tost}% "
            f"([{fmt('accuracy', i90.lo, sign=True)}, {fmt('accuracy', i90.hi, sign=True)}])"
        )
    verdict += ")"
    return Rendered(path, verdict, detail)


def _render2(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    if "paired_speed" in res.facts:
        return _render2_paired(res, caption, out_dir)
    per, metric, width = res.per, res.metric, res.facts["width"]
    target = f"epochs to {fmt('accuracy', res.facts['threshold'])}% train top-1"
    points = _points(per, width, "epochs", series=per["coarse_module"].astype(str))
    points["note"] = [
        f"final {fmt('accuracy', f)}%, {n}"
        for f, n in zip(per[f"{metric}_mean"], points["note"], strict=True)
    ]
    path = plot_xy_ci(
        points,
        out_dir / "principle2.png",
        xlabel=f"coarse-grid width ({width}, log2 scale)",
        ylabel=target,
        title="principle 2: higher-dimensional representations train faster",
        caption=caption,
        logx=True,
    )
    verdict = (
        f"{res.evidence}: "
        f"{_slope_text(res.facts['speed'], f'{target} per doubling of width', 'epochs')}; "
        f"final {metric_label(metric)}: {_slope_text(res.facts['final'], 'pt per doubling')}"
    )
    detail = _detail(per, res.keys, {"epochs": target, metric: metric_label(metric)})
    detail.insert(3, "not reached", per["epochs_missing"])
    return Rendered(path, verdict, detail, MISSING[2])


def _render2_paired(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    per, metric, f = res.per, res.metric, res.facts
    curve = metric_label(f["curve"]).removesuffix(" (%)")  # "80% validation top-1", one unit
    target = f"epochs to {fmt('accuracy', f['threshold'])}% {curve}"
    band = f["curve_band"]
    path, lacks = None, f"validation curves: no run has the {f['curve']} curve"
    if len(band):
        path, lacks = out_dir / "principle2.png", ""
        plot_threshold_curves(
            band, per, path, threshold=f["threshold"], curve=f["curve"], caption=caption
        )
    verdict = (
        f"{res.evidence}: at equal MACs, expanded minus plain coarse module: "
        f"{_diff_text(f['paired_speed'], 'epochs', 'epochs')} "
        f"to {fmt('accuracy', f['threshold'])}% {curve} "
        + (
            "(the threshold fixed in the study file)"
            if f["threshold_given"]
            else "(90% of the weakest run's best: no threshold fixed in advance)"
        )
        + f"; final {metric_label(metric)}: "
        f"{_diff_text(f['paired_final'])}"
    )
    if "speed_margin" in f:
        verdict += (
            f" (equivalent when two one-sided tests put the epochs inside "
            f"±{fmt('accuracy', f['speed_margin'])} epochs, half the once-an-epoch sampling of the "
            f"curves: TOST p = {f['speed_tost_p']:.3f})"
        )
    if f.get("anytime"):
        verdict += (
            "; the epochs' interval and TOST are anytime-valid (a 95% confidence sequence): the "
            "study added seeds round by round"
        )
    detail = _detail(per, res.keys, {"epochs": target, metric: metric_label(metric)})
    detail.insert(3, "not reached", per["epochs_missing"])
    return Rendered(path, verdict, detail, lacks)


def _render3(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    per, metric, f = res.per, res.metric, res.facts
    detail = _detail(per, res.keys, {metric: metric_label(metric)})
    if "tost" in f:
        path = plot_tost(
            _tost_rows(f),
            out_dir / "principle3.png",
            reference=f["high"],
            margin=f["margin"],
            metric=metric,
            caption=caption,
            levels=_levels(res),
        )
        parts = "; ".join(
            f"r={fmt('setting', r)}: {_diff_text(d)}, TOST p={fmt('p_value', p)}"
            + (" (equivalent)" if ok else "")
            for r, d, p, ok in f["tost"]
        )
        smallest = (
            f"the smallest ratio still equivalent is {fmt('setting', f['smallest'])}"
            if f["smallest"] is not None
            else "no reduced ratio is shown equivalent"
        )
        verdict = (
            f"{res.evidence}: at equal MACs, {smallest} (margin +-{fmt('setting', f['margin'])}"
            f" pt, Holm across ratios); vs r={fmt('setting', f['high'])}: {parts}"
        )
        return Rendered(path, verdict, detail)
    path = plot_xy_ci(
        _points(per, "reduce_ratio", metric),
        out_dir / "principle3.png",
        xlabel="1x1 reduction ratio (reduced width / branch width, log2 scale)",
        ylabel=metric_label(metric),
        title="principle 3: spatial aggregation over reduced embeddings",
        caption=caption,
        logx=True,
    )
    if not f:
        verdict = f"inconclusive: {len(per)} reduce_ratio values, at least 4 needed"
        return Rendered(path, verdict, detail, MISSING[3])
    verdict = (
        f"{res.evidence}: strongest reduction ({fmt('setting', f['low'])}) vs weakest "
        f"({fmt('setting', f['high'])}): {_diff_text(f['diff'])} seeds, at "
        f"{fmt('ratio', f['macs_ratio'])}x the MACs; "
        f"'without much loss' = not below {fmt('setting', -f['margin'])} pt"
    )
    return Rendered(path, verdict, detail, MISSING[3])


def _tost_rows(f: Mapping[str, Any]) -> pd.DataFrame:
    """Principle 3's figure input: per reduced ratio, its 95% and 90% paired intervals."""
    return pd.DataFrame(
        [
            {
                "ratio": r,
                "mean": d.mean,
                "lo": d.lo,
                "hi": d.hi,
                "lo90": f["ci90"][r][0],
                "hi90": f["ci90"][r][1],
                "p": p,
                "equivalent": ok,
            }
            for r, d, p, ok in f["tost"]
        ]
    )


def _config_name(config: tuple[float, float]) -> str:
    return f"d={fmt('setting', config[0])}, w={fmt('setting', config[1])}"


def _render4(res: PrincipleResult, caption: str, out_dir: Path) -> Rendered:
    per, metric, tolerance = res.per, res.metric, res.facts["tolerance"]
    vertex = res.facts.get("vertex")
    on_budget = per[~per["flag"]]["depth_mult"]
    band = None
    if vertex:
        band = quadratic_band(vertex["fit"], on_budget.min(), on_budget.max())
    path = plot_depth_quadratic(
        per,
        band,
        out_dir / "principle4.png",
        metric=metric,
        vertex=vertex,
        flag_label=f"MACs off the family median by > {fmt('percent', 100 * tolerance)}%",
        caption=caption,
    )
    detail = _detail(per, res.keys, {metric: metric_label(metric)})
    detail["MACs vs family median"] = [
        f"{fmt('percent', 100 * v, sign=True)}%" for v in per["macs_dev"]
    ]
    detail["outside tolerance"] = per["flag"].map(lambda v: "yes" if v else "")
    lacks = "" if vertex else "the quadratic: needs 4 depths within the MAC tolerance and 2 seeds"
    return Rendered(path, render_balance_text(res), detail, lacks)


def render_balance_text(res: PrincipleResult) -> str:
    """Principle 4's verdict line: the best depth, its rivals, the vertex, each member's lr."""
    f = res.facts
    if "best" not in f:
        return f"inconclusive: {f['n_configs']} iso-MAC configurations, at least 3 needed"
    diffs = "; ".join(f"vs {_config_name(c)}: {_diff_text(d)}" for c, d in f["rivals"])
    text = f"{res.evidence}: best is {_config_name(f['best'])}; {diffs}"
    v = f.get("vertex")
    if v:
        depth = v["depth"]
        text += (
            f"; quadratic in log2(depth) (seed intercepts): curvature "
            f"{_estimate_text(v['curvature'], 'pt per doubling squared')}, best depth multiplier "
            f"{fmt('setting', depth.value)} [{fmt('setting', depth.lo)}, "
            f"{fmt('setting', depth.hi)}] (delta method)"
        )
    if f.get("lr"):
        chosen = ", ".join(f"d={fmt('setting', d)}: {v:g}" for d, v in sorted(f["lr"].items()))
        text += f"; learning rate per member, chosen on validation: {chosen}"
    return text


_RENDER: dict[int, Callable[[PrincipleResult, str, Path], Rendered]] = {
    1: _render1,
    2: _render2,
    3: _render3,
    4: _render4,
}


# --- the principles page -------------------------------------------------------------------------


#: principle 4 as the paper words it: a comparison study whose claim rows are the section
LITERAL_STUDY = "principle4-literal"


def literal_section(reports_dir: Path) -> dict[str, Any] | None:
    """Principle 4's literal statement (both vs width only vs depth only at ~2x compute), read
    from that study's rendered claims.csv; None before it has a report."""
    claims_csv = Path(reports_dir) / LITERAL_STUDY / "claims.csv"
    if not claims_csv.exists():
        return None
    claims = pd.read_csv(claims_csv)
    claims = claims[claims["kind"] == "accuracy"]
    rows = "; ".join(f"{r.claim}: {r.evidence}" for r in claims.itertuples())
    # one word first, as every principle verdict: agrees only when both rows agree
    verdict = f"{combine(claims['evidence'].astype(str))}: {rows}" if rows else "not run"
    detail = claims[["claim", "comparison", "ours", "evidence"]].reset_index(drop=True)
    return {
        "principle": 4,
        "title": f"as worded, at twice the compute ({LITERAL_STUDY}; its own report has more)",
        "statement": (
            "increasing both the width and the depth of the network in parallel is the best use "
            "of a given increase in computation"
        ),
        "verdict": verdict,
        "detail": detail,
        "detail_caption": "the claim rows, each a pair at equal MACs paired by seed",
    }


def render_principles(
    sections: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], out_dir: Path
) -> dict[str, Path]:
    """One page gathering the principle studies (reports/principles/): report.md + report.html.

    Each section: ``principle`` (number), ``title``, ``statement``, ``verdict``, and optionally
    ``detail`` (a table, or text shown as is), ``plot`` (a PNG path) and ``missing`` (what the
    runs lack for the fitted figure).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = Doc()
    title = meta.get("title", "The four design principles")
    doc.add("h1", title)
    if meta.get("description"):
        doc.add("p", meta["description"])
    doc.add(
        "kv",
        [
            ("dataset", meta.get("dataset", "unknown")),
            ("scale", meta.get("scale", "unknown")),
            ("archlab version", meta.get("version", __version__)),
            ("commit", meta.get("commit", "unknown")),
            ("machine", meta.get("machine", "unknown")),
            ("date", fmt_date()),
        ],
    )
    for sec in sorted(sections, key=lambda s: int(s["principle"])):
        doc.add("h2", f"Principle {int(sec['principle'])}: {sec.get('title', '')}")
        doc.add("quote", sec.get("statement", ""))
        doc.add("p", f"Verdict: {sec.get('verdict', 'not run')}")
        detail = sec.get("detail")
        if isinstance(detail, pd.DataFrame):
            # what a folded table says it holds
            inside = sec.get("detail_caption", "one row per configuration: means, 95% CIs, MACs")
            doc.add("table", detail, inside)
        elif detail:
            doc.add("pre", str(detail))
        if sec.get("plot"):
            doc.add("img", Path(sec["plot"]), f"principle {int(sec['principle'])}")
        if sec.get("missing"):
            doc.add("p", f"Not drawn: {sec['missing']}.")
    doc.add("h2", "Notes")
    doc.add("p", MACS_NOTE)
    return write_doc(doc, str(title), out_dir)


def principle_of(
    kind: str,
    runs: pd.DataFrame,
    curves: pd.DataFrame | None,
    out_dir: Path,
    meta: Mapping[str, Any],
) -> Rendered | None:
    """A principle study's plot, verdict and detail, read as its design was; None otherwise.

    A study that ran ``--until-decided`` (``meta`` has looks) looked at its principle verdict
    after every round: it is judged over its planned looks, or anytime-valid (``judge_over_looks``).
    """
    n = principle_number(kind)
    if n is None:
        return None
    record = meta.get("until_decided") or {}
    method = str(record.get("method", "planned"))
    options = {**(meta.get("analysis") or {}), "looks": meta.get("looks"), "method": method}
    return run_principle(n, runs, curves, out_dir, **options)


# --- the report's sections -----------------------------------------------------------------------
