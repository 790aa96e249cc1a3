"""The bench report: each target's verdict (PASS / FALLS SHORT, by how much, why) and bench.md.

``archlab.bench`` measures; this module judges its result against TARGETS and writes it out as
bench.json and bench.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archlab.io import write_atomic, write_json
from archlab.report.doc import fmt, md_table
from archlab.train.profile import PROFILE_WARM, TOP_OPS

# --- targets --------------------------------------------------------------------------------------

#: id -> (what is checked, goal); ``checks`` measures each against its goal.
TARGETS: dict[str, tuple[str, float]] = {
    "runs_per_hour": ("study runs/hour on all cores: new trainer >= 2x today's", 2.0),
    "run_accuracy": ("new - today's test top-1: 0 inside the 95% interval (pt away)", 0.0),
    "mac_util": ("effective training MACs/s >= 40% of matmul peak", 0.40),
    "jobs": ("--jobs 2 aggregate img/s >= 1.8x --jobs 1", 1.8),
    "count_s": ("MACs/params of every variant + full Inception-v3 <= 10 s", 10.0),
}
#: targets that are upper bounds (the rest are lower bounds)
_UPPER = ("run_accuracy", "count_s")

#: how a shortfall of each target reads
_SHORT_UNITS: dict[str, Callable[[float], str]] = {
    "runs_per_hour": lambda v: fmt("speedup", v),
    "run_accuracy": lambda v: f"{fmt('accuracy', v)} pt",
    "mac_util": lambda v: f"{fmt('percent', 100 * v)} percentage points",
    "jobs": lambda v: fmt("speedup", v),
    "count_s": lambda v: f"{fmt('seconds', v)} s",
}


def _check(tid: str, device: str | None, measured: float, shown: str) -> dict[str, Any]:
    what, goal = TARGETS[tid]
    if tid in _UPPER:
        passed, short = abs(measured) <= goal, abs(measured) - goal
    else:
        passed, short = measured >= goal, goal - measured
    return {
        "id": tid,
        "device": device,
        "target": what,
        "goal": goal,
        "measured": measured,
        "shown": shown,
        "passed": passed,
        "shortfall": 0.0 if passed else short,
        "shortfall_shown": "" if passed else _SHORT_UNITS[tid](short),
        "reason": "",
    }


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured figure, PASS or not, and a likely reason when not."""
    runs = result["study_runs"]
    where = runs.get("device", "cpu")  # benches before the GPU path ran their runs on the CPU
    out = [_check("runs_per_hour", where, runs["ratio"], fmt("speedup", runs["ratio"]))]
    acc = runs["accuracy"]
    lo, hi = acc["ci95"]
    away = max(lo, -hi, 0.0)  # how far 0 lies outside the interval
    shown = (
        f"{fmt('accuracy', acc['mean'], sign=True)} pt [{fmt('accuracy', lo, sign=True)}, "
        f"{fmt('accuracy', hi, sign=True)}], {acc['identical']} of {acc['seeds']} seeds identical"
    )
    out.append(_check("run_accuracy", where, away, shown))
    for device, dev in result["devices"].items():
        fraction = dev["derived"]["peak_fraction"]
        shown = f"{fmt('percent', 100 * fraction)}%"
        out.append(_check("mac_util", device, fraction, shown))
    ratio = result["jobs"]["ratio"] if result["jobs"] else None
    if ratio is not None:
        out.append(_check("jobs", "cpu", ratio, fmt("speedup", ratio)))
    secs = result["counting"]["seconds"]
    out.append(_check("count_s", "cpu", secs, f"{fmt('seconds', secs)} s"))
    for c in out:
        if not c["passed"]:
            c["reason"] = _reason(c, result)
    return out


def _busy_note(result: dict[str, Any]) -> str:
    cores = result["machine"]["usable_cores"] or 1
    load = max(result["load_average"].values())
    if load <= 0.75 * cores:
        return ""
    return (
        f" The 1-min load average reached {load:.1f} on {cores} cores during the run: other "
        "processes held the cores, and a torch thread waiting for a busy core stalls every op."
    )


def _reason(c: dict[str, Any], result: dict[str, Any]) -> str:
    """Why a target fell short, from the profile and the run's own numbers."""
    busy = _busy_note(result)
    if c["id"] == "count_s":
        cnt = result["counting"]
        return (
            f"{cnt['mini_s']:.1f} s for {cnt['variants']} mini variants ({cnt['distinct_specs']} "
            f"distinct), {cnt['full_model_s']:.1f} s for {cnt['full_model']} at "
            f"{cnt['threads']} torch threads: each count traces batch-1 forwards (fvcore twice, "
            "hooks once), whose tiny ops gain nothing from threads but pay a fork/join each." + busy
        )
    if c["id"] == "jobs":
        j = result["jobs"]
        below = " It is below --jobs 1." if c["measured"] < 1 else ""
        return (
            f"--jobs 1 {j['jobs1']['images_per_s']:.0f} img/s vs --jobs 2 "
            f"{j['jobs2']['images_per_s']:.0f} img/s: pinned workers only add throughput when "
            f"their cores are otherwise idle.{below}" + busy
        )
    if c["id"] == "run_accuracy":
        acc = result["study_runs"]["accuracy"]
        diffs = ", ".join(f"{g:+.2f}" for g in acc["diffs"])
        return (
            f"paired per-seed differences {diffs} pt: the tuned kernels are meant to give "
            "today's numbers bit for bit (tests/test_kernels.py), so any difference is a bug."
        )
    dev = result["devices"].get(c["device"]) or result["devices"]["cpu"]
    d, cats = dev["derived"], dev["profile"]["category_percent"]
    conv = cats.get("conv/matmul", 0.0)
    elementwise = sum(cats.get(k, 0.0) for k in ("batchnorm", "relu", "pooling"))
    top = dev["profile"]["top_ops"][0]
    profile = (
        f"the profiled (tuned) step spends {conv:.0f}% of its self time in conv/matmul ops and "
        f"{elementwise:.0f}% in BatchNorm/ReLU/pooling (forward + backward); the top op is "
        f"{top['op']} ({top['percent']:.0f}%)."
    )
    if c["id"] == "runs_per_hour":
        runs = result["study_runs"]
        today, new = runs["stock"], runs["tuned"]
        return (
            f"a run took {today['mean_wall_s']:.0f} s with today's kernels and "
            f"{new['mean_wall_s']:.0f} s with the tuned ones (training {today['mean_train_s']:.0f}"
            f" vs {new['mean_train_s']:.0f} s; loading, precise BN and evaluation "
            f"{today['mean_other_s']:.0f} vs {new['mean_other_s']:.0f} s). The tuned kernels "
            f"only remove slow paths and keep every number; {profile} What is left is "
            "convolution and BatchNorm work these small layers do at a low rate; the ways to "
            "more runs per hour measured so far (seeds batched as one grouped network, "
            "torch.compile) are in the probes table below." + busy
        )
    conv_rate = d["effective_gmacs"] / max(conv / 100, 1e-9)
    return (
        f"{d['effective_gmacs']:.0f} GMAC/s vs a {dev['peak']['dtype']} matmul peak of "
        f"{dev['peak']['peak_gmacs']:.0f} GMAC/s; {profile} Counting only conv/matmul time, the "
        f"convolutions run at ~{conv_rate:.0f} GMAC/s: small channel counts (8-56) on 7-28 px "
        "grids keep them far from a large matmul's rate." + busy
    )


def check_lines(result: dict[str, Any]) -> list[str]:
    """One PASS / FALLS SHORT line per target."""
    lines = []
    for c in result["checks"]:
        verdict = "PASS" if c["passed"] else "FALLS SHORT"
        lines.append(f"{verdict:<11} [{c['device']}] {c['target']}: {c['shown']}")
    return lines


# --- Markdown -------------------------------------------------------------------------------------


def _verdict(c: dict[str, Any]) -> str:
    return "PASS" if c["passed"] else f"FALLS SHORT by {c['shortfall_shown']}"


def _md_header(r: dict[str, Any]) -> list[str]:
    m, d, model, loads = r["machine"], r["data"], r["model"], r["load_average"]
    data = f"{d['dataset']} ({d['train_images']:,} train / {d['test_images']:,} test images)"
    lines = [
        "# archlab benchmark: study runs per hour, and the trainer vs a hand-written PyTorch loop",
        "",
        f"- machine: {m['cpu_model']} (flags: {', '.join(m['cpu_flags']) or 'no AVX2'}), "
        f"{m['usable_cores']} usable cores, torch {m['torch']}, "
        f"native bf16: {'yes' if m['bf16_native'] else 'no'}, "
        f"{m['torch_threads_used']} torch threads" + (f", GPU {m['cuda']}" if m["cuda"] else ""),
        f"- 1-min load average: {loads['start']:.2f} at the start, {loads['end']:.2f} at the end "
        "(other processes on these cores make every figure noisy)",
        f"- model: {model['name']}, {model['macs']:,} MACs and {model['params']:,} params per "
        f"{'x'.join(map(str, model['input']))} image, batch {model['batch_size']}",
        f"- data: {data}" + (f". **{d['note']}**" if d["note"] else ""),
    ]
    if "cuda" not in r["devices"]:
        lines.append("- CUDA: not measured (this machine has no GPU); every figure is the CPU's")
    if "cpu" not in r["devices"]:
        lines.append(
            "- CPU: not measured in this run (`--device cuda`: every figure but the counting is "
            "the GPU's; `reports/bench/` holds the CPU's)"
        )
    if r["settings"]["quick"]:
        lines.append("- **--quick run: tiny sizes, one thread; the figures mean nothing**")
    return lines


def _md_study_runs(r: dict[str, Any]) -> list[str]:
    runs = r["study_runs"]
    rows = []
    for name, key in (
        ("today's (stock PyTorch kernels)", "stock"),
        ("new (tuned kernels)", "tuned"),
    ):
        x = runs[key]
        mean, std = statistics.fmean(x["test_top1"]), _stdev(x["test_top1"])
        rows.append(
            [
                name,
                fmt("throughput", x["runs_per_hour"]),
                fmt("seconds", x["mean_wall_s"]),
                fmt("seconds", x["mean_train_s"]),
                fmt("seconds", x["mean_other_s"]),
                f"{fmt('accuracy', mean)} ± {fmt('accuracy', std)}",
            ]
        )
    acc = runs["accuracy"]
    lo, hi = acc["ci95"]
    head = ["trainer", f"runs/hour ({runs['workers']} workers, {runs.get('device', 'cpu')})"]
    head += ["s/run", "training s"]
    head += ["load + precise BN + eval s", f"test top-1 % (mean ± SD, {acc['seeds']} seeds)"]
    return [
        "",
        "## Study runs per hour: today's trainer vs the new one",
        "",
        md_table(head, rows),
        "",
        f"Ratio: **{fmt('speedup', runs['ratio'])}**. New minus today's test top-1, paired by "
        f"seed: {fmt('accuracy', acc['mean'], sign=True)} pt, 95% interval "
        f"[{fmt('accuracy', lo, sign=True)}, {fmt('accuracy', hi, sign=True)}]; "
        f"{acc['identical']} of {acc['seeds']} seeds identical to the bit.",
        "",
        "Whole runs of the studies' recipe (preset `study`"
        + (f", changed: {_recipe_changes(r)}" if r["settings"]["run_recipe"] else "")
        + f") on the default network, {_workers_note(runs)}, as "
        "`archlab study run --jobs N` makes them; the two trainers' runs interleave seed by seed "
        "in one queue. Runs/hour = workers x 3600 / mean seconds per run (loading, training, "
        "precise BN and evaluation included; process start-up not).",
    ]


def _workers_note(runs: dict[str, Any]) -> str:
    if runs.get("device", "cpu") == "cuda":
        return f"{runs['workers']} workers sharing one GPU (each its own CUDA context and cores)"
    return "one pinned worker per core with one torch thread"


#: how each probe reads in the report
_PROBES = {
    "stock": "PyTorch's kernels (today's trainer)",
    "tuned": "tuned kernels (kept: the new trainer)",
    "compile": "torch.compile (inductor), steady state",
}


def _batched_name(key: str, p: dict[str, Any]) -> str:
    """How a batched-seeds probe reads: ``stacked_K_seeds`` or the vmap one."""
    if key.startswith("stacked_"):
        k = key.split("_")[1]
        if key.endswith("_compiled"):
            return f"{k} seeds stacked, torch.compile (inductor), steady state"
        return f"{k} seeds stacked as one grouped network (channels_last)"
    return f"{p['seeds_batched']} seeds as one network (torch.func.vmap)"


def _md_probes(r: dict[str, Any]) -> list[str]:
    p = r["probes"]
    rows = []
    for key, ms in p["ms_per_seed_step"].items():
        name = _PROBES.get(key) or _batched_name(key, p)
        rows.append([name, fmt("milliseconds", ms), fmt("speedup", p["vs_stock"][key])])
    rows += [[f"{k}: failed", e, ""] for k, e in p["errors"].items()]
    compiled = (
        # inductor keeps its compiled kernels on disk: a machine that compiled this network
        # before (an earlier bench, a study) compiles it again far faster than a fresh one
        f" torch.compile took {fmt('seconds', p['compile_s'])} s to compile the step first "
        "(with whatever inductor's on-disk caches held from earlier runs on this machine)"
        if "compile_s" in p
        else " torch.compile not probed in this run."
    )
    if "compile_again_s" in p:  # the cost each later run of the architecture would pay
        compiled += (
            f", {fmt('seconds', p['compile_again_s'])} s for a second network of the same "
            "architecture (caches warm)"
        )
    if "stacked_compile_s" in p:
        compiled += f", {fmt('seconds', p['stacked_compile_s'])} s for the stacked seeds"
    if "compile_s" in p:
        compiled += "."
    return [
        "",
        "## Ways to more runs per hour, measured (ms per training step of one seed)",
        "",
        md_table(["way", "ms per seed-step", "vs today's"], rows),
        "",
        f"One training step ({p.get('device', 'cpu')}, batch {p['batch_size']}, "
        f"{p['precision']}, channels_last, one torch thread as in a study worker) of the "
        f"studies' network, {p['steps']} steps timed after "
        "warm-up; a batched step trains every seed at once and is divided by their number."
        + compiled,
    ]


def _stdev(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _recipe_changes(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in r["settings"]["run_recipe"])


def _md_results(r: dict[str, Any]) -> list[str]:
    seeds = r["settings"]["seeds"]
    rows = []
    for device, dev in r["devices"].items():
        dd, peak = dev["derived"], dev["peak"]
        for loop, key, eff in (
            ("baseline: DataLoader, NCHW, fp32", "baseline", dd["baseline_effective_gmacs"]),
            ("archlab: train()", "archlab", dd["effective_gmacs"]),
        ):
            x = dev[key]
            speed = dd["speedup"] if key == "archlab" else 1.0
            rows.append(
                [
                    device,
                    loop,
                    fmt("throughput", x["images_per_s"]),
                    fmt("speedup", speed),
                    fmt("gmac_rate", eff),
                    f"{fmt('percent', 100 * eff / peak['peak_gmacs'])}%",
                    " ± ".join(fmt("accuracy", x[k]) for k in ("test_top1_mean", "test_top1_std")),
                ]
            )
        fp32, bf16 = fmt("throughput", peak["fp32_gmacs"]), fmt("throughput", peak["bf16_gmacs"])
        rows.append([device, f"matmul {peak['n']}^3: fp32 {fp32}, bf16 {bf16} GMAC/s"] + [""] * 5)
    head = ["device", "loop", "train img/s", "vs baseline", "effective GMAC/s", "of peak"]
    head.append(f"test top-1 % (mean ± std, {seeds} seeds)")
    title = "## The trainer vs a hand-written PyTorch loop (training img/s)"
    return ["", title, "", md_table(head, rows), "", _results_note(r)]


def _results_note(r: dict[str, Any]) -> str:
    return (
        "Effective GMAC/s = 3 x forward MACs x img/s (forward, input-gradient and "
        "weight-gradient products); the peak is the bf16 matmul peak where the device computes "
        "bf16 natively, else fp32, measured in this run at the trainer's thread count. "
        "Baseline img/s leaves out each run's first steps; archlab's is the steady state of a "
        "run with crop augmentation (the studies' recipe), first epoch left out."
    )


def _md_targets(r: dict[str, Any]) -> list[str]:
    rows = [[c["target"], c["device"], c["shown"], _verdict(c)] for c in r["checks"]]
    lines = ["", "## Targets", "", md_table(["target", "device", "measured", "result"], rows)]
    short = [c for c in r["checks"] if not c["passed"]]
    if short:
        lines += ["", "Why the short ones fall short:", ""]
        lines += [f"- **{c['target']}** ({c['device']}): {c['reason']}" for c in short]
    return lines


def _md_profile(r: dict[str, Any]) -> list[str]:
    lines = []
    for device, dev in r["devices"].items():
        p = dev["profile"]
        rows = [
            [
                f"`{o['op']}`",
                fmt("milliseconds", o["self_ms_per_step"]),
                f"{fmt('percent', o['percent'])}%",
                fmt("setting", o["calls_per_step"]),
            ]
            for o in p["top_ops"]
        ]
        cats = ", ".join(f"{k} {v:.0f}%" for k, v in p["category_percent"].items())
        lines += [
            "",
            f"## Profile of one archlab training step ({device}, top {TOP_OPS} ops by {p['time']})",
            "",
            f"{p['step_ms_profiled']:.0f} ms per step under the profiler (mean of {p['steps']} "
            f"steps after {PROFILE_WARM} warm-up steps), {p['total_self_ms_per_step']:.0f} ms of "
            "self time.",
            "",
            md_table(["op", "self ms/step", "share", "calls/step"], rows),
            "",
            f"Self time by kind (forward + backward): {cats}.",
        ]
    return lines


def _md_jobs(r: dict[str, Any]) -> list[str]:
    j = r["jobs"]
    if j is None:
        return ["", "## --jobs 1 vs --jobs 2", "", "Not measured: a GPU-only run (--device cuda)."]
    rows = []
    for n, run in (("1", j["jobs1"]), ("2", j["jobs2"])):
        if run is None:
            continue
        cores = "; ".join(
            f"cores {','.join(map(str, w['cores']))} ({w['threads']} thr)" for w in run["workers"]
        )
        rows.append(
            [n, cores, fmt("throughput", run["images_per_s"]), fmt("seconds", run["window_s"])]
        )
    ratio = fmt("speedup", j["ratio"]) if j["ratio"] is not None else "n/a (one core)"
    return [
        "",
        "## --jobs 1 vs --jobs 2 (cpu)",
        "",
        f"Each worker trains the model {j['steps_per_worker']} steps (archlab recipe, synthetic "
        "images); aggregate img/s = all images / the span from the first start to the last end "
        "(workers start together at a barrier, after process start-up). `--jobs 2` pins each "
        f"worker to its own cores via archlab.parallel. Ratio: **{ratio}**.",
        "",
        md_table(["jobs", "workers", "aggregate img/s", "window s"], rows),
    ]


def _md_counting(r: dict[str, Any]) -> list[str]:
    c = r["counting"]
    return [
        "",
        "## MAC/param counting",
        "",
        f"`flops_report` of {c['variants']} one-axis mini variants ({c['distinct_specs']} distinct "
        f"specs): {c['mini_s']:.1f} s; {c['full_model']} ({c['full_model_macs']:,} MACs): "
        f"{c['full_model_s']:.1f} s; total **{c['seconds']:.1f} s** at {c['threads']} torch "
        "threads, cache cleared first.",
    ]


def _md_settings(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    return [
        "",
        "## How it was measured",
        "",
        f"- Accuracy: {s['seeds']} seeds x {s['steps']} steps (one epoch of a "
        f"{s['steps'] * s['batch_size']:,}-image subset) per loop, scored on "
        f"{r['data']['test_images']:,} test images; per seed both loops start from "
        "the same weights and see the same batches (paired). The archlab runs use the studies' "
        "recipe without crop augmentation, because the baseline has none: the gap measures how "
        "archlab computes (bf16 autocast, channels_last, in-memory batches), not a recipe. Both: "
        "SGD + Nesterov momentum 0.9, one-cycle lr 0.1, weight decay 5e-4 (archlab: not on BN "
        "and biases), aux loss x0.4.",
        f"- archlab throughput: `train()` for {s['throughput_epochs']} epochs of "
        f"{s['throughput_epoch_steps']} steps with augmentation; img/s of epochs 2+ "
        "(RunResult.history, evaluation excluded).",
        f"- Whole benchmark: {r['elapsed_s']:.0f} s.",
    ]


def markdown(r: dict[str, Any]) -> str:
    """bench.md: results table, targets, profile, --jobs, counting, method."""
    parts = [_md_header, _md_study_runs, _md_targets, _md_probes, _md_results, _md_profile]
    parts.append(_md_jobs)
    lines = [line for part in (*parts, _md_counting, _md_settings) for line in part(r)]
    return "\n".join(lines) + "\n"


def write_bench(result: dict[str, Any], out_dir: Path | str) -> dict[str, Path]:
    """Write bench.json and bench.md atomically into ``out_dir``."""
    out = Path(out_dir)
    return {
        "json": write_json(out / "bench.json", result),
        "md": write_atomic(out / "bench.md", markdown(result)),
    }
