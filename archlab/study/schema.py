"""What a study file may say: its keys, its kinds, the smoke scale, and the types it parses into.

``studies/README.md`` documents the schema; studyfile.py reads a file into these types and
plan.py expands them into the runs to make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "DEFAULT_SCALE",
    "GROUP_KEYS",
    "GROUP_RE",
    "ISO_KEYS",
    "KINDS",
    "MAX_GRID_VALUES",
    "NAME_RE",
    "SCALE_EXTRA_KEYS",
    "SEARCH_KEYS",
    "SEARCH_OBJECTIVES",
    "SMOKE",
    "TOP_KEYS",
    "VARIANT_MODES",
    "Group",
    "IsoMacs",
    "SearchSpace",
    "StudyDef",
    "Variant",
]

KINDS = ("compare", "search", "principle1", "principle2", "principle3", "principle4")
TOP_KEYS = (
    "name",
    "title",
    "description",
    "kind",
    "model",
    "claims",
    "base",
    "recipe",
    "seeds",
    "variants",
    "groups",
    "iso_macs",
    "search",
    "scales",
    "analysis",
)
#: ``analysis:`` options per principle kind, fixed in the study file before any run
ANALYSIS_KEYS = {
    "principle2": ("curve", "threshold"),
    "principle4": ("tolerance",),
}
CURVES = ("val_top1", "train_top1", "test_top1")
VARIANT_MODES = ("one_factor", "grid")
GROUP_KEYS = ("description", "base", "variants")
ISO_KEYS = ("budget", "tolerance")
SEARCH_KEYS = ("trials", "axes", "knobs", "population", "objective")
SEARCH_OBJECTIVES = ("val_top1", "test_top1")
SCALE_EXTRA_KEYS = (
    "seeds",
    "base",
    "trials",
    "iso_tolerance",
    "max_seeds",
    "sequential",
    "preset",
    "tune_grid",
)
#: ``tune_grid``: the most values one key may list (each is a tuning run of every variant)
MAX_GRID_VALUES = 12
DEFAULT_SCALE = "quick"
#: study and scale names
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: group names
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: The implicit ``smoke`` scale of every study: synthetic data, one tiny epoch, one seed, a
#: quarter-width net, a loose iso-MAC match (channel rounding is coarse at that width). Seconds
#: per run, for tests and CI; a file's ``scales.smoke`` adds to it.
SMOKE: dict[str, Any] = {
    "dataset": "synthetic:100",
    "train_subset": None,
    "val_size": 20,
    "epochs": 1.0,
    "batch_size": 80,  # one step per epoch
    "eval_batch_size": 256,
    "warmup_epochs": 0.0,
    "eval_every": 1,
    "compile": "off",
    "seeds": [0],
    "base": {"width_mult": 0.25},
    "trials": 3,
    "iso_tolerance": 0.15,
}


@dataclass(frozen=True)
class Variant:
    """One variant: ArchSpec and TrainConfig overrides relative to its group's base."""

    spec: dict[str, Any]
    recipe: dict[str, Any]
    name: str = ""  # a custom label (progression steps); "" = derived from the overrides
    vs: str = ""  # the label it is compared with (a chain of steps); "" = its group's baseline


@dataclass(frozen=True)
class Group:
    """A sub-comparison: its own base overrides (e.g. n=3) and variants; "" is the main one."""

    name: str
    description: str
    base: dict[str, Any]
    variants: tuple[Variant, ...]
    grid: bool  # grid points equal to the base are the baseline; one-factor ones are errors

    def base_path(self) -> str:
        """The key path of the group's base in the study file, for error lines."""
        return f"groups.{self.name}.base" if self.name else "base"

    def variant_path(self, i: int) -> str:
        """The key path of the group's ``i``-th variant in the study file, for error lines."""
        prefix = f"groups.{self.name}.variants" if self.name else "variants"
        return f"{prefix}.grid (point {i + 1})" if self.grid else f"{prefix}.one_factor[{i}]"


@dataclass(frozen=True)
class IsoMacs:
    """Solve every variant's width_mult so its MACs match the budget within the tolerance."""

    budget: int | Literal["baseline"]
    tolerance: float = 0.02


@dataclass(frozen=True)
class SearchSpace:
    """What NSGA-II searches: categorical axes, numeric knob ranges, trial budget."""

    trials: int
    axes: dict[str, tuple[str, ...]]
    knobs: dict[str, tuple[float, float]]
    population: int | None = None
    objective: str = "val_top1"


@dataclass(frozen=True)
class StudyDef:
    """A validated study file."""

    path: Path
    name: str
    title: str
    description: str
    kind: str
    model: str
    claims: tuple[str, ...]
    base: dict[str, Any]
    recipe: dict[str, Any]
    seeds: tuple[int, ...]
    groups: tuple[Group, ...]
    iso_macs: IsoMacs | None
    search: SearchSpace | None
    scales: dict[str, dict[str, Any]] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)  # the principle analysis's options

    def scale_names(self) -> list[str]:
        """Every scale the study can run at (smoke is always there)."""
        return list(dict.fromkeys([*self.scales, "smoke"]))
