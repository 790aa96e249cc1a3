"""The ``archlab`` command line: one subcommand per job, bad input exits 2 with one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from archlab.errors import UserError

if TYPE_CHECKING:
    from archlab.study.decide import UntilDecided


class UsageError(UserError):
    """Bad command-line input; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + exits 2; keep it one line
        print(f"archlab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


# --- subcommands -------------------------------------------------------------------------------
# Each _add_* function declares one subcommand and sets ``func`` to its handler.


def _add_variants(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("variants", help="list every design axis, its options and paper source")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_variants)


def _cmd_variants(args: argparse.Namespace) -> int:
    import json

    from archlab.arch.spec import KNOBS, variant_lines, variant_table

    if args.json:
        rows = variant_table()
        print(json.dumps({"options": rows, "knobs": {k: v[0] for k, v in KNOBS.items()}}, indent=2))
        return 0
    for line in variant_lines():
        print(line)
    return 0


def _add_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="count MACs (1 multiply-add = 1 MAC) and params of a model")
    p.add_argument("--model", default="inception_mini", help="inception_mini | inception_v3_tv | …")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="AXIS=VALUE")
    p.add_argument("--input-size", type=int, default=None, help="square input side in pixels")
    p.add_argument("--in-chans", type=int, default=None, help="input channels")
    p.add_argument("--num-classes", type=int, default=None, help="classifier outputs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_flops)


def _cmd_flops(args: argparse.Namespace) -> int:
    import json

    from archlab.arch.cost import flops_lines, flops_report

    rep = flops_report(
        args.model,
        args.overrides,
        input_size=args.input_size,
        in_chans=args.in_chans,
        num_classes=args.num_classes,
    )
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    for line in flops_lines(rep):
        print(line)
    return 0


def _add_report_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report-flops",
        help="MACs/params of every option of every axis (mini and full size): md, csv, png",
    )
    p.add_argument("--out", default="reports/flops", help="output folder")
    p.add_argument(
        "--fvcore-all",
        action="store_true",
        help="cross-check every full-size row with fvcore too (about a second per row)",
    )
    p.set_defaults(func=_cmd_report_flops)


def _cmd_report_flops(args: argparse.Namespace) -> int:
    import time

    from archlab.report.flops import write_report

    t0 = time.perf_counter()
    paths = write_report(args.out, fvcore_all=args.fvcore_all)
    for path in paths.values():
        print(path)
    print(f"report-flops: {time.perf_counter() - t0:.1f} s")
    return 0


def _add_report_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report-index",
        help="reports/index.html + README.md (every study) and claims.md/.csv (the scorecard)",
    )
    p.add_argument("--reports", default="reports", help="reports root")
    p.add_argument("--readme", metavar="FILE", help="also rewrite FILE's generated results block")
    p.set_defaults(func=_cmd_report_index)


def _cmd_report_index(args: argparse.Namespace) -> int:
    from archlab.report.index import update_readme, write_index

    for path in write_index(args.reports).values():
        print(path)
    if args.readme:
        try:
            print(update_readme(args.readme, args.reports))
        except (OSError, ValueError) as e:
            raise UsageError(f"--readme {args.readme}: {e}") from None
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one variant and print its final metrics")
    p.add_argument("--dataset", help="fashion-mnist | synthetic[:N] | idx:PATH | cifar10:PATH …")
    p.add_argument("--model", default="inception_mini", help="inception_mini | inception_v3_tv | …")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="AXIS=VALUE")
    p.add_argument(
        "--preset", help="start from a named recipe: quick | study | study-fixed | full | paper"
    )
    p.add_argument(
        "--recipe", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig field"
    )
    p.add_argument("--epochs", type=float, help="epochs (fractions allowed)")
    p.add_argument("--seed", type=int, help="seed of init, data order and augmentation")
    p.add_argument("--train-subset", type=int, metavar="N", help="train on N images")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--json", metavar="FILE", help="write the RunResult as JSON")
    p.add_argument(
        "--predictions",
        metavar="FILE.npz",
        help="write every val/test image's predicted and true class (numpy .npz)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from archlab.arch.models import default_spec
    from archlab.arch.spec import apply_overrides
    from archlab.io import write_json, write_npz
    from archlab.train.config import TrainConfig, config_from_overrides, preset, validate_config
    from archlab.train.runtime import describe
    from archlab.train.trainer import load_data, summary_lines, train

    if args.predictions and not args.predictions.endswith(".npz"):
        raise UsageError(f"--predictions {args.predictions}: allowed: a file name ending in .npz")
    spec = apply_overrides(default_spec(args.model), args.overrides)
    flags = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "seed": args.seed,
        "train_subset": args.train_subset,
        "device": args.device,
    }
    base = preset(args.preset) if args.preset else TrainConfig()
    config = config_from_overrides(base, args.recipe)
    config = config.replace(**{k: v for k, v in flags.items() if v is not None})
    validate_config(config)
    data = load_data(config)  # first: bad data is its one error line, with no runtime line above
    if not args.quiet:
        print(f"runtime: {describe(config)}", file=sys.stderr, flush=True)
    result = train(
        spec,
        config,
        model=args.model,
        progress=not args.quiet,
        dataset=data,
        keep_predictions=bool(args.predictions),
    )
    for line in summary_lines(result):
        print(line)
    if args.json:
        write_json(args.json, result.to_dict())
    if args.predictions and result.predictions is not None:
        write_npz(args.predictions, result.predictions)
    return 0 if result.status == "complete" else 1


def _add_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run, watch and report ablation studies (studies/*.yaml)")
    ssub = p.add_subparsers(dest="study_command", required=True, parser_class=_Parser)
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument("--storage", help="optuna storage URL (default results/NAME/journal.log)")
    dirs.add_argument("--results", default="results", metavar="DIR", help="results root")
    dirs.add_argument("--scale", help="quick | full | smoke | … (run: default quick)")

    r = ssub.add_parser("run", parents=[dirs], help="run or resume a study, then report it")
    r.add_argument("file", help="study file (studies/NAME.yaml) or study name")
    r.add_argument("--jobs", type=int, default=1, help="local worker processes, one core set each")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a base spec key, a recipe key or seeds (repeatable)",
    )
    r.add_argument("--tune", default="", metavar="K1,K2", help="tune recipe keys per variant")
    r.add_argument("--trials", type=int, default=8, help="tuning trials per variant")
    r.add_argument("--reports", default="reports", metavar="DIR", help="reports root")
    r.add_argument("--no-report", action="store_true", help="export CSVs but render no report")
    r.add_argument(
        "--until-decided",
        action="store_true",
        help="add seeds round by round to the comparisons whose claims are still open",
    )
    r.add_argument(
        "--max-seeds",
        type=int,
        metavar="K",
        help="--until-decided: stop at K seeds (default: the scale's max_seeds, else 10)",
    )
    r.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="--until-decided: start no round that would end past this (default 20)",
    )
    r.add_argument("--yes", action="store_true", help="allow a plan of more than 1,000 runs")
    r.add_argument(
        "--numerics",
        choices=("check", "pinned"),
        default="check",
        help="a machine whose device/precision differ from the study's pinned ones: refuse "
        "(check, default) or run as pinned",
    )
    r.set_defaults(func=_cmd_study_run)

    s = ssub.add_parser("status", parents=[dirs], help="done / running / failed / remaining runs")
    s.add_argument("study", help="study name or file")
    s.set_defaults(func=_cmd_study_status)

    rp = ssub.add_parser("report", parents=[dirs], help="re-render a report from stored results")
    rp.add_argument("study", help="study name or file; 'principles' for the principles page")
    rp.add_argument("--reports", default="reports", metavar="DIR", help="reports root")
    rp.set_defaults(func=_cmd_study_report)


def _until_decided(args: argparse.Namespace) -> UntilDecided | None:
    """The ``--until-decided`` settings, or None; its options alone are a usage error."""
    from archlab.study.decide import DEFAULT_BUDGET_MIN, UntilDecided

    if not args.until_decided:
        for flag, value in (("--max-seeds", args.max_seeds), ("--budget", args.budget)):
            if value is not None:
                raise UsageError(f"{flag} is an option of --until-decided")
        return None
    budget = DEFAULT_BUDGET_MIN if args.budget is None else args.budget
    until = UntilDecided(max_seeds=args.max_seeds, budget_min=budget)
    until.check()
    return until


def _cmd_study_run(args: argparse.Namespace) -> int:
    from archlab.study.engine import run_study
    from archlab.study.studyfile import find_study_file

    until = _until_decided(args)
    outcome = run_study(
        find_study_file(args.file),
        scale=args.scale or "quick",
        jobs=args.jobs,
        storage=args.storage,
        overrides=args.overrides,
        tune=[k.strip() for k in args.tune.split(",") if k.strip()],
        tune_trials=args.trials,
        results_dir=args.results,
        reports_dir=args.reports,
        render=not args.no_report,
        until_decided=until,
        yes=args.yes,
        numerics=args.numerics,
    )
    c = outcome.counts
    print(
        f"{outcome.study} [{outcome.scale}]: {c['done']}/{outcome.total} runs done "
        f"({c['diverged']} diverged), {c['failed']} failed, {c['running'] + c['waiting']} "
        "running or queued elsewhere"
    )
    for name, path in outcome.files.items():
        if name in ("runs.csv", "report.md", "report.html"):
            print(f"  {path}")
    return 0 if outcome.ok else 1


def _cmd_study_status(args: argparse.Namespace) -> int:
    from archlab.study.engine import study_status

    table = study_status(
        args.study, scale=args.scale, storage=args.storage, results_dir=args.results
    )
    cols = ("total", "done", "diverged", "running", "waiting", "failed", "remaining")
    print(f"{'scale':<10}" + "".join(f"{c:>10}" for c in cols))
    for scale, counts in table.items():
        print(f"{scale:<10}" + "".join(f"{counts[c]:>10}" for c in cols))
    return 0


def _cmd_study_report(args: argparse.Namespace) -> int:
    from archlab.study.engine import study_report

    files = study_report(
        args.study,
        scale=args.scale,
        storage=args.storage,
        results_dir=args.results,
        reports_dir=args.reports,
    )
    for name in ("report.md", "report.html"):
        if name in files:
            print(files[name])
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="study runs per hour, and the trainer vs a plain loop")
    p.add_argument("--out", default="reports/bench", metavar="DIR", help="bench.md, bench.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes on synthetic data (smoke)")
    p.add_argument("--seeds", type=int, help="seeds of the accuracy comparison (default 3)")
    p.add_argument("--steps", type=int, help="training steps per seed (default 40)")
    p.add_argument(
        "--run-seeds", type=int, help="paired seeds of whole study runs per trainer (default 5)"
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto (the CPU, plus CUDA where there is a GPU) | cpu | cuda (the GPU alone)",
    )
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from archlab.bench import run_bench, settings
    from archlab.report.bench import check_lines, write_bench

    try:
        s = settings(
            quick=args.quick,
            seeds=args.seeds,
            steps=args.steps,
            run_seeds=args.run_seeds,
            device=args.device,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    result = run_bench(s, log=lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    paths = write_bench(result, args.out)
    for line in check_lines(result):
        print(line)
    print(f"wrote {paths['md']} and {paths['json']} in {result['elapsed_s']:.0f} s")
    return 0  # falling short of a target is a finding, reported above, not a failed command


def _add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes", help="measure the training presets over seeds (mean, 95%% CI, time)"
    )
    p.add_argument(
        "--preset",
        dest="presets",
        action="append",
        metavar="NAME",
        help="recipe to measure (repeatable; default: quick and full)",
    )
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--jobs", type=int, default=1, help="runs side by side, one core set each")
    p.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field of every preset (reported as such)",
    )
    p.add_argument("--results", default="results/recipes", metavar="DIR", help="run JSON files")
    p.add_argument("--out", default="reports/recipes", metavar="DIR", help="report folder")
    p.add_argument("--report-only", action="store_true", help="render from stored runs only")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_recipes)


def _cmd_recipes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.recipes import render, run_recipes
    from archlab.train.config import parse_overrides

    presets = args.presets or ["quick", "full"]
    overrides = parse_overrides(args.recipe)  # every key given, even one equal to a default
    results, out = Path(args.results), Path(args.out)
    if not args.report_only:
        ran = run_recipes(
            presets,
            args.seeds,
            results,
            jobs=args.jobs,
            overrides=overrides,
            progress=not args.quiet,
        )
        print(f"trained {len(ran)} run(s); the others were already stored in {results}")
    paths = render(presets, args.seeds, results, out, overrides)
    print(f"wrote {paths['report.md']}, {paths['report.html']} and {paths['runs.csv']}")
    return 0


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_variants,
    _add_flops,
    _add_report_flops,
    _add_report_index,
    _add_train,
    _add_study,
    _add_bench,
    _add_recipes,
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(prog="archlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``archlab`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"archlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
