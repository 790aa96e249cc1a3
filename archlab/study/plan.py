"""Expanding a study into the runs to make: cells at a scale, their content keys, iso-MAC widths.

A *cell* is one run: a variant (label, ArchSpec, TrainConfig) and a seed; its ``key`` is the
sha256 of its resolved configuration, so a finished cell is never rerun. ``--set key=value``
overrides apply on top of a scale's settings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any

from archlab.analysis.matching import normalize
from archlab.arch.spec import (
    ADDED_SPEC_FIELDS,
    ArchSpec,
    SpecError,
    field_names,
    parse_value,
    revisions,
)
from archlab.study.errors import StudyFileError
from archlab.study.numerics import apply_numerics, machine_numerics
from archlab.study.schema import DEFAULT_SCALE, SCALE_EXTRA_KEYS, SMOKE, StudyDef, Variant
from archlab.study.values import (
    RECIPE_KEYS,
    SPEC_HINTS,
    as_seeds,
    check_config,
    fail,
)
from archlab.train.config import (
    ADDED_FIELDS,
    PRESETS,
    ConfigError,
    TrainConfig,
    config_from_overrides,
)

__all__ = [
    "Cell",
    "Outline",
    "check_study",
    "config_shape",
    "data_shape",
    "outline",
    "parse_set",
    "plan_cells",
    "resolve_scale",
    "run_key",
    "search_base",
    "variant_label",
]


def run_key(model: str, spec: ArchSpec, config: TrainConfig, scale: str) -> str:
    """sha256 of the canonical JSON of a run's resolved configuration: its identity."""
    # fields added after results were stored leave the key out while at their default, so the
    # runs stored before them keep their identity
    recipe = _without_defaults(config.to_dict(), ADDED_FIELDS)
    arch = _without_defaults(spec.to_dict(), ADDED_SPEC_FIELDS)
    doc = {"model": model, "spec": arch, "recipe": recipe, "scale": scale}
    # an option rebuilt under its old name (e.g. factor_act=linear reaching more convs) carries
    # its revision, so runs of the old build keep their keys and are never taken for the new one
    if revs := revisions(spec):
        doc["revisions"] = revs
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _without_defaults(fields: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in defaults or defaults[k] != v}


@dataclass(frozen=True)
class Cell:
    """One run to make: a labelled variant at one seed, fully resolved."""

    study: str
    scale: str
    group: str
    variant: str
    is_baseline: bool
    model: str
    spec: ArchSpec
    config: TrainConfig
    vs: str = ""  # the label this cell's variant is compared with; "" = its group's baseline

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.config.seed

    @property
    def key(self) -> str:
        """Content key of the run (see run_key)."""
        return run_key(self.model, self.spec, self.config, self.scale)


def variant_label(overrides: dict[str, Any]) -> str:
    """``axis=value[,axis=value]`` with sorted keys, or ``baseline`` when nothing is changed."""
    if not overrides:
        return "baseline"
    return ",".join(f"{k}={normalize(overrides[k])}" for k in sorted(overrides))


@dataclass(frozen=True)
class _Resolved:
    """One distinct variant of a study: its label, group, spec and recipe (no seed yet)."""

    group: str
    label: str
    is_baseline: bool
    spec: ArchSpec
    config: TrainConfig
    vs: str = ""


# --- bases and scales ----------------------------------------------------------------------------


def resolve_scale(study: StudyDef, scale: str) -> dict[str, Any]:
    """The scale's settings (smoke: SMOKE plus the file's smoke entries); error if unknown."""
    if scale == "smoke":
        own = study.scales.get("smoke", {})
        return {**SMOKE, **own, "base": {**SMOKE["base"], **own.get("base", {})}}
    if scale not in study.scales:
        raise StudyFileError(
            f"{study.path}: scales: no scale {scale!r}; valid: {', '.join(study.scale_names())}"
        )
    return dict(study.scales[scale])


def _replace_spec(where: str, path: str, spec: ArchSpec, changes: dict[str, Any]) -> ArchSpec:
    try:
        return spec.replace(**changes)
    except SpecError as e:
        fail(where, path, str(e))


def _study_base(
    study: StudyDef, scale: str, set_spec: dict[str, Any], set_recipe: dict[str, Any]
) -> tuple[ArchSpec, TrainConfig, tuple[int, ...]]:
    """Base spec, base recipe and seeds of a study at a scale, with --set overrides on top."""
    from archlab.arch.models import default_spec

    where = str(study.path)
    s = resolve_scale(study, scale)
    spec = _replace_spec(where, "base", default_spec(study.model), study.base)
    spec = _replace_spec(where, f"scales.{scale}.base", spec, s.get("base", {}))
    spec = _replace_spec(where, "--set", spec, set_spec)
    recipe = {k: v for k, v in s.items() if k not in SCALE_EXTRA_KEYS}
    # a scale names a recipe: a training preset, then the study's recipe, the scale's keys, --set
    start = PRESETS.get(s.get("preset", ""), {})
    try:
        config = TrainConfig().replace(**{**start, **study.recipe, **recipe, **set_recipe})
    except ConfigError as e:
        fail(where, f"scales.{scale}", str(e))
    check_config(where, f"recipe at scale {scale}", config)
    seeds = tuple(s.get("seeds", study.seeds))
    return spec, config, seeds


def search_base(
    study: StudyDef,
    scale: str,
    overrides: typing.Sequence[str] = (),
    numerics: dict[str, Any] | None = None,
) -> tuple[ArchSpec, TrainConfig, int, tuple[int, ...]]:
    """A search study's base spec, recipe, trial budget and seeds at a scale.

    ``numerics`` (as ``plan_cells`` takes them) replace the recipe's ``auto`` device and
    precision; None leaves them as the study file says.
    """
    set_spec, set_recipe, set_seeds = parse_set(overrides)
    spec, config, seeds = _study_base(study, scale, set_spec, set_recipe)
    if numerics is not None:
        config = apply_numerics(config, numerics)
    assert study.search is not None
    trials = resolve_scale(study, scale).get("trials", study.search.trials)
    return spec, config, int(trials), set_seeds or seeds


# --- variants ------------------------------------------------------------------------------------


def _variants_of(study: StudyDef, base_spec: ArchSpec, base_cfg: TrainConfig) -> list[_Resolved]:
    """Every distinct (label, spec, config) of the study, each group's baseline first."""
    from archlab.arch.models import default_spec

    where = str(study.path)
    study_base = {**default_spec(study.model).to_dict(), **base_spec.to_dict()}
    study_recipe = base_cfg.to_dict()
    out: list[_Resolved] = []
    chained: list[tuple[str, str, str]] = []  # (key path, label, the label it is compared with)
    for g in study.groups:
        g_spec = _replace_spec(where, g.base_path(), base_spec, g.base)
        in_group: dict[tuple[ArchSpec, TrainConfig], str] = {}
        entries = [(Variant({}, {}), -1)] + [(v, i) for i, v in enumerate(g.variants)]
        for v, i in entries:
            path = g.variant_path(i) if i >= 0 else g.base_path()
            spec = _replace_spec(where, path, g_spec, v.spec)
            config = base_cfg.replace(**v.recipe)
            # Labels are relative to the study's base so they stay unique across groups.
            changed = {k: x for k, x in {**g.base, **v.spec}.items() if study_base[k] != x}
            changed.update({k: x for k, x in v.recipe.items() if study_recipe[k] != x})
            label = v.name or variant_label(changed)
            same = in_group.get((spec, config))
            if same is not None:
                if g.grid and same == in_group[(g_spec, base_cfg)]:
                    continue  # a grid point equal to the baseline is the baseline
                if (spec, config) == (g_spec, base_cfg):
                    fail(where, path, "the same as the baseline: a variant must change something")
                fail(where, path, f"duplicate variant: the same run as {same!r}")
            in_group[(spec, config)] = label
            out.append(_Resolved(g.name, label, i < 0, spec, config, v.vs))
            if v.vs:
                chained.append((f"{path}.vs", label, v.vs))
    out = _dedupe(where, out)
    labels = sorted({r.label for r in out})
    for path, label, vs in chained:
        if vs == label or vs not in labels:
            fail(where, path, f"{vs!r} is not another variant of the study", labels)
    return out


def _dedupe(where: str, resolved: list[_Resolved]) -> list[_Resolved]:
    """One entry per label across groups; one label naming two configurations is an error."""
    seen: dict[str, _Resolved] = {}
    out = []
    for r in resolved:
        prev = seen.get(r.label)
        if prev is None:
            seen[r.label] = r
            out.append(r)
        elif (prev.spec, prev.config) != (r.spec, r.config):
            fail(where, f"variant {r.label!r}", "one label for two different configurations")
        # else: a group sharing a run with another group (e.g. an empty group base): keep one row
    return out


def check_study(study: StudyDef) -> None:
    """Resolve every scale now so a bad combination fails at load time, not mid-study."""
    for scale in study.scale_names():
        base_spec, base_cfg, _ = _study_base(study, scale, {}, {})
        if study.kind != "search":
            _variants_of(study, base_spec, base_cfg)
            continue
        _check_search_base(study, scale, base_spec)


def _check_search_base(study: StudyDef, scale: str, base_spec: ArchSpec) -> None:
    """The search's first trial is the base network: it must be a point of the search space."""
    assert study.search is not None
    where = str(study.path)
    for a, options in study.search.axes.items():
        if getattr(base_spec, a) not in options:
            fail(
                where,
                f"search.axes.{a}",
                f"the base network's {a}={getattr(base_spec, a)!r} "
                f"(scale {scale}) is not searched; the search starts from it",
                options,
            )
    for k, (lo, hi) in study.search.knobs.items():
        if getattr(base_spec, k) is None:
            fail(
                where,
                f"search.knobs.{k}",
                f"the base network's {k} is none (native); set base.{k} to a number to search it",
            )
        for x in (lo, hi):
            _replace_spec(where, f"search.knobs.{k}", base_spec, {k: x})


# --- cells ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    """What a comparison's plan holds, counted without expanding it into cells."""

    variants: int
    seeds: tuple[int, ...]
    config: TrainConfig  # the base recipe at the scale, its device and precision unresolved

    @property
    def runs(self) -> int:
        """Cells of the plan: variants x seeds."""
        return self.variants * len(self.seeds)


def outline(
    study: StudyDef, scale: str = DEFAULT_SCALE, overrides: typing.Sequence[str] = ()
) -> Outline:
    """A comparison's variant count, seeds and base recipe: its size before any cell is made."""
    if study.kind == "search":
        raise StudyFileError(f"{study.path}: kind: a search study has no fixed cells")
    set_spec, set_recipe, set_seeds = parse_set(overrides)
    base_spec, base_cfg, seeds = _study_base(study, scale, set_spec, set_recipe)
    return Outline(len(_variants_of(study, base_spec, base_cfg)), set_seeds or seeds, base_cfg)


def plan_cells(
    study: StudyDef,
    scale: str = DEFAULT_SCALE,
    overrides: typing.Sequence[str] = (),
    *,
    tuned: dict[str, dict[str, Any]] | None = None,
    numerics: dict[str, Any] | None = None,
    seeds: typing.Sequence[int] | None = None,
) -> list[Cell]:
    """Every cell of a comparison study at a scale: variants x seeds, iso-MAC widths solved.

    ``overrides`` are ``--set key=value`` strings (see parse_set); ``tuned`` maps a variant label
    to tuned recipe values that replace the study's for that variant. ``auto`` device and
    precision become ``numerics`` (numerics.py; default: what this machine resolves), so a key
    names the numerics a run computes with. ``seeds`` replaces the scale's (and --set) seeds.
    """
    if study.kind == "search":
        raise StudyFileError(f"{study.path}: kind: a search study has no fixed cells")
    set_spec, set_recipe, set_seeds = parse_set(overrides)
    base_spec, base_cfg, scale_seeds = _study_base(study, scale, set_spec, set_recipe)
    numerics = numerics or machine_numerics(base_cfg)
    resolved = _variants_of(study, base_spec, base_cfg)
    if study.iso_macs:
        tol = resolve_scale(study, scale).get("iso_tolerance", study.iso_macs.tolerance)
        resolved = _iso_solve(study, base_spec, base_cfg, resolved, tol)
    cells = []
    for r in resolved:
        config = r.config.replace(**(tuned or {}).get(r.label, {}))
        check_config(str(study.path), f"variant {r.label!r}", config)
        config = apply_numerics(config, numerics)
        for seed in seeds if seeds is not None else set_seeds or scale_seeds:
            cell = Cell(
                study.name,
                scale,
                r.group,
                r.label,
                r.is_baseline,
                study.model,
                r.spec,
                config.replace(seed=seed),
                r.vs,
            )
            cells.append(cell)
    return cells


# --- iso-MAC -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def data_shape(
    dataset: str, resize: int | None, upsample: int | None = None
) -> tuple[int, int, int]:
    """(input size, channels, classes) of a dataset as a run sees it."""
    from archlab.train.data import load_dataset

    d = load_dataset(dataset, train_subset=1, val_size=0, resize=resize, upsample=upsample, seed=0)
    return d.image_size, d.in_chans, d.num_classes


def config_shape(config: TrainConfig) -> tuple[int, int, int]:
    """(input size, channels, classes) a run of ``config`` sees (``data_shape``, cached)."""
    return data_shape(config.dataset, config.resize, config.upsample)


def _macs(model: str, spec: ArchSpec, config: TrainConfig) -> int:
    from archlab.arch.cost import fast_macs

    size, chans, classes = config_shape(config)
    return fast_macs(model, spec, input_size=size, in_chans=chans, num_classes=classes)


@functools.lru_cache(maxsize=256)
def _solve(model: str, spec: ArchSpec, budget: int, config: TrainConfig, tol: float) -> ArchSpec:
    from archlab.arch.cost import solve_width

    size, chans, classes = config_shape(config)
    return solve_width(
        model, spec, budget, input_size=size, in_chans=chans, num_classes=classes, tol=tol
    )


def _iso_solve(
    study: StudyDef,
    base_spec: ArchSpec,
    base_cfg: TrainConfig,
    resolved: list[_Resolved],
    tol: float,
) -> list[_Resolved]:
    """Each variant's width solved to its group baseline's MACs (or to the fixed budget)."""
    iso = study.iso_macs
    assert iso is not None
    budgets = {
        g.name: _macs(study.model, base_spec.replace(**g.base), base_cfg) for g in study.groups
    }
    out = []
    for r in resolved:
        if r.is_baseline and iso.budget == "baseline":
            out.append(r)
            continue
        budget = iso.budget if isinstance(iso.budget, int) else budgets[r.group]
        try:
            spec = _solve(study.model, r.spec, budget, r.config, tol)
        except SpecError as e:
            fail(str(study.path), f"iso_macs (variant {r.label!r})", str(e))
        out.append(_Resolved(r.group, r.label, r.is_baseline, spec, r.config, r.vs))
    return out


# --- --set overrides -----------------------------------------------------------------------------


def parse_set(
    items: typing.Sequence[str],
) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...] | None]:
    """``--set key=value`` strings -> (spec overrides, recipe overrides, seeds or None)."""
    spec: dict[str, Any] = {}
    recipe_items: dict[str, str] = {}
    seeds: tuple[int, ...] | None = None
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise StudyFileError(f"--set {item!r}: must look like key=value")
        if key == "seeds":
            try:
                seeds = as_seeds("--set", "seeds", json.loads(text))
            except json.JSONDecodeError:
                raise StudyFileError(f"--set {item!r}: write seeds=N or seeds=[0,1,2]") from None
        elif key.removeprefix("spec.") in SPEC_HINTS:
            spec[key.removeprefix("spec.")] = parse_value(key.removeprefix("spec."), text)
        elif key.removeprefix("recipe.") in RECIPE_KEYS:
            recipe_items[key.removeprefix("recipe.")] = text
        else:
            valid = [*field_names(), *RECIPE_KEYS, "seeds"]
            raise StudyFileError(f"--set {item!r}: unknown key {key!r}; valid: {', '.join(valid)}")
    try:
        parsed = config_from_overrides(TrainConfig(), [f"{k}={v}" for k, v in recipe_items.items()])
    except ConfigError as e:  # say where the bad value came from
        raise StudyFileError(f"--set {e}") from None
    recipe = {k: getattr(parsed, k) for k in recipe_items}
    return spec, recipe, seeds
