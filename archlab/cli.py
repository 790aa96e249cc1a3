"""The ``archlab`` command line: one subcommand per job, bad input exits 2 with one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from archlab.config import ConfigError
from archlab.registry import RegistryError
from archlab.variants import SpecError


class UsageError(ValueError):
    """Bad command-line input; printed as one line, exit code 2."""


#: Exceptions that mean "the user's input is wrong": one line on stderr, exit 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    SpecError,
    ConfigError,
    RegistryError,
)


def register_user_error(exc: type[BaseException]) -> None:
    """Let a module declare its own bad-input exception type."""
    global USER_ERRORS
    if exc not in USER_ERRORS:
        USER_ERRORS = (*USER_ERRORS, exc)


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

    from archlab.variants import KNOBS, variant_table

    rows = variant_table()
    if args.json:
        print(json.dumps({"options": rows, "knobs": {k: v[0] for k, v in KNOBS.items()}}, indent=2))
        return 0
    width = max(len(r["axis"]) + len(r["option"]) for r in rows) + 3
    axis = None
    for r in rows:
        if r["axis"] != axis:
            axis = r["axis"]
            print(f"{axis}:")
        mark = "*" if r["default"] else " "
        label = f"  {mark} {r['option']}"
        print(f"{label:<{width + 4}} {r['description']}  [{r['paper']}]")
    print("knobs:")
    for k, (help_, _, _) in KNOBS.items():
        print(f"    {k:<{width}} {help_}")
    print("(* = default of the mini model)")
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

    from archlab.measure import flops_report

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
    print(f"model {rep['model']}  input {rep['in_chans']}x{rep['input_size']}x{rep['input_size']}")
    print(f"  macs   {rep['macs']:>16,}  (conv + linear; 1 MAC = 1 multiply-add)")
    print(f"  fvcore {rep['macs_fvcore_total']:>16,}  (adds BN, pooling; fvcore calls these flops)")
    print(f"  params {rep['params']:>16,}  (inference; {rep['params_with_aux']:,} with aux head)")
    print("  by stage (macs, params, output C x H x W):")
    for name, st in rep["by_stage"].items():
        shape = "x".join(str(v) for v in st.get("output_shape", []))
        print(f"    {name:<12} {st['macs']:>16,} {st['params']:>12,}  {shape}")
    return 0


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_variants, _add_flops]


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
    except USER_ERRORS as e:
        print(f"archlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
