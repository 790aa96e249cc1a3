"""Blocks: every registered factorization, stem, grid reduction and module, against fvcore and
FlopCounterMode, and the paper's exact cost ratios."""

from fractions import Fraction

import pytest
import torch
from torch import nn

from archlab.arch.blocks.aux import AuxHead
from archlab.arch.blocks.conv import ConvBN, PoolConvBN, conv_macs, conv_params
from archlab.arch.blocks.modules import Ctx, module_a, module_b
from archlab.arch.blocks.reduce import ReductionPlan
from archlab.arch.cost import conv_linear_macs, flop_counter_macs, fvcore_counts
from archlab.arch.models.inception import Layout
from archlab.arch.models.inception_v3 import TORCHVISION
from archlab.arch.models.mini import MINI
from archlab.arch.spec import (
    AUX_HEAD,
    AXES,
    COARSE_MODULE,
    CONV5X5,
    FACTOR_ACT,
    GRID_REDUCTION,
    STEM,
    ArchSpec,
)


def _n_values(axis: str, option: str) -> list[int]:
    """Kernel sizes a factorization is tested at: 5 for the 5x5 axis, 3 and 7 where allowed."""
    if axis == "conv5x5":
        return [5]
    valid = getattr(AXES[axis].get(option), "valid_n", None)
    return [n for n in (3, 7) if valid is None or n in valid]


FACTORIZATIONS = [
    (axis, e.name, n)
    for axis in ("conv5x5", "conv_nxn")
    for e in AXES[axis]
    for n in _n_values(axis, e.name)
]
IDS = [f"{a}={o}-n{n}" for a, o, n in FACTORIZATIONS]


def _chain(layers: list[nn.Module]) -> nn.Sequential:
    return nn.Sequential(*layers)


def _fvcore_ops(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    return dict(fvcore_counts(model.eval(), x)[0].by_operator())


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize(("axis", "option", "n"), FACTORIZATIONS, ids=IDS)
def test_factorization_keeps_shape_and_passes_gradients(
    axis: str, option: str, n: int, transpose: bool
) -> None:
    torch.manual_seed(0)
    f = AXES[axis].get(option)
    block = _chain(f.layers(4, 6, 5, n, transpose=transpose)).train()
    x = torch.randn(2, 4, 9, 11, requires_grad=True)  # not square: catches swapped h and w
    y = block(x)
    assert y.shape == (2, 5, 9, 11)
    (y * torch.randn_like(y)).sum().backward()  # a plain sum would cancel through BatchNorm
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("axis", "option", "n"), FACTORIZATIONS, ids=IDS)
def test_factorization_macs_and_params_formulas_match_counters(
    axis: str, option: str, n: int
) -> None:
    f = AXES[axis].get(option)
    cin, mid, cout, h, w = 4, 6, 5, 9, 11
    block = _chain(f.layers(cin, mid, cout, n)).eval()
    x = torch.zeros(1, cin, h, w)
    analytic = f.macs(cin, mid, cout, n, h, w)
    assert _fvcore_ops(block, x)["conv"] == analytic
    assert flop_counter_macs(block, x) == analytic
    assert sum(conv_linear_macs(block, x).values()) == analytic
    assert f.params(cin, mid, cout, n) == _params(block)


def _factor_macs(axis: str, option: str, n: int, c: int, d: int) -> tuple[int, int]:
    """(analytic, fvcore) MACs of a factorization with c channels everywhere on a d x d grid."""
    f = AXES[axis].get(option)
    counted = _fvcore_ops(_chain(f.layers(c, c, c, n)), torch.zeros(1, c, d, d))
    return f.macs(c, c, c, n, d, d), counted["conv"]


# the paper's block-level cost ratios at equal channels (Sections 3.1, 3.2)
PAPER_RATIOS = [
    ("conv5x5", "3x3x2", "5x5", 5, Fraction(18, 25)),  # (9 + 9) / 25: 28% saved
    ("conv_nxn", "1xn_nx1", "nxn", 3, Fraction(2, 3)),  # 1x3 + 3x1: 33% saved
    ("conv_nxn", "2x2x2", "nxn", 3, Fraction(8, 9)),  # two 2x2: only 11% saved
    ("conv_nxn", "1xn_nx1", "nxn", 7, Fraction(2, 7)),  # 2 / n
]


@pytest.mark.parametrize(
    ("axis", "option", "reference", "n", "expected"),
    PAPER_RATIOS,
    ids=[f"{o}/{r}-n{n}" for _, o, r, n, _ in PAPER_RATIOS],
)
def test_paper_cost_ratio_is_exact(
    axis: str, option: str, reference: str, n: int, expected: Fraction
) -> None:
    c, d = 8, 10
    a_opt, f_opt = _factor_macs(axis, option, n, c, d)
    a_ref, f_ref = _factor_macs(axis, reference, n, c, d)
    assert Fraction(a_opt, a_ref) == expected
    assert Fraction(f_opt, f_ref) == expected


def test_two_3x3_saves_weights_in_the_same_ratio() -> None:
    c = 8
    weights = {
        option: sum(m.conv.weight.numel() for m in CONV5X5.get(option).layers(c, c, c, 5))
        for option in ("3x3x2", "5x5")
    }
    assert Fraction(weights["3x3x2"], weights["5x5"]) == Fraction(18, 25)


def _stem_macs(option: str, c: int, d: int) -> tuple[int, int]:
    stem = STEM.get(option)
    layers = _chain([m for _, m in stem.build(c, (c, c, c), 1, False)])
    counted = _fvcore_ops(layers, torch.zeros(1, c, d, d))["conv"]
    return stem.macs(c, (c, c, c), 1, d, d, False), counted


def test_three_3x3_stem_costs_27_49_of_a_7x7() -> None:
    c, d = 8, 10
    (a3, f3), (a7, f7) = _stem_macs("3x3x3", c, d), _stem_macs("7x7", c, d)
    assert Fraction(a3, a7) == Fraction(27, 49)
    assert Fraction(f3, f7) == Fraction(27, 49)


# (valid layout?, stride, cin, widths, h, w, expected output h, w)
STEM_LAYOUTS = [
    (True, 2, 3, (8, 8, 16), 35, 39, 15, 17),  # torchvision: valid 3x3/2, valid 3x3, 3x3 pad 1
    (False, 1, 1, (4, 6, 8), 12, 14, 12, 14),  # mini: 'same' everywhere
]


@pytest.mark.parametrize("layout", STEM_LAYOUTS, ids=["valid", "padded"])
@pytest.mark.parametrize("option", STEM.names())
def test_stem_analytic_macs_match_counters_and_shapes(option: str, layout: tuple) -> None:
    valid, stride, cin, widths, h, w, ho, wo = layout
    stem = STEM.get(option)
    layers = _chain([m for _, m in stem.build(cin, widths, stride, valid)]).eval()
    x = torch.zeros(1, cin, h, w)
    analytic = stem.macs(cin, widths, stride, h, w, valid)
    assert _fvcore_ops(layers, x)["conv"] == analytic
    assert flop_counter_macs(layers, x) == analytic
    # every stem ends on the same tensor, so the rest of the net fits any of them
    assert layers(x).shape == (1, widths[2], ho, wo)


CTX = Ctx.from_spec(ArchSpec())
# (layout, plan kind, input grid, output grid)
REDUCTIONS = [
    (TORCHVISION, "B", 35, 17),
    (TORCHVISION, "D", 17, 8),
    (MINI, "B", 28, 14),
    (MINI, "D", 14, 7),
]


def _reduction(option: str, layout: Layout, kind: str, cin: int, ratio: float = 1.0) -> nn.Module:
    widths = layout.red1 if kind == "B" else layout.red2
    # full-size widths / 8 keep the valid layout's test fast; the grid arithmetic is the same
    if layout is TORCHVISION:
        widths = {k: max(1, v // 8) for k, v in widths.items()}
    plan = ReductionPlan(kind, widths, ratio, layout.valid)  # type: ignore[arg-type]
    return GRID_REDUCTION.get(option)(cin, plan, CTX).eval()


@pytest.mark.parametrize(
    ("layout", "kind", "grid", "out_grid"),
    REDUCTIONS,
    ids=["valid-B", "valid-D", "padded-B", "padded-D"],
)
@pytest.mark.parametrize("option", GRID_REDUCTION.names())
def test_grid_reduction_halves_the_grid(
    option: str,
    layout: Layout,
    kind: str,
    grid: int,
    out_grid: int,
) -> None:
    block = _reduction(option, layout, kind, cin=12)
    y = block(torch.zeros(1, 12, grid, grid))
    assert y.shape == (1, block.out_channels, out_grid, out_grid)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("option", GRID_REDUCTION.names())
def test_bottleneck_ratio_scales_reduction_output(option: str, ratio: float) -> None:
    base = _reduction(option, MINI, "B", cin=12).out_channels
    block = _reduction(option, MINI, "B", cin=12, ratio=ratio)
    y = block(torch.zeros(1, 12, 28, 28))
    assert y.shape[1] == block.out_channels
    assert (block.out_channels < base) == (ratio < 1) and (block.out_channels > base) == (ratio > 1)


@pytest.mark.parametrize(
    ("layout", "grid", "expected"),
    [(MINI, 28, Fraction(1, 4)), (TORCHVISION, 35, Fraction(17 * 17, 35 * 35))],
    ids=["padded", "valid"],
)
def test_pool_conv_costs_a_quarter_of_conv_pool(
    layout: Layout, grid: int, expected: Fraction
) -> None:
    x = torch.zeros(1, 12, grid, grid)
    macs = {}
    for option in ("pool_conv", "conv_pool"):
        block = _reduction(option, layout, "B", cin=12)
        macs[option] = _fvcore_ops(block, x)["conv"]
        assert macs[option] == sum(conv_linear_macs(block, x).values())
    # the same cin -> cout 3x3 conv on the halved grid vs the full grid: exactly (d/2)^2 / d^2
    assert Fraction(macs["pool_conv"], macs["conv_pool"]) == expected


def test_pool_conv_bn_equals_avg_pool_then_conv_bn() -> None:
    """The commuting trick: 1x1 conv then avg-pool == avg-pool then 1x1 conv (same weights)."""
    torch.manual_seed(0)
    fast = PoolConvBN(6, 4)
    ref = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), ConvBN(6, 4, 1))
    with torch.no_grad():  # non-trivial BN statistics, so eval mode checks them too
        fast.bn.running_mean.uniform_(-1, 1)
        fast.bn.running_var.uniform_(0.5, 2)
        fast.bn.weight.uniform_(0.5, 2)
        fast.bn.bias.uniform_(-1, 1)
    ref[1].load_state_dict(fast.state_dict(), strict=True)
    x = torch.randn(2, 6, 7, 9)
    for train in (False, True):
        fast.train(train), ref.train(train)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = fast(xa), ref(xb)
        torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
        g = torch.randn_like(ya)
        (ya * g).sum().backward()
        (yb * g).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)
    # and it is cheaper: the pool runs on 4 channels instead of 6; the conv cost is the same
    assert sum(conv_linear_macs(fast, x).values()) == conv_macs(6, 4, 1, 1, 7, 9)
    assert _params(fast) == conv_params(6, 4, 1, 1)


def test_conv_helpers() -> None:
    assert conv_macs(3, 5, 3, 1, 7, 9) == 3 * 5 * 3 * 1 * 7 * 9
    assert conv_params(3, 5, 1, 3) == 3 * 5 * 3 + 2 * 5
    assert conv_params(3, 5, 1, 3, bn=False) == 3 * 5 * 3
    assert _params(ConvBN(3, 5, (1, 3), padding=(0, 1))) == conv_params(3, 5, 1, 3)


#: aux option -> (the 768-wide "fully connected" conv has BN, BatchNorm1d before the logits)
AUX_LAYERS = {"aux": (True, False), "aux_nobn": (False, False), "aux_bn": (True, True)}


@pytest.mark.parametrize("option", AUX_HEAD.names())
def test_aux_heads(option: str) -> None:
    head = AUX_HEAD.get(option)(16, 10, mid=8, hidden=12, grid=4)
    if option == "none":
        assert head is None
        return
    assert isinstance(head, AuxHead)
    bn_hidden, bn_fc = AUX_LAYERS[option]
    # "BN-auxiliary" (Table 3) batch-normalizes the head's fully connected layer: the conv over
    # the pooled grid; the paper's plain head has a bias there instead
    assert isinstance(head.conv1.bn, nn.BatchNorm2d) == bn_hidden
    assert (head.conv1.conv.bias is not None) == (not bn_hidden)
    assert (head.fc_bn is not None) == bn_fc
    assert head.train()(torch.randn(2, 16, 14, 14)).shape == (2, 10)  # 14 -> pool 4 -> conv 1


def test_default_aux_head_is_the_papers_bn_auxiliary() -> None:
    assert ArchSpec().aux_head == AUX_HEAD.default == "aux"


# The first conv of every factorized pair in the mini net with each layout option: the three-3x3
# stem (a factorized 7x7), module A's 5x5 branch and double-3x3 branch, the first reduction's
# double 3x3, module B's 1x7+7x1 pairs, the second reduction's 1x7+7x1, module C's 3x3 before
# its split (expanded) or its 1x3+3x1 pairs (plain).
FIRST_FACTORS = {
    "expanded": r"Conv2d_1a_3x3|Conv2d_2a_3x3|Mixed_5.\.branch5x5_2|Mixed_5.\.branch3x3dbl_2"
    r"|Mixed_6a\.branch3x3dbl_2|Mixed_6[b-z]\.branch7x7_2|Mixed_6[b-z]\.branch7x7dbl_[24]"
    r"|Mixed_7a\.branch7x7x3_2|Mixed_7[b-z]\.branch3x3dbl_2",
}
FIRST_FACTORS["plain"] = (
    FIRST_FACTORS["expanded"] + r"|Mixed_7[b-z]\.branch3x3_2|Mixed_7[b-z]\.branch3x3dbl_3"
)


@pytest.mark.parametrize("coarse", COARSE_MODULE.names())
@pytest.mark.parametrize("option", FACTOR_ACT.names())
def test_factor_act_reaches_every_factorized_pair_and_nothing_else(
    option: str, coarse: str
) -> None:
    import re

    from archlab.arch.models import build_model

    join = FACTOR_ACT.get(option)
    model = build_model("inception_mini", ArchSpec(factor_act=option, coarse_module=coarse))
    convs = {n: m for n, m in model.named_modules() if isinstance(m, ConvBN) and "Aux" not in n}
    first = {n for n in convs if re.fullmatch(rf".*({FIRST_FACTORS[coarse]})", n)}
    # the pattern names real layers: 2 stem + 2 per module A + 1 + 3 per module B + 1 + 1 or 3
    assert len(first) >= 10
    for name, conv in convs.items():
        want_act, want_bn = (type(join.act()), join.bn) if name in first else (nn.ReLU, True)
        assert type(conv.act) is want_act, name
        assert isinstance(conv.bn, nn.BatchNorm2d) == want_bn, name


def test_linear_nobn_removes_the_bn_and_the_relu_between_factors() -> None:
    relu, linear, nobn = (FACTOR_ACT.get(o) for o in ("relu", "linear", "linear_nobn"))
    assert type(relu.act()) is nn.ReLU and relu.bn
    assert type(linear.act()) is nn.Identity and linear.bn
    assert type(nobn.act()) is nn.Identity and not nobn.bn
    first = nobn.first(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    # with nothing between them the pair's first conv is affine in its input
    assert torch.allclose(first(x) + first(-x), 2 * first(torch.zeros_like(x)), atol=1e-5)


def test_module_a_sqrt_alpha_middle_width_and_cost() -> None:
    # torchvision's 5x5 branch: 48 -> 64 (alpha = 4/3): the paper grows by sqrt(alpha) per 3x3
    w = TORCHVISION.a[0]
    cin, cout = w["b5_red"], w["b5"]
    mids = {}
    for option in ("3x3x2", "3x3x2_sqrt"):
        block = module_a(192, w, Ctx.from_spec(ArchSpec(conv5x5=option)))
        mids[option] = block.branch5x5_2.conv.out_channels
    assert mids == {"3x3x2": cout, "3x3x2_sqrt": round((cin * cout) ** 0.5)}
    five = CONV5X5.get("5x5").macs(cin, cout, cout, 5, 35, 35)
    sqrt = CONV5X5.get("3x3x2_sqrt").macs(cin, cout, cout, 5, 35, 35)
    wide = CONV5X5.get("3x3x2").macs(cin, cout, cout, 5, 35, 35)
    assert abs(sqrt / five - 18 / 25) < 0.005  # the paper's 28% saving at any alpha
    assert wide / five > 0.8  # the first 3x3 already at the output width: only 16% saved


def _ctxs(axis: str) -> list[tuple[str, Ctx]]:
    """A Ctx per option of ``axis`` (n made valid), and one with a 1x1 reduce ratio."""
    out = []
    for e in AXES[axis]:
        valid = getattr(e.obj, "valid_n", None)
        spec = ArchSpec(**{axis: e.name, "n": min(valid) if valid else 7})
        out.append((e.name, Ctx.from_spec(spec)))
    out.append(("reduce_ratio=0.5", Ctx.from_spec(ArchSpec(reduce_ratio=0.5))))
    return out


MODULES = (
    [("module_a", name, ctx) for name, ctx in _ctxs("conv5x5")]
    + [("module_b", name, ctx) for name, ctx in _ctxs("conv_nxn")]
    + [(f"coarse:{m}", name, ctx) for m in COARSE_MODULE.names() for name, ctx in _ctxs("conv_nxn")]
)


@pytest.mark.parametrize(
    ("module", "label", "ctx"), MODULES, ids=[f"{m}-{n}" for m, n, _ in MODULES]
)
def test_modules_keep_grid_and_declare_their_width(module: str, label: str, ctx: Ctx) -> None:
    build, widths = {
        "module_a": (module_a, MINI.a[0]),
        "module_b": (module_b, MINI.b[0]),
    }.get(module, (None, MINI.c[0]))
    if build is None:
        build = COARSE_MODULE.get(module.split(":")[1])
    block = build(20, widths, ctx).eval()
    y = block(torch.zeros(1, 20, 6, 5))
    assert y.shape == (1, block.out_channels, 6, 5)


def test_reduce_ratio_sets_1x1_widths() -> None:
    assert Ctx.from_spec(ArchSpec()).reduce(48, 64) == 48  # native width
    assert Ctx.from_spec(ArchSpec(reduce_ratio=0.25)).reduce(48, 64) == 16
    assert Ctx.from_spec(ArchSpec(reduce_ratio=0.001)).reduce(48, 64) == 1  # never zero
