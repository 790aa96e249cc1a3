"""Cost accounting: exact torchvision numbers, three independent MAC counts that must agree on
every registered option, golden complexity numbers, iso-MAC width solving, representation sizes."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.arch.cost import (
    Complexity,
    complexity,
    conv_linear_macs,
    fast_macs,
    flop_counter_macs,
    fvcore_counts,
    solve_width,
)
from archlab.arch.models import MODELS, build_model, default_spec
from archlab.arch.spec import AXES, ArchSpec, SpecError
from archlab.report.sweep import count, one_axis_variants
from tests.data.make_golden import complexity_cases

GOLDEN = Path(__file__).parent / "data" / "complexity_golden.json"
REGENERATE = "python tests/data/make_golden.py complexity"


@pytest.fixture(scope="module")
def tv() -> Complexity:
    """torchvision's Inception-v3, traced once (about a second)."""
    # the arguments `archlab flops --model inception_v3_tv` passes: test_cli reuses the cache
    spec = default_spec("inception_v3_tv")
    return complexity("inception_v3_tv", spec, input_size=299, in_chans=3, num_classes=1000)


def test_torchvision_exact_counts(tv: Complexity) -> None:
    assert tv.params == 23_834_568  # timm / torchvision without the aux head
    assert tv.params_with_aux == 27_161_264
    assert tv.macs == 5_713_216_096  # conv + linear multiply-adds
    assert tv.macs_fvcore_total == 5_731_282_144  # + BatchNorm and adaptive pooling


def test_torchvision_by_stage(tv: Complexity) -> None:
    assert sum(s["macs"] for s in tv.by_stage.values()) == tv.macs
    assert sum(s["params"] for s in tv.by_stage.values()) == tv.params_with_aux
    assert tv.by_stage["aux"]["macs"] == 0  # eval mode: the aux head does not run
    assert tv.by_stage["aux"]["params"] == tv.params_with_aux - tv.params
    shapes = {k: v.get("output_shape") for k, v in tv.by_stage.items()}
    assert shapes["stem"] == [192, 35, 35]
    assert shapes["stage_a"] == [288, 35, 35]
    assert shapes["reduction_1"] == [768, 17, 17]
    assert shapes["stage_b"] == [768, 17, 17]
    assert shapes["reduction_2"] == [1280, 8, 8]
    assert shapes["stage_c"] == [2048, 8, 8]


def test_torchvision_three_counts_agree(tv: Complexity) -> None:
    c = count("inception_v3_tv", default_spec("inception_v3_tv"), fvcore=False)
    assert c.macs == c.flop_counter_macs == tv.macs  # closed form == FlopCounterMode/2 == fvcore
    assert fast_macs("inception_v3_tv", default_spec("inception_v3_tv")) == tv.macs
    assert (c.params, c.params_with_aux) == (tv.params, tv.params_with_aux)


MINI_CASES = [(label, spec) for m, label, spec in complexity_cases() if m == "inception_mini"]


@pytest.mark.parametrize(("label", "spec"), MINI_CASES, ids=[label for label, _ in MINI_CASES])
def test_three_counts_agree_per_layer(label: str, spec: ArchSpec) -> None:
    """fvcore == closed form == FlopCounterMode / 2, layer by layer, on every mini variant."""
    model = build_model("inception_mini", spec).eval()
    x = torch.zeros(1, 1, 28, 28)
    closed = conv_linear_macs(model, x)
    flops, _ = fvcore_counts(model, x)
    by_module = flops.by_module()
    per_layer = {name: int(by_module[name]) for name in closed}
    assert per_layer == closed
    layers = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    aux_layers = {n for n in layers if n.startswith("AuxLogits.")}
    assert set(closed) == layers - aux_layers  # every layer that runs in eval mode is counted
    total = sum(closed.values())
    assert sum(c for op, c in flops.by_operator().items() if op in ("conv", "linear")) == total
    assert flop_counter_macs(model, x) == total
    params = sum(p.numel() for p in model.parameters())
    aux_params = sum(p.numel() for p in model.AuxLogits.parameters()) if model.has_aux else 0
    now = {"macs": total, "params": params - aux_params, "params_with_aux": params}
    golden = _golden()["inception_mini"]
    assert label in golden, f"no golden numbers for {label!r}; run `{REGENERATE}`"
    assert now == golden[label], (
        f"counts of {label!r} changed: golden {golden[label]}, now {now}. "
        f"If intended, run `{REGENERATE}` and say why in the commit."
    )


@pytest.mark.slow
@pytest.mark.slow_ci
def test_full_size_paper_counts_agree() -> None:
    c = count("inception_v3_paper", default_spec("inception_v3_paper"), fvcore=True)
    assert c.macs == c.fvcore_macs == c.flop_counter_macs
    # two 3x3 in place of torchvision's 5x5 in module A: cheaper and smaller
    assert c.macs < 5_713_216_096 and c.params < 23_834_568


def test_one_axis_variants_cover_every_option() -> None:
    for model in MODELS.names():
        base = default_spec(model)
        variants = one_axis_variants(model)
        assert {(v.axis, v.option) for v in variants} == {
            (axis, e.name) for axis, reg in AXES.items() for e in reg
        }
        for v in variants:
            changed = set(v.spec.diff(base))
            assert changed <= {v.axis, "n"}, (model, v.label)
            assert getattr(v.spec, v.axis) == v.option


def _golden() -> dict[str, dict[str, dict[str, int]]]:
    return json.loads(GOLDEN.read_text())["models"]


def test_golden_file_has_exactly_the_tested_cases() -> None:
    golden = _golden()
    tested: dict[str, set[str]] = {}
    for model, label, _ in complexity_cases():
        tested.setdefault(model, set()).add(label)
    for model in tested.keys() | golden.keys():
        want, have = tested.get(model, set()), set(golden.get(model, {}))
        assert not want - have, (
            f"{model}: no golden numbers for {sorted(want - have)}; {REGENERATE}"
        )
        assert not have - want, f"{model}: stale golden entries {sorted(have - want)}; {REGENERATE}"


def _check_full_size(model: str, labels: set[str] | None) -> None:
    """Golden numbers of a full-size model (all its cases when ``labels`` is None)."""
    golden = _golden()[model]
    wrong = {}
    for m, label, spec in complexity_cases():
        if m != model or (labels is not None and label not in labels):
            continue
        c = count(model, spec, fvcore=False)  # meta device: shapes only, no full forward
        now = {"macs": c.macs, "params": c.params, "params_with_aux": c.params_with_aux}
        if now != golden[label]:
            wrong[label] = {"golden": golden[label], "now": now}
    assert not wrong, (
        f"{model}: counts changed {json.dumps(wrong, indent=1)}\n"
        f"If the change is intended, run `{REGENERATE}` and say why in the commit."
    )


FULL_SIZE = [m for m in MODELS.names() if m != "inception_mini"]


@pytest.mark.parametrize("model", FULL_SIZE)
def test_golden_complexity_full_size_sample(model: str) -> None:
    _check_full_size(model, {"default", "conv_nxn=2x2x2 n=3", "grid_reduction=pool_conv"})


@pytest.mark.slow
@pytest.mark.slow_ci
@pytest.mark.parametrize("model", FULL_SIZE)
def test_golden_complexity_full_size_every_option(model: str) -> None:
    _check_full_size(model, None)


def test_golden_file_is_well_formed() -> None:
    data = json.loads(GOLDEN.read_text())
    assert REGENERATE in data["regenerate"]
    tv = data["models"]["inception_v3_tv"]["default"]
    assert tv == {"macs": 5_713_216_096, "params": 23_834_568, "params_with_aux": 27_161_264}


@pytest.mark.parametrize(
    ("model", "spec", "budget_of"),
    [
        # iso-MAC: make the costlier variants cost what the mini's default costs
        ("inception_mini", ArchSpec(conv5x5="5x5"), ("inception_mini", ArchSpec())),
        ("inception_mini", ArchSpec(), ("inception_mini", ArchSpec(width_mult=0.75))),
    ],
    ids=["5x5", "width0.75"],
)
def test_solve_width_hits_the_budget(
    model: str, spec: ArchSpec, budget_of: tuple[str, ArchSpec]
) -> None:
    budget = fast_macs(*budget_of)
    solved = solve_width(model, spec, budget)
    assert solved.diff(spec).keys() == {"width_mult"}
    assert abs(fast_macs(model, solved) - budget) <= 0.02 * budget
    # a wider-than-needed variant must come out narrower, and the other way round
    assert (solved.width_mult < spec.width_mult) == (fast_macs(model, spec) > budget)


@pytest.mark.parametrize("budget", [1, 10**15])
def test_solve_width_unreachable_budget(budget: int) -> None:
    with pytest.raises(SpecError, match=f"budget {budget:,} MACs is unreachable"):
        solve_width("inception_mini", ArchSpec(), budget)


@pytest.mark.slow
@pytest.mark.slow_ci
def test_solve_width_full_size() -> None:
    """The paper's layout made as costly as torchvision's (a 16x-wide probe must not OOM)."""
    budget = fast_macs("inception_v3_tv", default_spec("inception_v3_tv"))
    solved = solve_width("inception_v3_paper", default_spec("inception_v3_paper"), budget)
    assert solved.width_mult > 1
    assert abs(fast_macs("inception_v3_paper", solved) - budget) <= 0.02 * budget


def test_fast_macs_leaves_the_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    fast_macs("inception_mini", ArchSpec(width_mult=2.0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_min_repr_pool_conv_bottleneck_is_smaller_than_parallel() -> None:
    parallel = complexity("inception_mini", ArchSpec())
    squeezed = complexity(
        "inception_mini", ArchSpec(grid_reduction="pool_conv", bottleneck_ratio=0.25)
    )
    assert squeezed.min_repr < parallel.min_repr
    # pool_conv's max-pool output (before its conv widens it) is a representation too
    assert any(k.endswith(".maxpool") for k in squeezed.repr_sizes)
    assert 0 < squeezed.min_repr < 1


def test_min_repr_is_relative_to_the_stem_output() -> None:
    a = complexity("inception_mini", ArchSpec(stem="3x3x3"))
    b = complexity("inception_mini", ArchSpec(stem="7x7"))
    # both stems output the same 24 x 28 x 28 tensor and the trunk after them is identical
    assert next(iter(a.repr_sizes.values())) == next(iter(b.repr_sizes.values())) == 24 * 28 * 28
    assert a.min_repr == b.min_repr


def test_complexity_is_cached_and_keeps_the_rng() -> None:
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    spec = ArchSpec(coarse_module="plain", width_mult=0.5)
    assert complexity("inception_mini", spec) is complexity("inception_mini", spec)
    assert torch.equal(state, torch.random.get_rng_state())


def test_complexity_follows_input_size_and_classes() -> None:
    small = complexity("inception_mini", ArchSpec(), input_size=28)
    big = complexity("inception_mini", ArchSpec(), input_size=56, num_classes=100)
    # convs scale with the grid area (4x); the classifier grows with the classes
    assert 3.9 * small.macs < big.macs < 4.1 * small.macs
    assert big.params > small.params
