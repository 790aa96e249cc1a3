"""Model registry: ``build_model(name, spec)``; each model has its own default spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archlab.arch.models.inception import Inception, Layout
from archlab.arch.models.inception_v3 import TORCHVISION
from archlab.arch.models.mini import MINI
from archlab.arch.registry import Registry
from archlab.arch.spec import ArchSpec


@dataclass(frozen=True)
class ModelDef:
    """A model family: its layout, default spec and default input."""

    layout: Layout
    default_spec: Callable[[], ArchSpec]
    input_size: int
    in_chans: int
    num_classes: int


MODELS: Registry[ModelDef] = Registry("model", "network families")
MODELS.add(
    "inception_mini",
    ModelDef(MINI, ArchSpec, 28, 1, 10),
    description="the paper's topology at small-image scale (28-64 px)",
    paper="Fig. 5-7, Table 1 (scaled)",
)
MODELS.add(
    "inception_v3_tv",
    ModelDef(
        TORCHVISION, lambda: ArchSpec(conv5x5="5x5", aux_head="aux", dropout=0.5), 299, 3, 1000
    ),
    description="full-size Inception-v3, torchvision's exact layout and state_dict keys",
    paper="Table 1 (torchvision keeps a 5x5 in module A)",
)
MODELS.add(
    "inception_v3_paper",
    ModelDef(TORCHVISION, lambda: ArchSpec(aux_head="aux", dropout=0.5), 299, 3, 1000),
    description="full-size Inception-v3 with the paper's Fig. 5 module A (two 3x3)",
    paper="Table 1, Fig. 5",
)


def default_spec(name: str = "inception_mini") -> ArchSpec:
    """The default spec of a model family."""
    return MODELS.get(name).default_spec()


def build_model(
    name: str = "inception_mini",
    spec: ArchSpec | None = None,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    input_size: int | None = None,
) -> Inception:
    """Build a model; ``None`` arguments take the family's defaults."""
    d = MODELS.get(name)
    return Inception(
        d.layout,
        spec if spec is not None else d.default_spec(),
        num_classes=num_classes or d.num_classes,
        in_chans=in_chans or d.in_chans,
        input_size=input_size or d.input_size,
    )


__all__ = ["MODELS", "Inception", "build_model", "default_spec"]
