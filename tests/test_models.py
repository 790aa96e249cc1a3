"""Models: every option of every axis builds, runs, trains; knobs move costs; torchvision parity."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.arch.cost import fast_macs
from archlab.arch.models import MODELS, build_model, default_spec
from archlab.arch.spec import AXES, ArchSpec, SpecError

DATA = Path(__file__).parent / "data"
OPTIONS = [(axis, e.name) for axis, reg in AXES.items() for e in reg]
OPTION_IDS = [f"{a}={o}" for a, o in OPTIONS]


def one_axis(model: str, axis: str, option: str) -> ArchSpec:
    """The model's default spec with one axis changed (n made valid for the option)."""
    base = default_spec(model)
    changes: dict[str, object] = {axis: option}
    valid_n = getattr(AXES[axis].get(option), "valid_n", None)
    if valid_n is not None and base.n not in valid_n:
        changes["n"] = min(valid_n)
    return base.replace(**changes)


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(("axis", "option"), OPTIONS, ids=OPTION_IDS)
def test_mini_every_option_builds_runs_and_trains(axis: str, option: str) -> None:
    torch.manual_seed(0)
    spec = one_axis("inception_mini", axis, option)
    model = build_model("inception_mini", spec)
    assert getattr(spec, axis) == option
    assert model.has_aux == (spec.aux_head != "none")
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))

    out = model.train()(x)
    if model.has_aux:
        logits, aux = out
        assert aux.shape == (4, 10)
        loss = nn.functional.cross_entropy(logits, y) + spec.aux_weight * (
            nn.functional.cross_entropy(aux, y)
        )
    else:
        assert isinstance(out, torch.Tensor)
        logits, loss = out, nn.functional.cross_entropy(out, y)
    assert logits.shape == (4, 10)
    loss.backward()
    conv = _first_conv(model)
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    if model.has_aux:
        assert all(p.grad is not None for p in model.AuxLogits.parameters())

    with torch.no_grad():  # eval: plain logits, the aux head does not run
        assert model.eval()(x).shape == (4, 10)


def test_stages_name_every_top_level_module_in_forward_order() -> None:
    model = build_model("inception_mini")
    named = [n for names in model.stages.values() for n in names]
    assert sorted(named) == sorted(n for n, _ in model.named_children())
    assert list(model.stages) == [
        "stem",
        "stage_a",
        "reduction_1",
        "stage_b",
        "aux",
        "reduction_2",
        "stage_c",
        "head",
    ]
    assert model.stages["stage_b"] == ["Mixed_6b", "Mixed_6c"]


# full size is slow on CPU: a few options, at 139 px (the smallest size keeping the aux head)
FULL = [
    ("inception_v3_tv", None, None),
    ("inception_v3_paper", None, None),
    ("inception_v3_paper", "stem", "7x7"),
    ("inception_v3_paper", "grid_reduction", "pool_conv"),
    ("inception_v3_paper", "conv_nxn", "2x2x2"),
    ("inception_v3_paper", "coarse_module", "plain"),
    ("inception_v3_paper", "aux_head", "none"),
]


@pytest.mark.parametrize(
    ("name", "axis", "option"), FULL, ids=[f"{m}-{a}={o}" if a else m for m, a, o in FULL]
)
def test_full_size_options_build_and_run(name: str, axis: str | None, option: str | None) -> None:
    spec = default_spec(name) if axis is None else one_axis(name, axis, option)  # type: ignore[arg-type]
    model = build_model(name, spec, input_size=139)
    x = torch.randn(2, 3, 139, 139)
    with torch.no_grad():
        out = model.train()(x)
        assert isinstance(out, tuple) == (spec.aux_head != "none")
        if isinstance(out, tuple):
            assert [t.shape for t in out] == [(2, 1000), (2, 1000)]
        assert model.eval()(x[:1]).shape == (1, 1000)


def test_family_defaults() -> None:
    assert MODELS.default == "inception_mini"
    assert default_spec("inception_v3_tv").conv5x5 == "5x5"  # torchvision keeps a 5x5
    assert default_spec("inception_v3_paper").conv5x5 == "3x3x2"  # the paper's Fig. 5
    model = build_model("inception_mini", num_classes=7, in_chans=3, input_size=32)
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
    assert _first_conv(model).in_channels == 3
    assert model.dropout.p == default_spec().dropout


def _cost(**knobs: object) -> tuple[int, int]:
    spec = ArchSpec(**knobs)  # type: ignore[arg-type]
    with torch.device("meta"):  # parameters only: no init
        params = sum(p.numel() for p in build_model("inception_mini", spec).parameters())
    return fast_macs("inception_mini", spec), params


@pytest.mark.parametrize(
    ("knob", "values"),
    [
        ("width_mult", [0.5, 1.0, 1.5]),
        ("depth_mult", [0.5, 1.0, 2.0]),
        ("reduce_ratio", [0.25, 0.5, 1.0]),
        ("bottleneck_ratio", [0.5, 1.0, 1.5]),
        ("n", [3, 5, 7]),
    ],
)
def test_knobs_move_costs_in_the_expected_direction(knob: str, values: list) -> None:
    costs = [_cost(**{knob: v}) for v in values]
    macs, params = zip(*costs, strict=True)
    assert list(macs) == sorted(set(macs)), f"MACs must grow strictly with {knob}: {macs}"
    assert list(params) == sorted(set(params)), f"params must grow strictly with {knob}: {params}"


@pytest.mark.parametrize(("depth_mult", "modules"), [(0.5, 1), (1.0, 2), (1.5, 3), (2.0, 4)])
def test_depth_mult_sets_modules_per_stage(depth_mult: float, modules: int) -> None:
    with torch.device("meta"):
        model = build_model("inception_mini", ArchSpec(depth_mult=depth_mult))
    for stage in ("stage_a", "stage_b", "stage_c"):
        assert len(model.stages[stage]) == modules


@pytest.mark.parametrize(("name", "size"), [("inception_mini", 8), ("inception_v3_tv", 64)])
def test_too_small_input_is_a_spec_error(name: str, size: int) -> None:
    with pytest.raises(SpecError, match=f"input_size={size} is too small"):
        build_model(name, input_size=size)


def test_state_dict_keys_and_shapes_match_torchvision_golden() -> None:
    golden = json.loads((DATA / "inception_v3_tv_state_dict.json").read_text())["shapes"]
    with torch.device("meta"):
        model = build_model("inception_v3_tv")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(golden) - set(ours)) == [], "keys torchvision has and we lack"
    assert sorted(set(ours) - set(golden)) == [], "keys we have and torchvision lacks"
    assert {k: v for k, v in ours.items() if golden[k] != v} == {}, "shapes that differ"
    assert list(ours) == list(golden)  # same order too


def test_stem_stride_keeps_the_inner_grids_for_a_lower_resolution():
    """Sec. 9: a 14 px input with a stride-1 stem runs the 28 px stride-2 net's grids and MACs."""

    def stages(spec: ArchSpec, size: int) -> tuple[dict, int]:
        model = build_model("inception_mini", spec, input_size=size, in_chans=1, num_classes=10)
        shapes = {}
        for stage, names in model.stages.items():
            if stage not in ("aux", "head"):
                last = model.get_submodule(names[-1])
                last.register_forward_hook(lambda m, i, o, s=stage: shapes.__setitem__(s, o.shape))
        model.eval()(torch.zeros(1, 1, size, size))
        return shapes, fast_macs("inception_mini", spec, input_size=size, in_chans=1)

    high, high_macs = stages(ArchSpec(stem_stride=2), 28)
    low, low_macs = stages(ArchSpec(stem_stride=1), 14)
    assert high == low and high_macs == low_macs
    assert high["stage_a"][-1] == 14 and high["stage_c"][-1] == 4
    with pytest.raises(SpecError, match="stem_stride=3 is out of range"):
        ArchSpec(stem_stride=3)


@pytest.mark.parametrize("place", ["stem", "stage_a", "stage_b"])
def test_squeeze_narrows_the_trunk_where_it_is_placed(place: str) -> None:
    model = build_model("inception_mini", ArchSpec(squeeze_at=place, squeeze_ratio=0.25))
    order = [s for s in model.stages if s not in ("aux", "head")]
    assert order.index("squeeze") == order.index(place) + 1
    squeeze = model.Squeeze
    assert squeeze.conv.out_channels == round(0.25 * squeeze.conv.in_channels)
    assert squeeze.conv.kernel_size == (1, 1)
    assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(SpecError, match="squeeze_ratio=1.5 is out of range"):
        ArchSpec(squeeze_ratio=1.5)
