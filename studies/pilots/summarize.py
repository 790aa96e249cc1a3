"""Summarize the study-recipe pilot: per candidate, the seed SD of validation top-1 per variant,
the SD of the paired differences, and the cost per run relative to the `quick` preset.

Only validation numbers are shown: the recipe is chosen on the validation split, never on test.
Usage: .venv/bin/python studies/pilots/summarize.py results/pilots/study-recipe
"""

import json
import sys
from pathlib import Path

import pandas as pd


def main(folder: str) -> None:
    rows = []
    for f in sorted(Path(folder).glob("*.json")):
        cand, variant, seed = f.stem.split("--")
        d = json.loads(f.read_text())
        rows.append(
            {
                "candidate": cand,
                "variant": variant,
                "seed": int(seed.removeprefix("seed")),
                "val_top1": d["final"].get("val_top1"),
                "train_s": d["final"].get("train_time_s"),
                "wall_s": d["wall_time_s"],
            }
        )
    df = pd.DataFrame(rows)
    per = df.groupby(["candidate", "variant"]).agg(
        n=("seed", "size"),
        val_mean=("val_top1", "mean"),
        val_sd=("val_top1", "std"),
        wall_s=("wall_s", "median"),
    )
    print(per.round(3).to_string())
    wide = df.pivot_table(index=["candidate", "seed"], columns="variant", values="val_top1")
    if wide.shape[1] == 2:
        diff = (wide.iloc[:, 1] - wide.iloc[:, 0]).groupby("candidate")
        print("\npaired difference (second variant - first):")
        print(pd.DataFrame({"n": diff.size(), "mean": diff.mean(), "sd": diff.std()}).round(3))
    cost = df.groupby("candidate")["wall_s"].median()
    if "quick" in cost:
        print("\nwall time per run / quick's:")
        print((cost / cost["quick"]).round(2).to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/pilots/study-recipe")
