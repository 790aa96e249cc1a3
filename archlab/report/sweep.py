"""The one-axis sweep behind ``archlab report-flops``: every variant counted three ways.

``one_axis_variants`` lists every option of every design axis, one axis changed at a time from
a model's default; ``count`` gives a variant's MACs (closed form per layer, torch's
FlopCounterMode / 2 and optionally fvcore) and params. ``block_claims`` are the paper's
block-level cost ratios, counted on our registered blocks by their analytic formulas and by
fvcore, as exact fractions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archlab.analysis.claims import CLAIMS
from archlab.arch.blocks.conv import conv_macs
from archlab.arch.cost import CONV_LINEAR_OPS, conv_linear_macs, fvcore_conv_macs, fvcore_counts
from archlab.arch.models import MODELS, build_model, default_spec
from archlab.arch.spec import AXES, STEM, ArchSpec

#: Extra kernel sizes of the conv_nxn axis: the paper's 3x3 ratios (2/3, 8/9) need n = 3.
EXTRA_N: tuple[int, ...] = (3,)
#: Cost claims of ``analysis.claims`` checked at block level, with the kernel size n they use.
CLAIM_N: dict[str, int] = {"conv5x5_cost": 5, "nxn_cost": 3, "nxn7_cost": 7, "2x2_cost": 3}
GRID_CLAIM = "grid_cost"
#: Equal channels c and grid d of the block-level ratios (any values give the same ratio).
BLOCK_C, BLOCK_D = 16, 14


@dataclass(frozen=True)
class Variant:
    """One spec of a one-axis-at-a-time sweep: the axis and option it sets."""

    axis: str
    option: str
    spec: ArchSpec
    overrides: tuple[str, ...]  # key=value changes from the model's default; () = the default

    @property
    def label(self) -> str:
        """``default`` or the overrides, e.g. ``conv_nxn=2x2x2 n=3``."""
        return " ".join(self.overrides) or "default"


def one_axis_variants(model_name: str, extra_n: Sequence[int] = EXTRA_N) -> list[Variant]:
    """Every option of every axis, one axis changed at a time from the model's default.

    An option that exists only for some kernel sizes (2x2x2: n = 3) takes the smallest;
    conv_nxn's options are also listed at each ``extra_n``.
    """
    base = default_spec(model_name)
    out: list[Variant] = []
    for axis, reg in AXES.items():
        for option in reg.names():
            ns: list[int | None] = [None, *(extra_n if axis == "conv_nxn" else ())]
            for n in ns:
                changes: dict[str, Any] = {axis: option}
                valid_n = getattr(reg.get(option), "valid_n", None)
                if n is not None:
                    changes["n"] = n
                elif valid_n is not None and base.n not in valid_n:
                    changes["n"] = min(valid_n)
                spec = base.replace(**changes)
                overrides = tuple(f"{k}={v}" for k, v in changes.items() if getattr(base, k) != v)
                v = Variant(axis, option, spec, overrides)
                if all(o.spec != spec or o.axis != axis for o in out):
                    out.append(v)
    return out


@dataclass(frozen=True)
class Counts:
    """Costs of one model variant, counted three ways."""

    macs: int  # closed form, conv + linear
    flop_counter_macs: int  # FlopCounterMode / 2
    fvcore_macs: int | None  # fvcore conv + linear (None: not traced)
    fvcore_total: int | None  # fvcore's total (adds BatchNorm and adaptive pooling)
    fvcore_by_op: dict[str, int] | None
    params: int  # inference (aux head excluded)
    params_with_aux: int


def count(model_name: str, spec: ArchSpec, *, fvcore: bool = True) -> Counts:
    """Closed-form, FlopCounterMode and (optionally) fvcore counts of one variant, eval mode."""
    d = MODELS.get(model_name)
    shape = (1, d.in_chans, d.input_size, d.input_size)
    if fvcore:  # fvcore traces with TorchScript, which needs real tensors
        with torch.random.fork_rng():  # weight init must not move the caller's RNG
            model = build_model(model_name, spec).eval()
        x = torch.zeros(shape)
    else:
        # shapes are all the closed form and FlopCounterMode need: on the meta device nothing
        # is initialized or computed, so a full-size row costs a fraction of a real forward
        with torch.device("meta"):
            model = build_model(model_name, spec).eval()
        x = torch.zeros(shape, device="meta")
    by_op = None
    if fvcore:
        by_op = {k: int(v) for k, v in fvcore_counts(model, x)[0].by_operator().items()}
    # one forward serves two counts: the closed form's hooks run inside FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        closed = sum(conv_linear_macs(model, x).values())
    total = sum(p.numel() for p in model.parameters())
    aux = model.AuxLogits
    aux_params = sum(p.numel() for p in aux.parameters()) if aux is not None else 0
    return Counts(
        macs=closed,
        flop_counter_macs=counter.get_total_flops() // 2,  # it counts 2 flops per MAC
        fvcore_macs=None if by_op is None else sum(by_op.get(op, 0) for op in CONV_LINEAR_OPS),
        fvcore_total=None if by_op is None else sum(by_op.values()),
        fvcore_by_op=by_op,
        params=total - aux_params,
        params_with_aux=total,
    )


# --- block-level ratios -------------------------------------------------------------------------


def _fvcore_chain(layers: list[nn.Module], cin: int, d: int) -> int:
    """fvcore's conv + linear count of a chain of layers on a d x d input."""
    return fvcore_conv_macs(nn.Sequential(*layers), torch.zeros(1, cin, d, d))


def _factor_block(axis: str, option: str, n: int) -> tuple[int, int]:
    """Analytic and fvcore MACs of a factorization at equal channels c, stride 1, d x d."""
    c, d = BLOCK_C, BLOCK_D
    f = AXES[axis].get(option)
    layers = f.layers(c, c, c, n)
    return f.macs(c, c, c, n, d, d), _fvcore_chain(layers, c, d)


def _stem_block(option: str) -> tuple[int, int]:
    """Analytic and fvcore MACs of a stem at stride 1, 'same' padding, equal widths."""
    c, d = BLOCK_C, BLOCK_D
    stem = STEM.get(option)
    layers = [m for _, m in stem.build(c, (c, c, c), 1, False)]
    return stem.macs(c, (c, c, c), 1, d, d, False), _fvcore_chain(layers, c, d)


def _grid_block(option: str) -> tuple[int, int]:
    """A k -> 2k 3x3 conv before (conv_pool) or after (pool_conv) halving a d x d grid."""
    c, d = BLOCK_C, BLOCK_D
    conv = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    if option == "conv_pool":
        return conv_macs(c, 2 * c, 3, 3, d, d), _fvcore_chain([conv, pool], c, d)
    return conv_macs(c, 2 * c, 3, 3, d // 2, d // 2), _fvcore_chain([pool, conv], c, d)


@dataclass(frozen=True)
class BlockClaim:
    """A block-level cost ratio option / reference, and what the paper (or claims) says."""

    id: str
    axis: str
    option: str
    reference: str
    n: int | None
    expected: Fraction | None  # None: the paper gives no block-level number
    paper: str
    cost: Callable[[str], tuple[int, int]]  # option -> (analytic MACs, fvcore MACs)

    def ratios(self) -> tuple[Fraction, Fraction]:
        """Exact analytic and fvcore ratios option / reference."""
        (a_opt, f_opt), (a_ref, f_ref) = self.cost(self.option), self.cost(self.reference)
        return Fraction(a_opt, a_ref), Fraction(f_opt, f_ref)


def block_claims() -> list[BlockClaim]:
    """The paper's block-level cost ratios (from ``archlab.analysis.claims``) and the stem's."""
    out = []
    for cid, n in CLAIM_N.items():
        c = CLAIMS[cid]
        cost = functools.partial(_factor_block, c.axis, n=n)
        out.append(
            BlockClaim(cid, c.axis, c.option, c.reference, n, c.expected, c.paper_number, cost)
        )
    g = CLAIMS[GRID_CLAIM]
    out.append(
        BlockClaim(
            g.id, g.axis, g.option, g.reference, None, g.expected, g.paper_number, _grid_block
        )
    )
    out.append(
        BlockClaim(
            "stem_cost",
            "stem",
            "3x3x3",
            "7x7",
            None,
            None,
            "no block number (Table 3: whole nets 3.8 -> 4.8 Bn ops)",
            _stem_block,
        )
    )
    return out


#: A block claim with its exact analytic and fvcore-counted ratios.
BlockResult = tuple[BlockClaim, Fraction, Fraction]


def block_results() -> list[BlockResult]:
    """Every block claim with its ratios (fvcore traces each block once)."""
    return [(bc, *bc.ratios()) for bc in block_claims()]
