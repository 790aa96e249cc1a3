"""Summarize the fixed-split recipe pilot: per candidate recipe, on the 5,000 validation images
every seed shares, the seed SD of val top-1 per variant, the pooled residual SD (what a study's
verdicts stand on: SD of the paired differences / sqrt 2), its split into the churn of single
images and whole-run shifts (archlab.analysis.noise), and the cost per run.

Only validation numbers are shown: the recipe is chosen on the validation split, never on test.
Usage: .venv/bin/python studies/pilots/fixed_split_summary.py results/pilots/fixed-split
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from archlab.analysis.noise import split_noise
from archlab.provenance import machine_info


def load(folder: str) -> dict[str, dict[str, dict[int, tuple[np.ndarray, float, float]]]]:
    """candidate -> variant -> seed -> (val correct per image, val top-1, wall s)."""
    out: dict[str, dict[str, dict[int, tuple[np.ndarray, float, float]]]] = {}
    for f in sorted(Path(folder).glob("*.npz")):
        cand, variant, seed = f.stem.split("--")
        run = json.loads(f.with_suffix(".json").read_text())
        assert run["config"]["split_seed"] == 0, f"{f}: not on the fixed split"
        with np.load(f) as z:
            correct = z["val_pred"] == z["val_y"]
        top1 = run["final"]["val_top1"]
        assert abs(100 * correct.mean() - top1) < 1e-3, f"{f}: predictions disagree with its JSON"
        item = (correct, top1, run["wall_time_s"])
        out.setdefault(cand, {}).setdefault(variant, {})[int(seed.removeprefix("seed"))] = item
    return out


def main(folder: str) -> None:
    data = load(folder)
    print(f"machine: {machine_info()}")
    print("val top-1 (pt) on 5,000 fixed validation images; churn: what independent flips of")
    print("single images give; residual: SD(paired difference)/sqrt(2), 95% chi-square interval")
    head = "candidate     seeds  variant             mean    SD   churn  beyond  "
    print(head + "residual [95% CI]     diff mean  s/run")
    for cand, variants in data.items():
        seeds = sorted(set.intersection(*(set(v) for v in variants.values())))
        names = sorted(variants, key=lambda v: v != "default")
        for name in names:
            s = split_noise(np.stack([variants[name][k][0] for k in seeds]))
            wall = np.median([variants[name][k][2] for k in seeds])
            print(
                f"{cand:12}  {len(seeds):5}  {name:18}  {s.mean_top1:6.2f}  {s.sd:4.2f}  "
                f"{s.churn_sd:5.2f}  {s.whole_run_sd:6.2f}  {'':26}{wall:5.0f}"
            )
        if len(names) == 2 and len(seeds) >= 2:
            diff = np.array([variants[names[1]][k][1] - variants[names[0]][k][1] for k in seeds])
            res = diff.std(ddof=1) / math.sqrt(2)
            df = len(seeds) - 1
            lo = res * math.sqrt(df / stats.chi2.ppf(0.975, df))
            hi = res * math.sqrt(df / stats.chi2.ppf(0.025, df))
            print(f"{'':46}{res:5.2f} [{lo:.2f}, {hi:.2f}]  {diff.mean():+9.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
