"""The record a study keeps beside its trials: what was planned, from which code, on which machine.

Written to the optuna study's user attrs at plan time: ``meta`` (title, dataset, recipe, seeds,
provenance: the header of every report) and, for comparisons, ``plan`` (the cells in order).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from archlab import __version__
from archlab.arch.spec import ArchSpec
from archlab.provenance import git_commit, machine
from archlab.study.plan import Cell
from archlab.study.schema import StudyDef
from archlab.train.config import TrainConfig

__all__ = ["plan_record", "study_meta"]


def study_meta(
    study_def: StudyDef, scale: str, spec: ArchSpec, config: TrainConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    """The study's meta at a scale: its base network and recipe, seeds, version, machine."""
    return {
        "study": study_def.name,
        "title": study_def.title,
        "description": study_def.description,
        "kind": study_def.kind,
        "model": study_def.model,
        "dataset": config.dataset,
        "scale": scale,
        "seeds": list(seeds),
        "recipe": {k: v for k, v in config.to_dict().items() if k != "seed"},
        "baseline": "baseline",
        "base_spec": spec.to_dict(),
        "groups": {g.name: g.description for g in study_def.groups if g.name},
        "iso_macs": vars(study_def.iso_macs) if study_def.iso_macs else None,
        "analysis": dict(study_def.analysis),
        "claims": list(study_def.claims),
        "version": __version__,
        "commit": git_commit(),
        "machine": machine(),
        "planned_at": time.time(),
    }


def plan_record(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """The planned cells in order: group, variant, whether it is a baseline, run key (, vs)."""
    return [
        {
            "group": c.group,
            "variant": c.variant,
            "is_baseline": c.is_baseline,
            "key": c.key,
            **({"vs": c.vs} if c.vs else {}),
        }
        for c in cells
    ]
