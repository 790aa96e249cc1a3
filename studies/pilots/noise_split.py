"""Summarize the noise-floor pilot: per recipe, the seed SD of test top-1 split into the churn of
single images and whole-run shifts (archlab.analysis.noise), with the cost per run.

Usage: .venv/bin/python studies/pilots/noise_split.py results/pilots/noise-floor
"""

import json
import sys
from pathlib import Path

import numpy as np

from archlab.analysis.noise import split_noise
from archlab.provenance import machine_info


def main(folder: str) -> None:
    by_recipe: dict[str, list[tuple[int, np.ndarray, float, float]]] = {}
    for f in sorted(Path(folder).glob("*.npz")):
        recipe, seed = f.stem.split("--")
        run = json.loads(f.with_suffix(".json").read_text())
        with np.load(f) as z:
            correct = z["test_pred"] == z["test_y"]
        top1 = run["final"]["test_top1"]
        # top-1 is a float32 mean (error ~1e-5 pt); one image of 10,000 is 0.01 pt
        assert abs(100 * correct.mean() - top1) < 1e-3, f"{f}: predictions disagree with its JSON"
        item = (int(seed.removeprefix("seed")), correct, top1, run["wall_time_s"])
        by_recipe.setdefault(recipe, []).append(item)
    print(f"machine: {machine_info()}")
    print("test top-1 (pt); churn: the SD independent flips of single images would give")
    cols = "recipe  seeds  mean   SD [95% CI]          churn SD  beyond churn  unstable  p(excess)"
    print(cols + "  s/run")
    for recipe, runs in sorted(by_recipe.items(), key=lambda kv: kv[0] != "study"):
        runs.sort()
        s = split_noise(np.stack([r[1] for r in runs]))
        wall = np.mean([r[3] for r in runs])
        print(
            f"{recipe:6}  {s.seeds:5}  {s.mean_top1:.2f}  {s.sd:.2f} [{s.sd_ci[0]:.2f}, "
            f"{s.sd_ci[1]:.2f}]   {s.churn_sd:8.2f}  {s.whole_run_sd:12.2f}  "
            f"{s.unstable:7.1f}%  {s.p_excess:9.3f}  {wall:5.0f}"
        )
        print("        per seed: " + ", ".join(f"{r[2]:.2f}" for r in runs))


if __name__ == "__main__":
    main(sys.argv[1])
