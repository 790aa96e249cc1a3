"""Forward parity: archlab's Inception-v3 against torchvision's outputs (stored by seed), and the
options torchvision has no twin for against small hand-written reference modules.

No torchvision is needed: ``tests/data/inception_v3_tv_forward.json`` holds torchvision's
outputs for weights that ``fill_state`` rebuilds from a seed (``scripts/make_tv_golden.py``
wrote it; the test loads ``fill_state`` from that script, so one procedure fills both).
Everything runs in float64, so the tolerances are tight:
a wrong BN epsilon, a swapped branch or a shifted padding moves outputs by far more than rounding.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.arch.models import Inception, build_model, default_spec

GOLDEN = Path(__file__).parent / "data" / "inception_v3_tv_forward.json"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_tv_golden.py"
F64 = torch.float64


def _script_module() -> ModuleType:
    """scripts/make_tv_golden.py as a module: its fill_state made the golden's weights."""
    spec = importlib.util.spec_from_file_location("make_tv_golden", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports torch only; torchvision is imported in main()
    return module


fill_state = _script_module().fill_state


def _summary(y: torch.Tensor, probe: torch.Tensor, head: int) -> dict[str, torch.Tensor]:
    return {"head": y[:, :head], "l2": y.norm(dim=1), "sum": y.sum(dim=1), "probe": y @ probe}


def _close(got: dict[str, torch.Tensor], want: dict[str, list], what: str) -> None:
    # float64 end to end; the pool branches run conv before pool (equal up to rounding)
    scale = max(abs(v) for v in want["l2"])
    for key, value in want.items():
        torch.testing.assert_close(
            got[key],
            torch.tensor(value, dtype=F64),
            rtol=1e-9,
            atol=1e-9 * scale,
            msg=lambda m, key=key: f"{what} ({key}) differs from torchvision's:\n{m}",
        )


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def tv_model(golden: dict) -> tuple[Inception, dict]:
    """archlab's torchvision-layout model with the golden's seeded weights, in float64, and
    its state's summary taken before any forward (a train-mode one updates running stats)."""
    with torch.device("meta"):  # no init: every tensor is filled below
        model = build_model("inception_v3_tv")
    model = model.to_empty(device="cpu").to(F64)
    fill_state(model, golden["seed"])
    state = model.state_dict()
    summary = {
        "keys": len(state),
        "numel": sum(v.numel() for v in state.values()),
        "sum": float(sum(v.double().sum() for v in state.values())),
    }
    return model, summary


def test_seeded_state_is_torchvisions(tv_model: tuple[Inception, dict], golden: dict) -> None:
    """Same keys, sizes and values: a layout drift shows here, before any forward."""
    model, state = tv_model
    assert state["keys"] == golden["state"]["keys"]
    assert state["numel"] == golden["state"]["numel"]
    assert state["sum"] == pytest.approx(golden["state"]["sum"], rel=1e-12)
    assert model.fc.out_features == golden["num_classes"]
    assert model.dropout.p == golden["dropout"]
    assert default_spec("inception_v3_tv").dropout == golden["dropout"]


def test_forward_matches_torchvision(tv_model: tuple[Inception, dict], golden: dict) -> None:
    """Eval logits, then train-mode (batch-statistics BN) logits and aux logits."""
    model = tv_model[0]
    shape, head = golden["input"]["shape"], len(golden["eval_logits"]["head"][0])
    g = torch.Generator().manual_seed(golden["input"]["input_seed"])
    x = torch.randn(shape, generator=g, dtype=F64)
    probe_g = torch.Generator().manual_seed(golden["probe"]["seed"])
    probe = torch.randn(golden["num_classes"], generator=probe_g, dtype=F64)
    with torch.no_grad():
        logits = model.eval()(x)
        _close(_summary(logits, probe, head), golden["eval_logits"], "eval logits")
        model.train()
        model.dropout.eval()  # as the golden: no random draw
        torch.manual_seed(golden["train_seed"])
        out = model(x)
    assert isinstance(out, tuple), "train mode must return (logits, aux logits)"
    train_logits, aux = out
    _close(_summary(train_logits, probe, head), golden["train_logits"], "train-mode logits")
    _close(_summary(aux, probe, head), golden["train_aux_logits"], "train-mode aux logits")


# --- options torchvision lacks: hand-written references on the mini model ------------------------
#
# Each reference is written from the paper's description of the option, registers its tensors in
# archlab's state_dict order (so weights copy across by position) and computes with plain torch
# functions. One option per axis: stem 7x7, grid_reduction conv_pool, conv_nxn 2x2x2 (n = 3),
# coarse_module plain.

Pad = tuple[int, int, int, int]  # zero padding: left, right, top, bottom
EPS = 1e-3  # BatchNorm epsilon of torchvision / the released Inception-v3


class ConvSpec(nn.Module):
    """A bias-free conv's weight and its BN's state (torchvision's BasicConv2d keys)."""

    def __init__(self, cin: int, cout: int, kh: int, kw: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (kh, kw or kh), bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=EPS)

    def forward(
        self, x: torch.Tensor, pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    ) -> torch.Tensor:
        """conv (after zero padding left, right, top, bottom) -> BN -> ReLU."""
        return F.relu(self.bn(F.conv2d(F.pad(x, pad), self.conv.weight)))


def same(kh: int, kw: int) -> Pad:
    """Zero padding keeping the grid for an odd kh x kw kernel."""
    return (kw // 2, kw // 2, kh // 2, kh // 2)


def avg_pool_branch(proj: ConvSpec, x: torch.Tensor) -> torch.Tensor:
    """3x3/1 average pool (zeros count) then a 1x1 projection: Inception's pool branch."""
    return proj(F.avg_pool2d(x, 3, stride=1, padding=1))


class Stem7x7(nn.Module):
    """Inception-v2's stem: one 7x7 conv, 'same' padding on small images."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c = ConvSpec(cin, cout, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x, same(7, 7))


class ConvPool(nn.Module):
    """Fig. 9 right: a 3x3 conv widening at the fine grid, then a 3x3/2 max-pool."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c = ConvSpec(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.c(x, same(3, 3)), 3, stride=2, padding=1)


class ModuleB2x2(nn.Module):
    """Fig. 6 module with each 3x3 made of two 2x2 convs (pad right/bottom, then left/top)."""

    def __init__(self, cin: int, b1: int, c7: int, b7: int, pool: int) -> None:
        super().__init__()
        self.b1 = ConvSpec(cin, b1, 1)
        self.s = nn.ModuleList([ConvSpec(cin, c7, 1), ConvSpec(c7, c7, 2), ConvSpec(c7, b7, 2)])
        widths = [(cin, c7), (c7, c7), (c7, c7), (c7, c7), (c7, b7)]
        self.d = nn.ModuleList(
            [ConvSpec(a, b, 1 if i == 0 else 2) for i, (a, b) in enumerate(widths)]
        )
        self.pool = ConvSpec(cin, pool, 1)

    @staticmethod
    def two_2x2(first: ConvSpec, second: ConvSpec, x: torch.Tensor) -> torch.Tensor:
        return second(first(x, (0, 1, 0, 1)), (1, 0, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.two_2x2(self.s[1], self.s[2], self.s[0](x))
        d = self.d[0](x)
        d = self.two_2x2(self.d[3], self.d[4], self.two_2x2(self.d[1], self.d[2], d))
        return torch.cat([self.b1(x), s, d, avg_pool_branch(self.pool, x)], 1)


class ModuleCPlain(nn.Module):
    """Fig. 7's module without the expanded bank: 1x3 then 3x1 in sequence in both branches."""

    def __init__(self, cin: int, w: dict[str, int]) -> None:
        super().__init__()
        self.b1 = ConvSpec(cin, w["b1"], 1)
        r, b3 = w["b3_red"], w["b3"]
        self.s = nn.ModuleList([ConvSpec(cin, r, 1), ConvSpec(r, r, 1, 3), ConvSpec(r, b3, 3, 1)])
        dr, dbl = w["dbl_red"], w["dbl"]
        self.d = nn.ModuleList(
            [
                ConvSpec(cin, dr, 1),
                ConvSpec(dr, dbl, 3),
                ConvSpec(dbl, dbl, 1, 3),
                ConvSpec(dbl, dbl, 3, 1),
            ]
        )
        self.pool = ConvSpec(cin, w["pool"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s[2](self.s[1](self.s[0](x), same(1, 3)), same(3, 1))
        d = self.d[1](self.d[0](x), same(3, 3))
        d = self.d[3](self.d[2](d, same(1, 3)), same(3, 1))
        return torch.cat([self.b1(x), s, d, avg_pool_branch(self.pool, x)], 1)


def _mini(**changes: object) -> Inception:
    return build_model("inception_mini", default_spec("inception_mini").replace(**changes))


def _part(model: Inception, stage: str) -> nn.Module:
    """A stage of the model as one module (the stem may be several layers)."""
    names = model.stages[stage]
    return nn.Sequential(*(model.get_submodule(n) for n in names))


# the mini's native widths (archlab/arch/models/mini.py), written out: the references must not
# read them from archlab
MINI_STEM_OUT = 24
MINI_A_OUT = 12 + 12 + 16 + 8  # module A: b1 + b5 + dbl + pool
MINI_RED1 = {"b3": 32, "dbl": 16}
MINI_B = {"b1": 24, "c7": 16, "b7": 24, "pool": 24}
MINI_B_OUT = 24 + 2 * 24 + 24
MINI_C = {"b1": 40, "b3_red": 48, "b3": 48, "dbl_red": 56, "dbl": 48, "pool": 24}
MINI_RED2_OUT = MINI_B_OUT + 40 + 24  # cin + b3 + b7 of the second reduction


def _cases() -> dict[str, tuple[dict, str, Callable[[], nn.Module], tuple[int, ...]]]:
    """axis=option -> (spec changes, stage, reference, input shape)."""
    red_out = MINI_A_OUT + MINI_RED1["b3"] + MINI_RED1["dbl"]  # as wide as the parallel form
    return {
        "stem=7x7": ({"stem": "7x7"}, "stem", lambda: Stem7x7(1, MINI_STEM_OUT), (2, 1, 12, 12)),
        "grid_reduction=conv_pool": (
            {"grid_reduction": "conv_pool"},
            "reduction_1",
            lambda: ConvPool(MINI_A_OUT, red_out),
            (2, MINI_A_OUT, 10, 10),
        ),
        "conv_nxn=2x2x2": (
            {"conv_nxn": "2x2x2", "n": 3},
            "stage_b",
            lambda: ModuleB2x2(red_out, **MINI_B),
            (2, red_out, 7, 7),
        ),
        "coarse_module=plain": (
            {"coarse_module": "plain"},
            "stage_c",
            lambda: ModuleCPlain(MINI_RED2_OUT, MINI_C),
            (2, MINI_RED2_OUT, 5, 5),
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_option_matches_its_reference(case: str) -> None:
    changes, stage, make_ref, shape = CASES[case]
    model = _mini(depth_mult=0.5, **changes)  # one module per stage
    ours, ref = _part(model, stage).to(F64), make_ref().to(F64)
    fill_state(ours, 7)
    a, b = ours.state_dict(), ref.state_dict()
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()], (
        f"{case}: the layers differ in number, order or shape from the reference"
    )
    ref.load_state_dict(dict(zip(b, a.values(), strict=True)))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(5), dtype=F64)
    with torch.no_grad():
        for mode in ("eval", "train"):  # running statistics, then batch statistics
            got, want = ours.train(mode == "train")(x), ref.train(mode == "train")(x)
            assert want.abs().max() > 0.1  # not a dead net: the tolerance means something
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=f"{case} {mode}")
