"""Exact cost accounting: MACs (1 multiply-add = 1 MAC), params, representation sizes.

Three independent counts of conv + linear MACs must agree: fvcore's FlopCountAnalysis (which calls
MACs "flops"), a closed-form formula applied per layer, and torch's FlopCounterMode / 2 (it
counts 2 flops per multiply-add). fvcore's total also adds BatchNorm and adaptive pooling.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archlab.arch.blocks.modules import BranchConcat
from archlab.arch.models import MODELS, Inception, build_model, default_spec
from archlab.arch.spec import ArchSpec, SpecError, apply_overrides

CONV_LINEAR_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


@dataclass(frozen=True)
class Complexity:
    """Cost of one model at one input size (eval mode: the aux head is not counted in MACs)."""

    macs: int  # conv + linear multiply-adds per image
    macs_fvcore_total: int  # fvcore's total: conv + linear + BatchNorm + adaptive pooling
    params: int  # parameters used at inference (aux head excluded)
    params_with_aux: int
    activations: int  # fvcore's count of conv/linear output elements per image
    by_stage: dict[str, dict[str, Any]] = field(default_factory=dict)
    repr_sizes: dict[str, int] = field(default_factory=dict)  # H*W*C along the trunk

    @property
    def min_repr(self) -> float:
        """Smallest representation along the trunk relative to the stem's output."""
        sizes = list(self.repr_sizes.values())
        return min(sizes) / sizes[0] if sizes else float("nan")


def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Closed-form MACs of every Conv2d and Linear, keyed by module name (one forward)."""
    counts: dict[str, int] = {}

    def hook(name: str):  # noqa: ANN202
        def fn(m: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                per_out = m.in_channels // m.groups * kh * kw
                counts[name] = per_out * out.numel() // out.shape[0]
            else:
                counts[name] = m.in_features * m.out_features

        return fn

    layers = [
        (m, hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    _forward_with_hooks(model, x, layers)
    return counts


def _forward_with_hooks(
    model: nn.Module, x: torch.Tensor, hooks: list[tuple[nn.Module, Any]]
) -> None:
    """One no-grad forward with temporary forward hooks (removed even if it fails)."""
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def flop_counter_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs per image from torch's FlopCounterMode (which counts 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    return fc.get_total_flops() // 2 // x.shape[0]


def fvcore_counts(model: nn.Module, x: torch.Tensor) -> tuple[Any, Any]:
    """fvcore's FlopCountAnalysis and ActivationCountAnalysis, warnings silenced."""
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    flops = FlopCountAnalysis(model, x)
    acts = ActivationCountAnalysis(model, x)
    for a in (flops, acts):
        a.unsupported_ops_warnings(False)
        a.uncalled_modules_warnings(False)
    return flops, acts


def representation_sizes(model: Inception, x: torch.Tensor) -> dict[str, int]:
    """H*W*C of the stem's output and of every tensor after it along the trunk.

    Layers inside the stem are left out so the first entry is the stem's output: stems that
    produce the same tensor (3x3x3 and 7x7) then give the same ``min_repr``.
    """
    sizes: dict[str, int] = {}
    hooks: list[tuple[nn.Module, Any]] = []

    def record(name: str):  # noqa: ANN202
        def fn(m: nn.Module, inp: Any, out: torch.Tensor) -> None:
            sizes[name] = out[0].numel()

        return fn

    for stage, names in model.stages.items():
        if stage in ("aux", "head"):
            continue
        for name in names[-1:] if stage == "stem" else names:
            m = model.get_submodule(name)
            # a single-branch block is a chain: each step's output is a representation too
            if isinstance(m, BranchConcat) and len(m.plan) == 1:
                for step in m.plan[0]:
                    if isinstance(step, str):
                        hooks.append((m.get_submodule(step), record(f"{name}.{step}")))
            hooks.append((m, record(name)))
    _forward_with_hooks(model, x, hooks)
    return sizes


def measure_model(model: Inception, input_size: int, in_chans: int) -> Complexity:
    """Count MACs/params of an already-built model (eval mode, batch of 1)."""
    model = model.eval()
    x = torch.zeros(1, in_chans, input_size, input_size)
    flops, acts = fvcore_counts(model, x)
    by_mod_op = flops.by_module_and_operator()
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        model.get_submodule(names[-1]).register_forward_hook(
            lambda m, i, o, s=stage: shapes.__setitem__(s, tuple(o.shape[1:]))
        )
        for stage, names in model.stages.items()
        if stage != "head"
    ]
    reprs = representation_sizes(model, x)
    for h in handles:
        h.remove()
    by_stage: dict[str, dict[str, Any]] = {}
    for stage, names in model.stages.items():
        macs = sum(
            c for n in names for op, c in by_mod_op.get(n, {}).items() if op in CONV_LINEAR_OPS
        )
        params = sum(p.numel() for n in names for p in model.get_submodule(n).parameters())
        by_stage[stage] = {"macs": int(macs), "params": int(params)}
        if stage in shapes:
            by_stage[stage]["output_shape"] = list(shapes[stage])
    by_op = flops.by_operator()
    macs = sum(c for op, c in by_op.items() if op in CONV_LINEAR_OPS)
    aux_params = by_stage.get("aux", {}).get("params", 0)
    total_params = sum(p.numel() for p in model.parameters())
    return Complexity(
        macs=int(macs),
        macs_fvcore_total=int(flops.total()),
        params=int(total_params - aux_params),
        params_with_aux=int(total_params),
        activations=int(acts.total()),
        by_stage=by_stage,
        repr_sizes=reprs,
    )


@functools.lru_cache(maxsize=256)
def complexity(
    model_name: str = "inception_mini",
    spec: ArchSpec | None = None,
    *,
    input_size: int | None = None,
    in_chans: int | None = None,
    num_classes: int | None = None,
) -> Complexity:
    """Cost of a registered model with a spec (cached: studies ask for the same cells often)."""
    d = MODELS.get(model_name)
    input_size, in_chans = input_size or d.input_size, in_chans or d.in_chans
    with torch.random.fork_rng():  # building initializes weights; leave the caller's RNG alone
        model = build_model(
            model_name, spec, num_classes=num_classes, in_chans=in_chans, input_size=input_size
        )
    return measure_model(model, input_size, in_chans)


@functools.lru_cache(maxsize=4096)
def fast_macs(
    model_name: str,
    spec: ArchSpec,
    *,
    input_size: int | None = None,
    in_chans: int | None = None,
    num_classes: int | None = None,
) -> int:
    """Conv + linear MACs by the closed-form per-layer formula (no tracing: for searches)."""
    d = MODELS.get(model_name)
    input_size, in_chans = input_size or d.input_size, in_chans or d.in_chans
    # the formula needs shapes only: on the meta device nothing is allocated, initialized or
    # computed, so solve_width's 16x-wide probes cost milliseconds, not gigabytes
    with torch.device("meta"):
        model = build_model(
            model_name, spec, num_classes=num_classes, in_chans=in_chans, input_size=input_size
        ).eval()
    x = torch.zeros(1, in_chans, input_size, input_size, device="meta")
    return sum(conv_linear_macs(model, x).values())


def solve_width(
    model_name: str,
    spec: ArchSpec,
    budget_macs: int,
    *,
    input_size: int | None = None,
    in_chans: int | None = None,
    num_classes: int | None = None,
    tol: float = 0.02,
) -> ArchSpec:
    """The spec with width_mult set so its MACs are within +-tol of the budget (iso-MAC)."""
    kw = {"input_size": input_size, "in_chans": in_chans, "num_classes": num_classes}

    def macs(w: float) -> int:
        return fast_macs(model_name, spec.replace(width_mult=w), **kw)

    lo, hi = 1 / 64, 16.0
    if not macs(lo) <= budget_macs <= macs(hi):
        raise SpecError(
            f"iso-MAC budget {budget_macs:,} MACs is unreachable: width_mult {lo}..{hi} "
            f"gives {macs(lo):,}..{macs(hi):,} MACs"
        )
    best_w, best_err = spec.width_mult, float("inf")
    for _ in range(40):  # MACs grow monotonically (up to rounding) with width: bisect
        mid = (lo + hi) / 2
        m = macs(mid)
        err = abs(m - budget_macs) / budget_macs
        if err < best_err:
            best_w, best_err = mid, err
        if err <= tol / 4 or hi - lo < 1e-4:  # close enough, or rounding stops any progress
            break
        lo, hi = (mid, hi) if m < budget_macs else (lo, mid)
    if best_err > tol:
        raise SpecError(
            f"iso-MAC budget {budget_macs:,} MACs: closest width {best_w:.4f} is "
            f"{best_err:.1%} off, more than the tolerance {tol:.0%}"
        )
    return spec.replace(width_mult=round(best_w, 6))


def flops_report(
    model_name: str,
    overrides: list[str] | None = None,
    *,
    input_size: int | None = None,
    in_chans: int | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """JSON-ready cost report of one model variant (the ``archlab flops`` command)."""
    d = MODELS.get(model_name)
    spec = apply_overrides(default_spec(model_name), overrides or [])
    # None means "the family's default"; 0 is a user error, not a request for the default
    input_size = d.input_size if input_size is None else input_size
    in_chans = d.in_chans if in_chans is None else in_chans
    num_classes = d.num_classes if num_classes is None else num_classes
    for key, value in (
        ("--input-size", input_size),
        ("--in-chans", in_chans),
        ("--num-classes", num_classes),
    ):
        if value < 1:
            raise SpecError(f"{key}={value} must be a positive integer")
    c = complexity(
        model_name, spec, input_size=input_size, in_chans=in_chans, num_classes=num_classes
    )
    return {
        "model": model_name,
        "input_size": input_size,
        "in_chans": in_chans,
        "num_classes": num_classes,
        "spec": spec.to_dict(),
        "macs": c.macs,
        "macs_note": "conv + linear multiply-adds per image; 1 MAC = 1 multiply-add",
        "macs_fvcore_total": c.macs_fvcore_total,
        "macs_fvcore_extra": c.macs_fvcore_total - c.macs,
        "macs_fvcore_extra_note": "BatchNorm and adaptive pooling, as fvcore counts them",
        "params": c.params,
        "params_with_aux": c.params_with_aux,
        "activations": c.activations,
        "min_repr": c.min_repr,
        "by_stage": c.by_stage,
    }


def flops_lines(rep: dict[str, Any]) -> list[str]:
    """The ``archlab flops`` text of a ``flops_report``: totals, then one line per stage."""
    size = rep["input_size"]
    lines = [
        f"model {rep['model']}  input {rep['in_chans']}x{size}x{size}",
        f"  macs   {rep['macs']:>16,}  (conv + linear; 1 MAC = 1 multiply-add)",
        f"  fvcore {rep['macs_fvcore_total']:>16,}  (adds BN, pooling; fvcore calls these flops)",
        f"  params {rep['params']:>16,}  (inference; {rep['params_with_aux']:,} with aux head)",
        "  by stage (macs, params, output C x H x W):",
    ]
    for name, st in rep["by_stage"].items():
        shape = "x".join(str(v) for v in st.get("output_shape", []))
        lines.append(f"    {name:<12} {st['macs']:>16,} {st['params']:>12,}  {shape}")
    return lines


def fvcore_conv_macs(module: nn.Module, x: torch.Tensor) -> int:
    """fvcore's conv + linear MACs of ``module`` (eval mode) on input ``x``."""
    flops, _ = fvcore_counts(module.eval(), x)
    return int(sum(c for op, c in flops.by_operator().items() if op in CONV_LINEAR_OPS))


@functools.lru_cache(maxsize=1)
def measured_block_ratios(channels: int = 16, grid: int = 14) -> dict[str, float]:
    """The paper's block-level cost ratios, counted by fvcore on archlab's registered blocks."""
    from archlab.arch.blocks.modules import Ctx
    from archlab.arch.blocks.reduce import ReductionPlan
    from archlab.arch.spec import CONV5X5, CONV_NXN, GRID_REDUCTION

    c = channels
    x = torch.zeros(1, c, grid, grid)

    def block(option: Any, n: int) -> int:
        return fvcore_conv_macs(nn.Sequential(*option.layers(c, c, c, n)), x)

    ctx = Ctx.from_spec(ArchSpec())
    plan = ReductionPlan("B", {"b3": c, "dbl_red": c, "dbl": c}, 1.0, valid=False)
    red = {
        k: fvcore_conv_macs(GRID_REDUCTION.get(k)(c, plan, ctx), x) for k in GRID_REDUCTION.names()
    }
    single = CONV_NXN.get("nxn")
    return {
        "conv5x5_cost": block(CONV5X5.get("3x3x2_sqrt"), 5) / block(CONV5X5.get("5x5"), 5),
        "nxn_cost": block(CONV_NXN.get("1xn_nx1"), 3) / block(single, 3),
        "nxn7_cost": block(CONV_NXN.get("1xn_nx1"), 7) / block(single, 7),
        "2x2_cost": block(CONV_NXN.get("2x2x2"), 3) / block(single, 3),
        "grid_cost": red["conv_pool"] / red["pool_conv"],
    }
