"""False verdicts of principle analyses looked at after every round of seeds (null studies).

A principle study run with ``--until-decided`` re-runs its analysis after each round and adds
seeds while it is open. This script simulates null studies of principle 1's squeeze design (no
squeeze costs anything: every verdict but "inconclusive" and "smaller than claimed" is false)
and of principle 4's depth family (every depth equally good: "agrees" and "disagrees" are
false), looked at after every seed of the planned looks, and counts the studies with a false
verdict when each look is judged at 95% and when the looks are judged as the reports judge
them (``archlab.analysis.principle_looks.judge_over_looks``: planned looks at their calibrated
group-sequential levels, or anytime-valid confidence sequences).

Usage: python studies/pilots/principle_looks_sim.py --principle 1 [--studies N] [--seed S]
       > results/pilots/principle-looks-sim-p1.txt
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from archlab.analysis.principle_looks import judge_over_looks
from archlab.analysis.principles import analyze

SQUEEZE = [{"squeeze_at": "none", "squeeze_ratio": 1.0}] + [
    {"squeeze_at": p, "squeeze_ratio": r}
    for p in ("stem", "stage_a", "stage_b")
    for r in (0.125, 0.25, 0.5)
]
DEPTHS = [{"depth_mult": d, "width_mult": 1.0 / d**0.5} for d in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]
#: the verdicts that are false when nothing differs
FALSE = {1: ("agrees", "disagrees"), 4: ("agrees", "disagrees")}


def null_study(cells: list[dict], seeds: int, sd: float, rng: np.random.Generator) -> pd.DataFrame:
    """Runs of every cell and seed: the same mean everywhere, a seed offset, noise of ``sd``."""
    offsets = rng.normal(0, 0.3, seeds)  # seed effects the analyses' seed terms absorb
    rows = [
        {
            **c,
            "variant": ",".join(f"{k}={v}" for k, v in c.items()),
            "seed": s,
            "status": "complete",
            "macs": 40e6,
            "run_key": f"{c}-{s}",
            "test_top1": 89.0 + offsets[s] + rng.normal(0, sd),
        }
        for c in cells
        for s in range(seeds)
    ]
    return pd.DataFrame(rows)


def main() -> None:
    """Simulate and print the false-verdict rates, one line per way of judging."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--principle", type=int, choices=(1, 4), required=True)
    ap.add_argument("--studies", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20151202)
    ap.add_argument("--looks", default="3,4,5,6")
    args = ap.parse_args()
    looks = [int(k) for k in args.looks.split(",")]
    cells = SQUEEZE if args.principle == 1 else DEPTHS
    rng = np.random.default_rng(args.seed)
    false = FALSE[args.principle]
    counts = {"95% at every look": 0, "planned looks": 0, "anytime": 0}
    for _ in range(args.studies):
        runs = null_study(cells, looks[-1], 0.3, rng)
        at95 = [analyze(args.principle, runs[runs["seed"] < k]).evidence for k in looks]
        counts["95% at every look"] += any(e in false for e in at95)
        planned = judge_over_looks(args.principle, runs, looks=looks, method="planned")
        counts["planned looks"] += planned.evidence in false
        anytime = judge_over_looks(args.principle, runs, looks=looks, method="anytime")
        counts["anytime"] += anytime.evidence in false
    n = args.studies
    print(
        f"principle {args.principle}, {n} null studies (seed {args.seed}), "
        f"looks {args.looks}, seed SD 0.3 pt"
    )
    for name, c in counts.items():
        p = c / n
        print(f"{name}: {c}/{n} = {p:.1%} false verdicts (SE {math.sqrt(p * (1 - p) / n):.1%})")


if __name__ == "__main__":
    main()
