"""One Inception network assembled from a layout (widths, depths, padding) and an ArchSpec.

Stem -> module-A stage -> grid reduction -> module-B stage (+ aux head) -> grid reduction ->
module-C stage -> global pool -> classifier, with torchvision's names (Conv2d_*, Mixed_5b, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from string import ascii_lowercase

import torch
from torch import nn

from archlab.arch.blocks.conv import ConvBN
from archlab.arch.blocks.modules import Ctx, module_a, module_b
from archlab.arch.blocks.reduce import ReductionPlan
from archlab.arch.spec import AUX_HEAD, COARSE_MODULE, GRID_REDUCTION, STEM, ArchSpec, SpecError

Widths = dict[str, int]


@dataclass(frozen=True)
class Layout:
    """Native widths and depths of one model family (before width/depth multipliers)."""

    stem: tuple[int, int, int]
    stem_stride: int
    valid: bool  # torchvision's unpadded stem and reductions
    post_stem: tuple[int, int] | None  # torchvision's pool, 1x1, 3x3, pool after the stem
    a: list[Widths]  # one dict per module of the stage (its length is the native depth)
    red1: Widths
    b: list[Widths]
    red2: Widths
    c: list[Widths]
    aux: Widths  # mid, hidden, kernel


def _scale(w: Widths, mult: float) -> Widths:
    return {k: max(1, round(v * mult)) for k, v in w.items()}


def _stretch(ws: list[Widths], depth_mult: float) -> list[Widths]:
    """Resize a stage to round(depth x mult) modules, keeping its first and last widths."""
    d = max(1, round(len(ws) * depth_mult))
    if d == len(ws):
        return ws
    if d == 1:
        return [ws[-1]]
    return [ws[round(i * (len(ws) - 1) / (d - 1))] for i in range(d)]


def _pool_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


class Inception(nn.Module):
    """Inception-v3 topology; every design axis of the spec applies."""

    def __init__(
        self, layout: Layout, spec: ArchSpec, *, num_classes: int, in_chans: int, input_size: int
    ) -> None:
        super().__init__()
        ctx = Ctx.from_spec(spec)
        wm, pad = spec.width_mult, 0 if layout.valid else 1
        self.stages: dict[str, list[str]] = {}
        size = input_size

        stem_w = tuple(max(1, round(c * wm)) for c in layout.stem)
        stem = STEM.get(spec.stem)
        # Sec. 9: a lower-resolution input keeps the inner grids by striding less at the start
        stride = layout.stem_stride if spec.stem_stride is None else spec.stem_stride
        layers = stem.build(in_chans, stem_w, stride, layout.valid, ctx.join)
        size = _pool_out(size, 3, stride, pad)
        size = _pool_out(size, 3, 1, pad)
        cin = stem_w[2]
        if layout.post_stem is not None:
            c3b, c4a = (max(1, round(c * wm)) for c in layout.post_stem)
            layers += [
                ("maxpool1", nn.MaxPool2d(3, stride=2)),
                ("Conv2d_3b_1x1", ConvBN(cin, c3b, 1)),
                ("Conv2d_4a_3x3", ConvBN(c3b, c4a, 3)),
                ("maxpool2", nn.MaxPool2d(3, stride=2)),
            ]
            size = _pool_out(_pool_out(size, 3, 2, 0) - 2, 3, 2, 0)
            cin = c4a
        self._add("stem", layers)
        cin = self._squeeze("stem", cin, spec)

        cin = self._stage("stage_a", "Mixed_5", cin, layout.a, spec, module_a, ctx)
        cin = self._squeeze("stage_a", cin, spec)
        plan = ReductionPlan("B", _scale(layout.red1, wm), spec.bottleneck_ratio, layout.valid)
        cin = self._reduction("reduction_1", "Mixed_6a", cin, plan, spec, ctx)
        size = _pool_out(size, 3, 2, pad)
        cin = self._stage("stage_b", "Mixed_6", cin, layout.b, spec, module_b, ctx)

        aux_w = _scale(layout.aux, wm)
        grid = _pool_out(size, 5, 3, 0)
        if grid < 1:
            raise SpecError(f"input_size={input_size} is too small: the 17x17-stage grid is {size}")
        self.AuxLogits = AUX_HEAD.get(spec.aux_head)(
            cin, num_classes, mid=aux_w["mid"], hidden=aux_w["hidden"], grid=min(grid, 5)
        )
        if self.AuxLogits is not None:
            self.stages["aux"] = ["AuxLogits"]
        self.has_aux = self.AuxLogits is not None
        cin = self._squeeze("stage_b", cin, spec)

        plan = ReductionPlan("D", _scale(layout.red2, wm), spec.bottleneck_ratio, layout.valid)
        cin = self._reduction("reduction_2", "Mixed_7a", cin, plan, spec, ctx)
        coarse = COARSE_MODULE.get(spec.coarse_module)
        cin = self._stage("stage_c", "Mixed_7", cin, layout.c, spec, coarse, ctx)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=spec.dropout)
        self.fc = nn.Linear(cin, num_classes)
        self.stages["head"] = ["avgpool", "dropout", "fc"]
        self.num_features = cin
        # forward order of the trunk (aux head excluded: it hangs off the 17x17 stage)
        self._trunk = [
            n for s, names in self.stages.items() if s not in ("aux", "head") for n in names
        ]
        self._aux_after = self.stages["stage_b"][-1]

    def _add(self, stage: str, layers: list[tuple[str, nn.Module]]) -> None:
        for name, module in layers:
            self.add_module(name, module)
        self.stages[stage] = [n for n, _ in layers]

    def _squeeze(self, after: str, cin: int, spec: ArchSpec) -> int:
        """Principle 1's bottleneck: a 1x1 conv keeping squeeze_ratio of the channels."""
        if spec.squeeze_at != after:
            return cin
        cout = max(1, round(spec.squeeze_ratio * cin))
        self._add("squeeze", [("Squeeze", ConvBN(cin, cout, 1))])
        return cout

    def _stage(self, stage, prefix, cin, widths, spec, build, ctx) -> int:  # noqa: ANN001
        layers = []
        for i, w in enumerate(_stretch(widths, spec.depth_mult)):
            module = build(cin, _scale(w, spec.width_mult), ctx)
            layers.append((f"{prefix}{ascii_lowercase[1 + i]}", module))
            cin = module.out_channels
        self._add(stage, layers)
        return cin

    def _reduction(self, stage, name, cin, plan, spec, ctx) -> int:  # noqa: ANN001
        module = GRID_REDUCTION.get(spec.grid_reduction)(cin, plan, ctx)
        self._add(stage, [(name, module)])
        return module.out_channels

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Trunk output before pooling, and the aux logits when training with an aux head."""
        aux = None
        for name in self._trunk:
            x = self.get_submodule(name)(x)
            if name == self._aux_after and self.AuxLogits is not None and self.training:
                aux = self.AuxLogits(x)
        return x, aux

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x, aux = self.features(x)
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (x, aux) if aux is not None else x
