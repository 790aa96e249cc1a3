"""``--until-decided``: add seeds, round by round, only to the comparisons still undecided.

Round 1 runs the scale's seeds. After each round the runs table is collected, the study's
claims evaluated (``archlab.analysis.evidence.evaluate_claims``) and every accuracy row still
``inconclusive`` names an open comparison (variant, baseline); the next round gives both cells
of each open comparison one more seed (the next seed number). A principle study's own verdict
(its analysis over every cell, ``archlab.analysis.principles``) still open gives every cell one
more seed. It stops when no accuracy row is
open (a study without accuracy claims: after round 1), at K seeds, or when the next round,
estimated from the mean wall time of the runs so far, would end past the time budget.

The planned looks (seed counts n0, n0+1, ..., K) are stored in the study's user attrs as
``looks`` before the first verdict, so the verdicts can spend their alpha over them; a resumed
study keeps its looks (a larger ``--max-seeds`` extends them, recorded). ``until_decided`` keeps
K, the budget, every round (seeds, open comparisons, elapsed) and why it stopped. Before a plan is
extended, every accuracy row it decided is recorded in ``until_decided["stopped_rows"]`` with the
plan's looks and the seeds at which it was first decided: a row that stopped stays stopped (judged
over that plan, on no seed past its last look, and given no more seeds) instead of being re-judged
over the longer plan, which would re-open it.

A scale with ``sequential: anytime`` is judged anytime-valid instead (``archlab.analysis.anytime``):
its record says ``method: anytime``, a larger K extends its looks at no cost and no row needs
keeping. A study judged over planned looks may switch to anytime (valid whatever its history);
the way back is refused, since choosing planned looks after seeing the data is what they forbid.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from archlab.study.compare import open_compare, run_cells, unfinished
from archlab.study.errors import StudyError
from archlab.study.estimate import duration, per_run_s, workers_for
from archlab.study.plan import Cell, resolve_scale
from archlab.study.schema import StudyDef
from archlab.study.tables import collect
from archlab.study.values import MAX_SEEDS

__all__ = [
    "DEFAULT_BUDGET_MIN",
    "DEFAULT_MAX_SEEDS",
    "EVERY_CELL",
    "UntilDecided",
    "all_seeds",
    "check_evaluator",
    "evaluate",
    "grow",
    "open_comparisons",
    "plan_looks",
    "sequential_method",
    "principle_open",
    "stopped_rows",
    "run_until_decided",
]

DEFAULT_MAX_SEEDS = 10  # K when neither --max-seeds nor the scale's max_seeds says
DEFAULT_BUDGET_MIN = 20.0

Pair = tuple[str, str]
#: the open "pair" of an undecided principle row: its analysis uses every cell, so all grow
EVERY_CELL: Pair = ("*", "*")


@dataclass(frozen=True)
class UntilDecided:
    """``--until-decided`` as asked: K (None: the scale's ``max_seeds``, else 10), the budget."""

    max_seeds: int | None = None
    budget_min: float = DEFAULT_BUDGET_MIN

    def check(self) -> None:
        """One line (StudyError) for a K or budget that cannot be."""
        if self.max_seeds is not None and not 1 <= self.max_seeds <= MAX_SEEDS:
            raise StudyError(f"--max-seeds {self.max_seeds}: allowed 1 to {MAX_SEEDS:,}")
        if not (math.isfinite(self.budget_min) and self.budget_min > 0):
            raise StudyError(f"--budget {self.budget_min:g}: need a number of minutes > 0")


# --- the claims' verdicts ------------------------------------------------------------------------


def evaluate(
    claim_ids: Sequence[str],
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    looks: Sequence[int],
    stopped: Sequence[dict[str, Any]] = (),
    method: str = "planned",
) -> pd.DataFrame:
    """The claim table of the runs so far (``archlab.analysis.evidence``); tests replace this."""
    from archlab.analysis.evidence import evaluate_claims

    return evaluate_claims(
        list(claim_ids),
        runs,
        curves=curves,
        looks=list(looks),
        stopped=list(stopped),
        method=method,
    )


def principle_open(
    study_def: StudyDef,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    looks: Sequence[int] | None = None,
    method: str = "planned",
) -> bool:
    """Whether a principle study's own verdict (its analysis over every cell) is still open.

    Judged as the report judges it: over the study's planned ``looks`` (``judge_over_looks``).
    """
    from archlab.analysis.principle_looks import judge_over_looks
    from archlab.analysis.principles import principle_number
    from archlab.analysis.stats import prepare_runs

    n = principle_number(study_def.kind)
    if n is None:
        return False
    if runs.empty:
        return True
    options = dict(study_def.analysis)
    result = judge_over_looks(
        n, prepare_runs(runs), curves, looks=looks or None, method=method, **options
    )
    return result.evidence == "inconclusive"


def check_evaluator() -> None:
    """One line (StudyError) if the claim evaluation ``--until-decided`` needs is missing."""
    try:
        from archlab.analysis.evidence import evaluate_claims  # noqa: F401
    except ImportError as e:
        raise StudyError(f"--until-decided needs archlab.analysis.evidence: {e}") from None


def open_comparisons(table: pd.DataFrame, stopped: Sequence[dict[str, Any]] = ()) -> set[Pair]:
    """(variant, baseline) of every accuracy row still ``inconclusive``, bar rows that stopped."""
    if table.empty:
        return set()
    rows = table[(table["kind"] == "accuracy") & (table["evidence"] == "inconclusive")]
    kept = {(str(e["claim"]), str(e["comparison"])) for e in stopped}
    return {
        (str(r.variant), str(r.baseline))
        for r in rows.itertuples()
        if (str(r.claim), str(getattr(r, "comparison", ""))) not in kept
    }


def stopped_rows(table: pd.DataFrame, looks: Sequence[int]) -> list[dict[str, Any]]:
    """Every decided accuracy row of a claim table judged over ``looks``: its plan, first stop."""
    from archlab.analysis.verdicts import DECIDED

    if table.empty or "look" not in table.columns:
        return []
    ns = sorted(set(looks))
    rows = table[(table["kind"] == "accuracy") & (table["look"].fillna(0) > 0)]
    return [
        {
            "claim": str(r.claim),
            "comparison": str(r.comparison),
            "looks": ns,
            "n": ns[min(int(r.look), len(ns)) - 1],
        }
        for r in rows.itertuples()
        if r.evidence in DECIDED
    ]


# --- looks and seeds -----------------------------------------------------------------------------


def sequential_method(study_def: StudyDef, scale: str) -> str:
    """How the scale's verdicts treat their looks: "planned" (default) or "anytime"."""
    return str(resolve_scale(study_def, scale).get("sequential", "planned"))


def plan_looks(
    study_def: StudyDef,
    scale: str,
    n0: int,
    max_seeds: int | None,
    stored: Sequence[int] | None,
) -> list[int]:
    """The seed counts the verdicts look at: stored ones (extended by a larger K), else n0..K."""
    k = max_seeds or int(resolve_scale(study_def, scale).get("max_seeds", DEFAULT_MAX_SEEDS))
    if stored:
        looks = [int(n) for n in stored]
        # anytime-valid verdicts let the scale's own K extend a started plan too (at no cost);
        # planned looks grow only when asked on the command line, and say what it costs
        grow_to = k if sequential_method(study_def, scale) == "anytime" else max_seeds
        if grow_to is not None and grow_to > looks[-1]:
            looks += range(looks[-1] + 1, grow_to + 1)
        return looks
    return list(range(n0, max(n0, k) + 1))


def all_seeds(base: Sequence[int], k: int) -> list[int]:
    """The first ``k`` seeds: the scale's, then the next seed numbers after the largest."""
    seeds = list(base)[:k]
    nxt = max(base) + 1
    while len(seeds) < k:
        seeds.append(nxt)
        nxt += 1
    if seeds[-1] >= MAX_SEEDS:
        raise StudyError(
            f"--until-decided: {k} seeds from {list(base)} reach seed {seeds[-1]}; "
            f"seeds are below {MAX_SEEDS:,}"
        )
    return seeds


def grow(counts: dict[str, int], open_pairs: set[Pair], looks: Sequence[int]) -> dict[str, int]:
    """Seed counts of the next round: both cells of each open pair move to the next look.

    ``EVERY_CELL`` (an open principle verdict) moves every cell to the look after the largest.
    """
    new = dict(counts)
    if EVERY_CELL in open_pairs and counts:
        nxt = next((n for n in looks if n > max(counts.values())), None)
        if nxt is not None:
            new = {v: max(c, nxt) for v, c in counts.items()}
    for pair in sorted(open_pairs - {EVERY_CELL}):
        if not all(v in counts for v in pair):
            continue  # a row about variants this plan does not have
        current = max(counts[v] for v in pair)
        nxt = next((n for n in looks if n > current), None)
        if nxt is not None:
            for v in pair:
                new[v] = max(new[v], nxt)
    return new


def _chosen(cells: Sequence[Cell], seeds: Sequence[int], counts: dict[str, int]) -> list[Cell]:
    """The cells within each variant's seed count."""
    index = {s: i for i, s in enumerate(seeds)}
    return [c for c in cells if index[c.seed] < counts[c.variant]]


def _start_counts(
    study: optuna.Study, cells: Sequence[Cell], seeds: Sequence[int], first: int
) -> dict[str, int]:
    """Each variant's seeds in round 1: the first look, or what an earlier session planned."""
    planned = {c["key"] for c in study.user_attrs.get("plan") or []}
    keys = {(c.variant, c.seed): c.key for c in cells}
    counts = {}
    for variant in dict.fromkeys(c.variant for c in cells):
        n = 0
        while n < len(seeds) and keys[(variant, seeds[n])] in planned:
            n += 1
        counts[variant] = max(first, n)
    return counts


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- the rounds ----------------------------------------------------------------------------------


@dataclass
class _Loop:
    """The state of the round loop of one ``study run``."""

    study_def: StudyDef
    study: optuna.Study
    scale: str
    jobs: int
    looks: list[int]
    budget_s: float
    record: dict[str, Any]
    t0: float
    resumed: bool = True  # until the first look of this invocation is logged

    @property
    def method(self) -> str:
        return str(self.record.get("method", "planned"))

    @property
    def desc(self) -> str:
        return f"{self.study_def.name} [{self.scale}]"

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def verdicts(self) -> set[Pair]:
        """Open comparisons after the runs so far (none when the study claims nothing)."""
        if not self.study_def.claims:
            return set()
        runs, curves, _ = collect(self.study)
        # anytime-valid rows never re-open, so rows kept under a planned design need no keeping
        stopped = self.record.get("stopped_rows") or [] if self.method == "planned" else []
        table = evaluate(self.study_def.claims, runs, curves, self.looks, stopped, self.method)
        pairs = open_comparisons(table, stopped)
        if self.study_def.kind in self.study_def.claims and principle_open(
            self.study_def, runs, curves, self.looks, self.method
        ):
            pairs.add(EVERY_CELL)
        return pairs

    def log_round(self, counts: dict[str, int], open_pairs: set[Pair]) -> None:
        """Record the round in the study's attrs and say it in one line on stderr."""
        rounds = self.record.setdefault("rounds", [])
        entry = {
            "round": len(rounds) + 1,
            "seeds": max(counts.values()),
            # the seeds of every cell together: a lagging pair can grow under the same maximum
            "runs": sum(counts.values()),
            "open": [list(p) for p in sorted(open_pairs)],
            "elapsed_s": round(self.elapsed(), 1),
        }
        if EVERY_CELL in open_pairs:  # the report says how often a principle was looked at
            entry["principle_open"] = True
        # a resumed run first looks again at the seeds the last recorded round had: one look
        # (only its first look: later ones may grow a lagging pair under the same maximum)
        first, self.resumed = self.resumed, False
        if first and rounds and _same_look(rounds[-1], entry):
            # the same look judged again (by this version's rules, perhaps): keep when it was
            # taken, say what is open now
            same = rounds[-1]
            same["open"] = entry["open"]
            same.pop("principle_open", None)
            if entry.get("principle_open"):
                same["principle_open"] = True
            entry = same
            self.study.set_user_attr("until_decided", self.record)
        else:
            rounds.append(entry)
            self.study.set_user_attr("until_decided", self.record)
        print(
            f"{self.desc}: round {entry['round']}: {_n(entry['seeds'], 'seed')}, "
            f"{_n(len(open_pairs), 'open comparison')}, "
            f"{duration(self.elapsed())} elapsed",
            file=sys.stderr,
            flush=True,
        )

    def over_budget(self, cells: Sequence[Cell]) -> str:
        """Why the round of ``cells`` would end past the budget, or "" if it fits."""
        pending = unfinished(self.study, cells)
        if not pending:
            return ""
        seconds, _ = per_run_s(self.study, pending[0].config)
        estimate = math.ceil(len(pending) / workers_for(self.jobs, len(pending))) * seconds
        if self.elapsed() + estimate <= self.budget_s:
            return ""
        return (
            f"budget: the next round (~{duration(estimate)}) would end past "
            f"{self.budget_s / 60:g} min"
        )

    def stop(self, reason: str) -> None:
        self.record["stopped"] = reason
        self.study.set_user_attr("until_decided", self.record)
        print(f"{self.desc}: until decided: stopped: {reason}", file=sys.stderr, flush=True)


def _same_look(before: dict[str, Any], entry: dict[str, Any]) -> bool:
    """Whether a round looks at the same seeds as the one before (older records lack runs)."""
    return before["seeds"] == entry["seeds"] and before.get("runs", entry["runs"]) == entry["runs"]


def plan_signature(cells: Sequence[Cell]) -> str:
    """What the cells are, seeds aside: a redesigned study (new cells) starts a new record."""
    first = min(c.seed for c in cells)
    keys = sorted(f"{c.variant}={c.key}" for c in cells if c.seed == first)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _keep_stopped(study_def: StudyDef, study: optuna.Study, record: dict[str, Any]) -> None:
    """Record every row the stored plan decided, as it stopped, before that plan is extended."""
    looks = study.user_attrs.get("looks")
    if not study_def.claims or not looks:
        return
    runs, curves, _ = collect(study)
    if runs.empty:
        return
    kept = list(record.get("stopped_rows") or [])
    table = evaluate(study_def.claims, runs, curves, looks, kept)
    known = {(e["claim"], e["comparison"]) for e in kept}
    kept += [e for e in stopped_rows(table, looks) if (e["claim"], e["comparison"]) not in known]
    if kept:
        record["stopped_rows"] = kept


def _switch_method(study_def: StudyDef, record: dict[str, Any], method: str) -> str:
    """The record's method after this run asks for ``method``; StudyError for anytime -> planned."""
    before = record.get("method", "planned" if record.get("rounds") else None)
    if before == "anytime" and method == "planned":
        raise StudyError(
            f"{study_def.name}: sequential: planned, but this study's verdicts are already "
            "anytime-valid; planned looks cannot be chosen after the data (allowed: anytime)"
        )
    if before == "planned" and method == "anytime":
        # valid whatever the history: the anytime test holds at every seed count
        record["switched"] = {"from": "planned", "seeds": record["rounds"][-1]["seeds"]}
        print(
            f"archlab: note: {study_def.name}: judging the verdicts anytime-valid from now on "
            "(over every seed so far); the planned looks no longer bind",
            file=sys.stderr,
        )
    record["method"] = method
    return method


def _record_looks(
    study_def: StudyDef,
    study: optuna.Study,
    looks: list[int],
    until: UntilDecided,
    cells: Sequence[Cell],
    scale: str,
) -> dict[str, Any]:
    """Store the looks (before any verdict) and the loop's settings; the record to extend."""
    record = dict(study.user_attrs.get("until_decided") or {})
    signature = plan_signature(cells)
    if record.get("plan") != signature:
        # the rounds of another design (its runs keep their keys) are not this plan's looks
        record = {"plan": signature}
    stored = study.user_attrs.get("looks")
    method = _switch_method(study_def, record, sequential_method(study_def, scale))
    if stored and looks[-1] > stored[-1]:
        if method == "planned":  # anytime-valid verdicts hold at any seed count: nothing to say
            from archlab.analysis.sequential import EXTENSION_COST

            _keep_stopped(study_def, study, record)
            # the looks spend alpha over one plan; a longer one chosen because rows are still
            # open is a redesign the 5% does not cover
            print(
                f"archlab: note: extending the planned looks from {stored[-1]} to {looks[-1]} "
                f"seeds once begun: rows decided from here on carry a false-positive rate "
                f"above 5% ({EXTENSION_COST}); give --max-seeds its largest value at the start, "
                "or judge the study anytime-valid (sequential: anytime in its scale)",
                file=sys.stderr,
            )
        record.setdefault("extended", []).append({"from": stored[-1], "to": looks[-1]})
    elif stored and until.max_seeds is not None and until.max_seeds < stored[-1]:
        print(
            f"archlab: note: keeping this study's planned looks up to {stored[-1]} seeds; "
            "--max-seeds only extends a started study",
            file=sys.stderr,
        )
    study.set_user_attr("looks", looks)
    record.update(max_seeds=looks[-1], budget_min=until.budget_min)
    study.set_user_attr("until_decided", record)
    return record


def run_until_decided(
    study_def: StudyDef,
    url: str,
    name: str,
    scale: str,
    jobs: int,
    plan: dict[str, Any],
    until: UntilDecided,
    on_round: Callable[[optuna.Study], None],
) -> list[int]:
    """Run rounds of seeds until every accuracy claim row is decided, K, or the budget.

    ``plan`` holds ``overrides``, ``tune``, ``tune_trials``, ``numerics``, ``looks`` and the
    scale's ``seeds``; ``on_round`` writes the provisional tables and report between rounds.
    """
    looks: list[int] = plan["looks"]
    seeds = all_seeds(plan["seeds"], looks[-1])
    study, cells = open_compare(
        study_def,
        url,
        name,
        scale,
        jobs,
        plan["overrides"],
        plan["tune"],
        plan["tune_trials"],
        plan["numerics"],
        seeds,
    )
    record = _record_looks(study_def, study, looks, until, cells, scale)
    loop = _Loop(
        study_def, study, scale, jobs, looks, until.budget_min * 60, record, time.monotonic()
    )
    counts = _start_counts(study, cells, seeds, looks[0])
    design = (
        f"anytime-valid, up to {looks[-1]} seeds"
        if loop.method == "anytime"
        else f"looks at {looks[0]}..{looks[-1]} seeds"
    )
    print(
        f"{loop.desc}: until decided: {design}, at most "
        f"{len(cells)} runs, a budget of {until.budget_min:g} min",
        file=sys.stderr,
        flush=True,
    )
    codes: list[int] = []
    while True:
        desc = f"{loop.desc} round {len(record.get('rounds', [])) + 1}"
        codes += run_cells(study_def, study, url, scale, jobs, _chosen(cells, seeds, counts), desc)
        if any(codes):
            loop.stop("a worker exited with an error")
            return codes
        open_pairs = loop.verdicts()
        loop.log_round(counts, open_pairs)
        following = grow(counts, open_pairs, looks)
        if not open_pairs:
            loop.stop("every accuracy claim is decided")
            return codes
        if following == counts:
            loop.stop(f"{looks[-1]} seeds reached with {_n(len(open_pairs), 'comparison')} open")
            return codes
        why = loop.over_budget(_chosen(cells, seeds, following))
        if why:
            loop.stop(why)
            return codes
        on_round(study)  # a provisional report before the next round
        counts = following
