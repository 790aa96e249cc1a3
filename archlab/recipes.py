"""The named training recipes measured over seeds: run what is missing, report mean and 95% CI.

``archlab recipes`` trains the default mini model with each preset (``train.config.PRESETS``)
at seeds 0..N-1, one ``RunResult`` JSON per run in ``results/recipes/<preset>-seed<S>.json``, the
same file ``archlab train --preset P --seed S --json FILE`` writes. A run whose file exists and
matches the recipe is never trained again, so an interrupted measurement resumes. The report
(``reports/recipes/``) gives per-seed numbers and, per recipe, mean test top-1 and wall time with
a 95% t interval, against the targets the trainer was built to meet.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from archlab.arch.spec import ADDED_SPEC_FIELDS, ArchSpec
from archlab.io import write_atomic, write_json
from archlab.provenance import machine_info, usable_cores
from archlab.train.config import ADDED_FIELDS, PRESETS, ConfigError, TrainConfig, preset

if TYPE_CHECKING:  # the report layer is imported when a report is written, not by workers
    from archlab.report.doc import Doc

__all__ = [
    "TARGETS",
    "RecipeError",
    "Task",
    "curves",
    "load_run",
    "pending",
    "recipe_config",
    "render",
    "result_path",
    "run_recipes",
    "stored_runs",
    "table",
]

MODEL = "inception_mini"

#: What each recipe should reach on real Fashion-MNIST (test top-1 %, wall seconds per run).
TARGETS: dict[str, dict[str, float]] = {
    "quick": {"test_top1": 86.0, "wall_s": 60.0},  # "about one minute on a 2-core CPU"
    "full": {"test_top1": 92.5},
}


class RecipeError(ConfigError):
    """A stored recipe run that is unreadable or belongs to another recipe; names the file."""


@dataclass(frozen=True)
class Task:
    """One run to measure: a preset at a seed."""

    preset: str
    seed: int


def recipe_spec() -> ArchSpec:
    """The network every recipe trains: the mini model as the recipes were first measured on.

    The recipes compare training presets, not designs; the mini model's default aux head became
    the paper's BN-auxiliary later, and re-measuring the 12-epoch ``full`` recipe for that takes
    hours, so the recipe runs keep the head they were made with (``aux_bn``).
    """
    from archlab.arch.models import default_spec

    return default_spec(MODEL).replace(aux_head="aux_bn")


def recipe_config(name: str, seed: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The exact TrainConfig of preset ``name`` at ``seed``, with optional overrides on top."""
    return preset(name).replace(**(overrides or {})).replace(seed=seed)


def result_path(results: Path, name: str, seed: int) -> Path:
    """Where the run of preset ``name`` at ``seed`` is stored."""
    return Path(results) / f"{name}-seed{seed}.json"


def load_run(
    path: Path, name: str, seed: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The stored RunResult dict of a finished run, None if absent or failed (to run again).

    A diverged run is a finished run: it is a result of the recipe at that seed, and training
    it again would diverge again.

    Raises RecipeError when the file is unreadable or was trained with another recipe, model
    or spec: mixing those into one mean would report a recipe nobody ran.
    """

    path = Path(path)
    if not path.exists():
        return None
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecipeError(f"{path}: not a readable RunResult JSON ({e})") from None
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict):
        raise RecipeError(f"{path}: not a RunResult JSON (no 'config' mapping)")
    if run.get("status") not in ("complete", "diverged"):
        return None  # failed (an error, not a result): measured again
    want = {
        "model": MODEL,
        "spec": recipe_spec().to_dict(),
        **{f"config.{k}": v for k, v in recipe_config(name, seed, overrides).to_dict().items()},
    }
    # spec fields added since a run was stored held their defaults in it
    have = {"model": run.get("model"), "spec": {**ADDED_SPEC_FIELDS, **(run.get("spec") or {})}}
    have.update({f"config.{k}": v for k, v in {**ADDED_FIELDS, **run["config"]}.items()})
    for key, value in want.items():
        if have.get(key) != value:
            raise RecipeError(
                f"{path}: {key} is {have.get(key)!r}, recipe {name!r} at seed {seed} has "
                f"{value!r}; move the file or use another --results folder"
            )
    final = run.get("final")
    if not isinstance(final, dict):
        raise RecipeError(f"{path}: final is missing; valid: a RunResult with a final mapping")
    if run["status"] == "complete" and not isinstance(final.get("test_top1"), int | float):
        raise RecipeError(f"{path}: final.test_top1 is missing; valid: a complete RunResult")
    return run


def pending(
    presets: list[str], seeds: int, results: Path, overrides: dict[str, Any] | None = None
) -> list[Task]:
    """The (preset, seed) runs without a finished stored result, longest recipes first."""
    todo = [
        Task(p, s)
        for p in presets
        for s in range(seeds)
        if load_run(result_path(results, p, s), p, s, overrides) is None
    ]
    # Longest first so two workers finish close together (the full recipe is ~30x the quick).
    return sorted(todo, key=lambda t: -_cost(t.preset, overrides))


def _cost(name: str, overrides: dict[str, Any] | None) -> float:
    cfg = recipe_config(name, 0, overrides)
    return (cfg.train_subset or 60000) * cfg.epochs


def _check_args(presets: list[str], seeds: int) -> None:
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least 1")
    for p in presets:
        if p not in PRESETS:
            raise ConfigError(f"--preset {p!r}: unknown recipe; valid: {', '.join(PRESETS)}")


def _worker(
    tasks: list[tuple[str, int]],
    next_task: Any,
    results: str,
    overrides: dict[str, Any],
    jobs: int,
    progress: bool,
) -> None:
    """Claim the next task off a shared counter until none is left; write each atomically."""
    from archlab.train.trainer import train

    while True:
        with next_task.get_lock():  # a shared counter, not a Queue: its put() is asynchronous
            i = next_task.value
            next_task.value += 1
        if i >= len(tasks):
            return
        name, seed = tasks[i]
        config = recipe_config(name, seed, overrides)
        result = train(recipe_spec(), config, model=MODEL, progress=progress).to_dict()
        # How the time was measured: a wall time means little without the load beside it.
        result["run_context"] = {
            "jobs": jobs,
            "cores": usable_cores(),
            "machine": machine_info(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        write_json(result_path(Path(results), name, seed), result)


def run_recipes(
    presets: list[str],
    seeds: int,
    results: Path,
    *,
    jobs: int = 1,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Task]:
    """Train every missing (preset, seed) run in ``jobs`` pinned workers; returns what ran."""
    import multiprocessing

    from archlab.parallel import cap_jobs, run_workers
    from archlab.train.config import validate_config

    _check_args(presets, seeds)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: need at least 1")
    overrides = dict(overrides or {})
    for p in presets:  # a bad override fails here, before any training
        validate_config(recipe_config(p, 0, overrides))
    todo = pending(presets, seeds, results, overrides)
    if not todo:
        return []
    Path(results).mkdir(parents=True, exist_ok=True)
    jobs = cap_jobs(jobs, len(usable_cores()), len(todo))
    kwargs = {
        "tasks": [(t.preset, t.seed) for t in todo],
        "next_task": multiprocessing.get_context("spawn").Value("i", 0),
        "results": str(results),
        "overrides": overrides,
        "jobs": jobs,
        "progress": progress,
    }
    codes = run_workers(jobs, _worker, kwargs)
    if any(codes):
        raise RuntimeError(f"a recipe worker exited with code {max(codes)}")
    return todo


#: (preset, seed, RunResult dict) of one stored run.
Stored = tuple[str, int, dict[str, Any]]


def stored_runs(
    presets: list[str], seeds: int, results: Path, overrides: dict[str, Any] | None = None
) -> list[Stored]:
    """(preset, seed, run) of every finished stored run, in preset then seed order."""
    out = []
    for p in presets:
        for s in range(seeds):
            run = load_run(result_path(results, p, s), p, s, overrides)
            if run is not None:
                out.append((p, s, run))
    return out


def table(runs: list[Stored]) -> pd.DataFrame:
    """One row per stored finished run: preset, seed, status, test metrics, speed, wall time."""
    rows = []
    for p, s, run in runs:
        f, ctx = run["final"], run.get("run_context", {})
        rows.append(
            {
                "preset": p,
                "seed": s,
                "status": run["status"],
                "test_top1": f.get("test_top1", math.nan),
                "test_top5": f.get("test_top5", math.nan),
                "test_nll": f.get("test_nll", math.nan),
                "test_ece": f.get("test_ece", math.nan),
                "images_per_s": f.get("images_per_s", math.nan),
                "train_time_s": f.get("train_time_s", math.nan),
                "wall_time_s": run.get("wall_time_s", math.nan),
                "jobs": ctx.get("jobs", math.nan),
                "macs": run.get("macs", 0),
                "params": run.get("params", 0),
            }
        )
    return pd.DataFrame(rows)


def curves(runs: list[Stored]) -> pd.DataFrame:
    """One row per stored run and evaluated epoch: train loss/top-1 and test top-1."""
    keys = ("epoch", "train_loss", "train_top1", "test_top1")
    rows = [
        {"variant": p, "seed": s, **{k: h.get(k, math.nan) for k in keys}}
        for p, s, run in runs
        for h in run.get("history", [])
        if isinstance(h, dict)
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", *keys])


def _summary(
    df: pd.DataFrame, presets: list[str], seeds: int, overrides: dict[str, Any]
) -> pd.DataFrame:
    from archlab.analysis.stats import mean_ci
    from archlab.report.doc import fmt_mean_ci

    rows = []
    for p in presets:
        done = df[df["preset"] == p] if len(df) else df
        sub = done[done["status"] == "complete"] if len(done) else done
        diverged = len(done) - len(sub)
        top1 = mean_ci(sub["test_top1"]) if len(sub) else (math.nan,) * 3
        wall = mean_ci(sub["wall_time_s"]) if len(sub) else (math.nan,) * 3
        # The targets are about the presets as shipped, on real Fashion-MNIST.
        target = {} if overrides else TARGETS.get(p, {})
        rows.append(
            {
                "recipe": p,
                "runs": f"{len(sub)}/{seeds}" + (f" ({diverged} diverged)" if diverged else ""),
                "test top-1 % (mean [95% CI])": fmt_mean_ci(*top1),
                "top-1 target": _target_text(top1, target.get("test_top1"), "%"),
                "wall s per run (mean [95% CI])": fmt_mean_ci(*wall, digits=0),
                "time target": _target_text(wall, target.get("wall_s"), "s", lower=True),
            }
        )
    return pd.DataFrame(rows)


def _target_text(
    ci: tuple[float, float, float], target: float | None, unit: str, *, lower=False
) -> str:
    """'met'/'missed' on the mean, and whether the whole 95% interval clears the target."""
    if target is None:
        return "n/a"
    mean, lo, hi = ci
    if not math.isfinite(mean):
        return f"{'≤' if lower else '≥'} {target:g} {unit}: not measured"
    met = mean <= target if lower else mean >= target
    edge = hi if lower else lo
    sure = math.isfinite(edge) and (edge <= target if lower else edge >= target)
    verdict = "met" if met else "missed"
    tail = " (whole CI)" if sure else (" (CI straddles it)" if met else "")
    return f"{'≤' if lower else '≥'} {target:g} {unit}: {verdict}{tail}"


def _recipe_text(name: str, overrides: dict[str, Any]) -> str:
    cfg = recipe_config(name, 0, overrides)
    base = TrainConfig()
    changed = {k: v for k, v in cfg.to_dict().items() if getattr(base, k) != v and k != "seed"}
    keys = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the TrainConfig defaults"
    return f"{name}: {keys} (on top of the TrainConfig defaults)"


def _runs_section(doc: Doc, df: pd.DataFrame) -> None:
    """The per-run table of the report, and what the model costs."""
    from archlab.report.doc import fmt_num

    doc.add("h2", "Runs")
    if len(df):
        view = df.assign(
            **{c: df[c].map(lambda v: fmt_num(v, 2)) for c in ("test_top1", "test_top5")},
            test_nll=df["test_nll"].map(lambda v: fmt_num(v, 4)),
            test_ece=df["test_ece"].map(lambda v: fmt_num(v, 4)),
            images_per_s=df["images_per_s"].map(lambda v: fmt_num(v, 0)),
            train_time_s=df["train_time_s"].map(lambda v: fmt_num(v, 1)),
            wall_time_s=df["wall_time_s"].map(lambda v: fmt_num(v, 1)),
            jobs=df["jobs"].map(lambda v: "n/a" if pd.isna(v) else str(int(v))),
        ).drop(columns=["macs", "params"])
        doc.add("table", view)
        first = df.iloc[0]
        doc.add(
            "p",
            f"Cost of the model: {int(first['macs']):,} MACs per image (1 MAC = 1 multiply-add) "
            f"and {int(first['params']):,} parameters. Wall time includes loading the data and "
            "every evaluation; 'jobs' is the --jobs of the `archlab recipes` call that made "
            "the run (n/a: made with `archlab train`); other processes on the machine are not "
            "recorded.",
        )
    else:
        doc.add("p", "No complete run is stored yet.")


def render(
    presets: list[str],
    seeds: int,
    results: Path,
    out: Path,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write reports/recipes/: report.md/.html, runs.csv, curves.csv (+ curves.png) from runs."""
    from archlab.report.doc import Doc, write_doc
    from archlab.report.plots import plot_learning_curves

    _check_args(presets, seeds)
    overrides = dict(overrides or {})
    runs = stored_runs(presets, seeds, results, overrides)  # read and checked once
    df = table(runs)
    out = Path(out)
    doc = Doc()
    doc.add("h1", "Training recipes of the mini model")
    doc.add(
        "p",
        f"Model {MODEL} (default spec) on {recipe_config(presets[0], 0, overrides).dataset}, "
        f"seeds 0..{seeds - 1}, one stored RunResult per run in {results}. Written by "
        "`archlab recipes` (make recipes); a stored run is never trained again. Accuracy is "
        "the mean over seeds with a 95% Student-t interval; a target counts as met when the "
        "mean clears it, and the table says whether the whole interval does.",
    )
    if overrides:
        doc.add("quote", f"Recipe overrides: {overrides} — these are not the presets as shipped.")
    doc.add("kv", [("recipe", _recipe_text(p, overrides)) for p in presets])
    doc.add("h2", "Summary")
    doc.add("table", _summary(df, presets, seeds, overrides))
    _runs_section(doc, df)
    curve = curves(runs)
    if curve.groupby("variant")["epoch"].nunique().max() > 1:  # a curve needs two points
        caption = f"inception_mini, {seeds} seeds; one line per recipe (x: epochs of that recipe)"
        png = plot_learning_curves(curve, out / "curves.png", caption=caption)
        doc.add("h2", "Learning curves")
        doc.add("img", png, "test top-1 per epoch, mean and 95% CI over seeds")
    paths = write_doc(doc, "archlab recipes", out)
    paths["runs.csv"] = write_atomic(out / "runs.csv", df.to_csv(index=False))
    paths["curves.csv"] = write_atomic(out / "curves.csv", curve.to_csv(index=False))
    return paths
