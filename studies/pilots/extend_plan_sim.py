"""False positives when a study's plan of looks is extended after its last look (null studies).

A row still open at the last planned look K can be given more seeds by a larger ``--max-seeds``,
which re-plans the looks up to K'. The sequential procedure spends alpha over one plan; choosing a
longer plan after seeing that the row is still open is a redesign it does not cover. This script
measures what that costs: paired t-tests of null differences at every look, rejected at the
repeated p-value of ``archlab.analysis.sequential`` under each plan in turn, a study counted as a
false positive if any plan it reached rejects.

Usage: python studies/pilots/extend_plan_sim.py [--studies N] > results/pilots/extend-plan-sim.txt
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from archlab.analysis.sequential import repeated_p_many

ALPHA = 0.05
#: the plans compared: each a list of successive maxima; the first is the plan as designed
HISTORIES = {
    "5..24 only": [24],
    "5..32 only": [32],
    "5..24, then extended to 5..32": [24, 32],
    "5..10, then 14, 20, 24, 32 (progression's history)": [10, 14, 20, 24, 32],
}


def p_values(d: np.ndarray, looks: list[int]) -> np.ndarray:
    """Two-sided paired t-test p of every study (row) at each look (column)."""
    cols = []
    for n in looks:
        x = d[:, :n]
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
        cols.append(2 * stats.t.sf(np.abs(t), n - 1))
    return np.column_stack(cols)


def main() -> None:
    """Print the false-positive rate of each history over the same simulated null studies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    most = max(max(h) for h in HISTORIES.values())
    d = rng.standard_normal((args.studies, most))
    se = np.sqrt(ALPHA * (1 - ALPHA) / args.studies)
    print(f"{args.studies:,} null studies (seed {args.seed}), first look at 5 seeds, alpha {ALPHA}")
    print(f"Monte Carlo SE of a rate near {ALPHA}: {se:.4f}")
    for name, maxima in HISTORIES.items():
        rejected = np.zeros(args.studies, dtype=bool)
        for k in maxima:
            looks = list(range(5, k + 1))
            rejected |= repeated_p_many(p_values(d, looks), looks) < ALPHA
        print(f"{name}: {rejected.mean():.4f}")


if __name__ == "__main__":
    main()
