"""Study files (``studies/*.yaml``): load, validate every key, expand into the cells to run.

A study file is data: ``yaml.safe_load`` only, unknown keys are errors, and the first problem is
reported as one line ``FILE: key.path: problem; valid: ...``. ``studies/README.md`` documents
the schema. A *cell* is one run to make: a variant (label, ArchSpec, TrainConfig) and a seed;
its ``key`` is the sha256 of its resolved configuration, so a finished cell is never rerun.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from archlab.claims import CLAIMS, normalize
from archlab.cli import register_user_error
from archlab.config import ConfigError, TrainConfig
from archlab.variants import AXES, KNOBS, ArchSpec, SpecError, field_names

__all__ = [
    "KINDS",
    "SMOKE",
    "Cell",
    "Group",
    "IsoMacs",
    "SearchSpace",
    "StudyDef",
    "StudyFileError",
    "Variant",
    "find_study_file",
    "load_study",
    "parse_set",
    "plan_cells",
    "resolve_scale",
    "run_key",
    "variant_label",
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
)
VARIANT_MODES = ("one_factor", "grid")
GROUP_KEYS = ("description", "base", "variants")
ISO_KEYS = ("budget", "tolerance")
SEARCH_KEYS = ("trials", "axes", "knobs", "population", "objective")
SEARCH_OBJECTIVES = ("val_top1", "test_top1")
SCALE_EXTRA_KEYS = ("seeds", "base", "trials", "iso_tolerance")
DEFAULT_SCALE = "quick"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

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


class StudyFileError(ValueError):
    """A study file or a study override is invalid; one line naming the file and key path."""


register_user_error(StudyFileError)


def _fail(
    where: str, path: str, problem: str, valid: typing.Iterable[object] = ()
) -> typing.NoReturn:
    valid = [str(v) for v in valid]
    tail = f"; valid: {', '.join(valid)}" if valid else ""
    raise StudyFileError(f"{where}: {path}: {problem}{tail}")


# --- the parsed study ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One variant: ArchSpec and TrainConfig overrides relative to its group's base."""

    spec: dict[str, Any]
    recipe: dict[str, Any]
    name: str = ""  # a custom label (progression steps); "" = derived from the overrides


@dataclass(frozen=True)
class Group:
    """A sub-comparison: its own base overrides (e.g. n=3) and variants; "" is the main one."""

    name: str
    description: str
    base: dict[str, Any]
    variants: tuple[Variant, ...]
    grid: bool  # grid points equal to the base are the baseline; one-factor ones are errors


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

    def scale_names(self) -> list[str]:
        """Every scale the study can run at (smoke is always there)."""
        return list(dict.fromkeys([*self.scales, "smoke"]))


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

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.config.seed

    @property
    def key(self) -> str:
        """Content key of the run (see run_key)."""
        return run_key(self.model, self.spec, self.config, self.scale)


#: recipe fields newer than the first stored results, with the value that leaves them out of keys
KEY_STABLE_DEFAULTS: dict[str, Any] = {"precise_bn": 0}


def run_key(model: str, spec: ArchSpec, config: TrainConfig, scale: str) -> str:
    """sha256 of the canonical JSON of a run's resolved configuration: its identity."""
    recipe = config.to_dict()
    # fields added after results were stored leave the key out while at their default, so the
    # runs stored before them keep their identity
    for name, default in KEY_STABLE_DEFAULTS.items():
        if recipe.get(name) == default:
            del recipe[name]
    doc = {"model": model, "spec": spec.to_dict(), "recipe": recipe, "scale": scale}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- typed values --------------------------------------------------------------------------------

_SPEC_HINTS = typing.get_type_hints(ArchSpec)
_RECIPE_HINTS = typing.get_type_hints(TrainConfig)
RECIPE_FIELDS = tuple(f.name for f in fields(TrainConfig))


def _type_words(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, args))
    if args:
        return " or ".join(_type_words(a) for a in args)
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, "null"
    )


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` converted to ``hint`` (int -> float where a float is wanted); ValueError if not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value in args:
            return value
        raise ValueError
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for a in args:
            if a is not type(None):
                try:
                    return _coerce(value, a)
                except ValueError:
                    pass
        raise ValueError
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ValueError


def _spec_value(where: str, path: str, key: str, value: Any) -> Any:
    if key in AXES:
        names = AXES[key].names()
        if value not in names:
            _fail(where, path, f"{value!r} is not a {key} option", names)
        return value
    try:
        return _coerce(value, _SPEC_HINTS[key])
    except ValueError:
        _fail(where, path, f"{value!r} is not {_type_words(_SPEC_HINTS[key])}")


def _recipe_value(where: str, path: str, key: str, value: Any) -> Any:
    hint = _RECIPE_HINTS[key]
    try:
        return _coerce(value, hint)
    except ValueError:
        if typing.get_origin(hint) is Literal:
            _fail(where, path, f"{value!r} is not an option", typing.get_args(hint))
        _fail(where, path, f"{value!r} is not {_type_words(hint)}")


def _mapping(where: str, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(where, path, f"expected a mapping, got {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            _fail(where, path, f"key {k!r} is not a string")
    return value


def _string(where: str, path: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        _fail(where, path, "expected a non-empty string" if not empty else "expected a string")
    return value


def _unknown(where: str, path: str, data: dict[str, Any], valid: typing.Sequence[str]) -> None:
    for k in data:
        if k not in valid:
            _fail(where, f"{path}.{k}" if path else k, "unknown key", valid)


def _spec_overrides(where: str, path: str, data: Any) -> dict[str, Any]:
    data = _mapping(where, path, data)
    _unknown(where, path, data, field_names())
    return {k: _spec_value(where, f"{path}.{k}", k, v) for k, v in data.items()}


def _recipe_overrides(where: str, path: str, data: Any) -> dict[str, Any]:
    data = _mapping(where, path, data)
    _unknown(where, path, data, [f for f in RECIPE_FIELDS if f != "seed"])
    return {k: _recipe_value(where, f"{path}.{k}", k, v) for k, v in data.items()}


def _seeds(where: str, path: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            _fail(where, path, f"{value} seeds: need at least 1")
        return tuple(range(value))
    if not isinstance(value, list) or not value:
        _fail(where, path, f"{value!r} is not a number of seeds (>= 1) or a list of seeds")
    for i, s in enumerate(value):
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            _fail(where, f"{path}[{i}]", f"seed {s!r} is not an integer >= 0")
    if len(set(value)) != len(value):
        _fail(where, path, f"duplicate seeds in {value}")
    return tuple(value)


# --- variants ------------------------------------------------------------------------------------


def _variant_entry(where: str, path: str, data: Any) -> Variant:
    """A variant mapping: spec keys, ``recipe.KEY`` keys or a ``recipe:`` mapping, ``name``."""
    data = _mapping(where, path, data)
    spec: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    name = ""
    valid = [*field_names(), "recipe", "recipe.KEY", "name"]
    for k, v in data.items():
        p = f"{path}.{k}"
        if k == "name":
            name = _string(where, p, v, empty=False)
        elif k == "recipe":
            for rk, rv in _recipe_overrides(where, p, v).items():
                recipe[rk] = rv
        elif k.startswith("recipe."):
            rk = k.removeprefix("recipe.")
            if rk not in RECIPE_FIELDS or rk == "seed":
                _fail(where, p, "unknown recipe key", [f for f in RECIPE_FIELDS if f != "seed"])
            recipe[rk] = _recipe_value(where, p, rk, v)
        elif k in _SPEC_HINTS:
            spec[k] = _spec_value(where, p, k, v)
        else:
            _fail(where, p, "unknown key", valid)
    if not spec and not recipe:
        _fail(where, path, "empty variant: set at least one axis, knob or recipe key")
    return Variant(spec, recipe, name)


def _grid(where: str, path: str, data: Any) -> list[Variant]:
    data = _mapping(where, path, data)
    if not data:
        _fail(where, path, "empty grid: give at least one key with a list of values")
    axes: list[tuple[str, list[Any]]] = []
    for k, values in data.items():
        p = f"{path}.{k}"
        if not isinstance(values, list) or not values:
            _fail(where, p, "expected a non-empty list of values")
        checked = [_variant_entry(where, f"{p}[{i}]", {k: v}) for i, v in enumerate(values)]
        if len({json.dumps([c.spec, c.recipe], sort_keys=True) for c in checked}) != len(checked):
            _fail(where, p, f"duplicate values in {values}")
        axes.append((k, checked))
    points = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        spec = {k: v for c in combo for k, v in c.spec.items()}
        recipe = {k: v for c in combo for k, v in c.recipe.items()}
        points.append(Variant(spec, recipe))
    return points


def _variants(where: str, path: str, data: Any) -> tuple[list[Variant], bool]:
    data = _mapping(where, path, data)
    _unknown(where, path, data, VARIANT_MODES)
    if len(data) != 1:
        _fail(where, path, "give exactly one of one_factor or grid", VARIANT_MODES)
    mode, value = next(iter(data.items()))
    if mode == "grid":
        return _grid(where, f"{path}.grid", value), True
    if not isinstance(value, list) or not value:
        _fail(where, f"{path}.one_factor", "expected a non-empty list of variant mappings")
    return [_variant_entry(where, f"{path}.one_factor[{i}]", v) for i, v in enumerate(value)], False


# --- the file ------------------------------------------------------------------------------------


def _iso(where: str, data: Any) -> IsoMacs:
    data = _mapping(where, "iso_macs", data)
    _unknown(where, "iso_macs", data, ISO_KEYS)
    budget = data.get("budget", "baseline")
    if budget != "baseline" and (
        not isinstance(budget, int) or isinstance(budget, bool) or budget < 1
    ):
        _fail(where, "iso_macs.budget", f"{budget!r} is not 'baseline' or a positive MAC count")
    tol = data.get("tolerance", 0.02)
    if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 < tol <= 0.5:
        _fail(where, "iso_macs.tolerance", f"{tol!r} is not a number in (0, 0.5]")
    return IsoMacs(budget, float(tol))


def _search(where: str, data: Any) -> SearchSpace:
    data = _mapping(where, "search", data)
    _unknown(where, "search", data, SEARCH_KEYS)
    trials = data.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        _fail(where, "search.trials", f"{trials!r} is not an integer >= 1")
    axes_in = data.get("axes", list(AXES))
    axes: dict[str, tuple[str, ...]] = {}
    if isinstance(axes_in, list):
        axes_in = {a: None for a in axes_in}
    for a, options in _mapping(where, "search.axes", axes_in).items():
        if a not in AXES:
            _fail(where, f"search.axes.{a}", "unknown axis", AXES)
        options = AXES[a].names() if options is None else options
        if not isinstance(options, list) or len(options) < 1:
            _fail(where, f"search.axes.{a}", "expected a non-empty list of options")
        for i, o in enumerate(options):
            _spec_value(where, f"search.axes.{a}[{i}]", a, o)
        axes[a] = tuple(options)
    knobs: dict[str, tuple[float, float]] = {}
    for k, rng in _mapping(where, "search.knobs", data.get("knobs", {})).items():
        p = f"search.knobs.{k}"
        if k not in KNOBS:
            _fail(where, p, "unknown knob", KNOBS)
        if (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in rng)
            or not rng[0] < rng[1]
        ):
            _fail(where, p, f"{rng!r} is not a range [low, high] with low < high")
        if k == "n" and not all(isinstance(x, int) and x % 2 for x in rng):
            _fail(where, p, f"{rng!r}: n takes odd integer bounds (it is searched in steps of 2)")
        _, low, inclusive = KNOBS[k]
        if rng[0] < low or (rng[0] == low and not inclusive):
            _fail(where, p, f"low bound {rng[0]} is out of range: {KNOBS[k][0]}")
        knobs[k] = (rng[0], rng[1])
    if not axes and not knobs:
        _fail(where, "search", "nothing to search: give axes or knobs")
    population = data.get("population")
    if population is not None and (
        not isinstance(population, int) or isinstance(population, bool) or population < 2
    ):
        _fail(where, "search.population", f"{population!r} is not an integer >= 2")
    objective = data.get("objective", "val_top1")
    if objective not in SEARCH_OBJECTIVES:
        _fail(where, "search.objective", f"{objective!r} is not an objective", SEARCH_OBJECTIVES)
    return SearchSpace(trials, axes, knobs, population, objective)


def _scale(where: str, path: str, data: Any, kind: str) -> dict[str, Any]:
    data = _mapping(where, path, data)
    valid = [*SCALE_EXTRA_KEYS, *(f for f in RECIPE_FIELDS if f != "seed")]
    out: dict[str, Any] = {}
    for k, v in data.items():
        p = f"{path}.{k}"
        if k == "seeds":
            out[k] = list(_seeds(where, p, v))
        elif k == "base":
            out[k] = _spec_overrides(where, p, v)
        elif k == "iso_tolerance":
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 0.5:
                _fail(where, p, f"{v!r} is not a number in (0, 0.5]")
            out[k] = float(v)
        elif k == "trials":
            if kind != "search":
                _fail(where, p, "trials is for search studies (kind: search)")
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                _fail(where, p, f"{v!r} is not an integer >= 1")
            out[k] = v
        elif k in RECIPE_FIELDS and k != "seed":
            out[k] = _recipe_value(where, p, k, v)
        else:
            _fail(where, p, "unknown key", valid)
    return out


def load_study(path: str | Path) -> StudyDef:
    """Parse and validate a study file; raise StudyFileError on the first problem."""
    path = Path(path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudyFileError(f"{where}: no such study file") from None
    except OSError as e:  # a directory, no permission: one line, like any bad input
        raise StudyFileError(f"{where}: cannot read the study file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise StudyFileError(f"{where}: not a UTF-8 text file ({e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark else "file"
        raise StudyFileError(f"{where}: {at}: invalid YAML: {getattr(e, 'problem', e)}") from None
    data = _mapping(where, "(top level)", data if data is not None else {})
    _unknown(where, "", data, TOP_KEYS)
    study = _parse(where, path, data)
    _check_cells(study)
    return study


def _parse(where: str, path: Path, data: dict[str, Any]) -> StudyDef:
    from archlab.models import MODELS

    if "name" not in data:
        _fail(where, "name", "missing; every study needs a name (the file name without .yaml)")
    name = _string(where, "name", data["name"], empty=False)
    if not _NAME_RE.match(name):
        _fail(where, "name", f"{name!r} must be lower-case letters, digits, - and _")
    if name != path.stem:
        _fail(where, "name", f"{name!r} must equal the file name {path.stem!r}")
    kind = data.get("kind", "compare")
    if kind not in KINDS:
        _fail(where, "kind", f"{kind!r} is not a study kind", KINDS)
    model = data.get("model", "inception_mini")
    if model not in MODELS:
        _fail(where, "model", f"{model!r} is not a model", MODELS.names())
    claims = data.get("claims", [])
    if not isinstance(claims, list):
        _fail(where, "claims", "expected a list of claim ids")
    for i, c in enumerate(claims):
        if c not in CLAIMS:
            _fail(where, f"claims[{i}]", f"{c!r} is not a claim id", CLAIMS)
    base = _spec_overrides(where, "base", data.get("base", {}))
    recipe = _recipe_overrides(where, "recipe", data.get("recipe", {}))
    _validate_config(where, "recipe", TrainConfig().replace(**recipe))  # scales may hide it
    seeds = _seeds(where, "seeds", data.get("seeds", 1))
    groups = _groups(where, data, kind)
    iso = _iso(where, data["iso_macs"]) if "iso_macs" in data else None
    if iso:
        for g in groups:
            for i, v in enumerate(g.variants):
                if "width_mult" in v.spec:
                    _fail(where, _variant_path(g, i), "iso_macs solves width_mult; do not set it")
    search = _search(where, data["search"]) if "search" in data else None
    if kind == "search" and search is None:
        _fail(where, "search", "missing; a search study needs search: {trials, axes, knobs}")
    if kind != "search" and search is not None:
        _fail(where, "search", f"only for kind: search (this study is kind: {kind})")
    scales_in = _mapping(where, "scales", data.get("scales", {}))
    scales = {}
    for s, v in scales_in.items():
        if not _NAME_RE.match(s):
            _fail(where, f"scales.{s}", "scale names are lower-case letters, digits, - and _")
        scales[s] = _scale(where, f"scales.{s}", v if v is not None else {}, kind)
    return StudyDef(
        path=path,
        name=name,
        title=_string(where, "title", data.get("title", name)),
        description=_string(where, "description", data.get("description", "")).strip(),
        kind=kind,
        model=model,
        claims=tuple(claims),
        base=base,
        recipe=recipe,
        seeds=seeds,
        groups=tuple(groups),
        iso_macs=iso,
        search=search,
        scales=scales,
    )


def _variant_path(g: Group, i: int) -> str:
    prefix = f"groups.{g.name}.variants" if g.name else "variants"
    return f"{prefix}.grid (point {i + 1})" if g.grid else f"{prefix}.one_factor[{i}]"


def _groups(where: str, data: dict[str, Any], kind: str) -> list[Group]:
    if kind == "search":
        for k in ("variants", "groups"):
            if k in data:
                _fail(where, k, "a search study samples its variants; use search: instead")
        return []
    groups = []
    if "variants" in data:
        variants, grid = _variants(where, "variants", data["variants"])
        groups.append(Group("", "", {}, tuple(variants), grid))
    for gname, g in _mapping(where, "groups", data.get("groups", {})).items():
        p = f"groups.{gname}"
        if not _GROUP_RE.match(gname):
            _fail(where, p, "group names are letters, digits, ., - and _")
        g = _mapping(where, p, g)
        _unknown(where, p, g, GROUP_KEYS)
        if "variants" not in g:
            _fail(where, f"{p}.variants", "missing; a group needs its variants")
        variants, grid = _variants(where, f"{p}.variants", g["variants"])
        base = _spec_overrides(where, f"{p}.base", g.get("base", {}))
        desc = _string(where, f"{p}.description", g.get("description", ""))
        groups.append(Group(gname, desc, base, tuple(variants), grid))
    if not groups:
        _fail(where, "variants", "missing; a comparison needs variants (or groups)")
    return groups


# --- expansion -----------------------------------------------------------------------------------


def variant_label(overrides: dict[str, Any]) -> str:
    """``axis=value[,axis=value]`` with sorted keys, or ``baseline`` when nothing is changed."""
    if not overrides:
        return "baseline"
    return ",".join(f"{k}={normalize(overrides[k])}" for k in sorted(overrides))


@dataclass(frozen=True)
class _Resolved:
    group: str
    label: str
    is_baseline: bool
    spec: ArchSpec
    config: TrainConfig


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


def _variants_of(study: StudyDef, base_spec: ArchSpec, base_cfg: TrainConfig) -> list[_Resolved]:
    """Every distinct (label, spec, config) of the study, each group's baseline first."""
    from archlab.models import default_spec

    where = str(study.path)
    study_base = {**default_spec(study.model).to_dict(), **base_spec.to_dict()}
    study_recipe = base_cfg.to_dict()
    out: list[_Resolved] = []
    for g in study.groups:
        g_spec = _replace_spec(where, _group_path(g), base_spec, g.base)
        in_group: dict[tuple[ArchSpec, TrainConfig], str] = {}
        entries = [(Variant({}, {}), -1)] + [(v, i) for i, v in enumerate(g.variants)]
        for v, i in entries:
            path = _variant_path(g, i) if i >= 0 else _group_path(g)
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
                    _fail(where, path, "the same as the baseline: a variant must change something")
                _fail(where, path, f"duplicate variant: the same run as {same!r}")
            in_group[(spec, config)] = label
            out.append(_Resolved(g.name, label, i < 0, spec, config))
    return _dedupe(where, out)


def _replace_spec(where: str, path: str, spec: ArchSpec, changes: dict[str, Any]) -> ArchSpec:
    try:
        return spec.replace(**changes)
    except SpecError as e:
        _fail(where, path, str(e))


def _group_path(g: Group) -> str:
    return f"groups.{g.name}.base" if g.name else "base"


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
            _fail(where, f"variant {r.label!r}", "one label for two different configurations")
        # else: a group sharing a run with another group (e.g. an empty group base): keep one row
    return out


def _check_cells(study: StudyDef) -> None:
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
            _fail(
                where,
                f"search.axes.{a}",
                f"the base network's {a}={getattr(base_spec, a)!r} "
                f"(scale {scale}) is not searched; the search starts from it",
                options,
            )
    for k, (lo, hi) in study.search.knobs.items():
        if getattr(base_spec, k) is None:
            _fail(
                where,
                f"search.knobs.{k}",
                f"the base network's {k} is none (native); set base.{k} to a number to search it",
            )
        for x in (lo, hi):
            _replace_spec(where, f"search.knobs.{k}", base_spec, {k: x})


def _study_base(
    study: StudyDef, scale: str, set_spec: dict[str, Any], set_recipe: dict[str, Any]
) -> tuple[ArchSpec, TrainConfig, tuple[int, ...]]:
    """Base spec, base recipe and seeds of a study at a scale, with --set overrides on top."""
    from archlab.models import default_spec

    where = str(study.path)
    s = resolve_scale(study, scale)
    spec = _replace_spec(where, "base", default_spec(study.model), study.base)
    spec = _replace_spec(where, f"scales.{scale}.base", spec, s.get("base", {}))
    spec = _replace_spec(where, "--set", spec, set_spec)
    recipe = {k: v for k, v in s.items() if k not in SCALE_EXTRA_KEYS}
    try:
        config = TrainConfig().replace(**{**study.recipe, **recipe, **set_recipe})
    except ConfigError as e:
        _fail(where, f"scales.{scale}", str(e))
    _validate_config(where, f"recipe at scale {scale}", config)
    seeds = tuple(s.get("seeds", study.seeds))
    return spec, config, seeds


def _validate_config(where: str, path: str, config: TrainConfig) -> None:
    from archlab.train import validate_config

    try:
        validate_config(config)
    except ConfigError as e:
        _fail(where, path, str(e))


def plan_cells(
    study: StudyDef,
    scale: str = DEFAULT_SCALE,
    overrides: typing.Sequence[str] = (),
    *,
    tuned: dict[str, dict[str, Any]] | None = None,
) -> list[Cell]:
    """Every cell of a comparison study at a scale: variants x seeds, iso-MAC widths solved.

    ``overrides`` are ``--set key=value`` strings (see parse_set); ``tuned`` maps a variant label
    to tuned recipe values that replace the study's for that variant.
    """
    if study.kind == "search":
        raise StudyFileError(f"{study.path}: kind: a search study has no fixed cells")
    set_spec, set_recipe, set_seeds = parse_set(overrides)
    base_spec, base_cfg, seeds = _study_base(study, scale, set_spec, set_recipe)
    resolved = _variants_of(study, base_spec, base_cfg)
    if study.iso_macs:
        tol = resolve_scale(study, scale).get("iso_tolerance", study.iso_macs.tolerance)
        resolved = _iso_solve(study, base_spec, base_cfg, resolved, tol)
    cells = []
    for r in resolved:
        config = r.config.replace(**(tuned or {}).get(r.label, {}))
        _validate_config(str(study.path), f"variant {r.label!r}", config)
        for seed in set_seeds or seeds:
            cell = Cell(
                study.name,
                scale,
                r.group,
                r.label,
                r.is_baseline,
                study.model,
                r.spec,
                config.replace(seed=seed),
            )
            cells.append(cell)
    return cells


def search_base(
    study: StudyDef, scale: str, overrides: typing.Sequence[str] = ()
) -> tuple[ArchSpec, TrainConfig, int, tuple[int, ...]]:
    """A search study's base spec, recipe, trial budget and seeds at a scale."""
    set_spec, set_recipe, set_seeds = parse_set(overrides)
    spec, config, seeds = _study_base(study, scale, set_spec, set_recipe)
    assert study.search is not None
    trials = resolve_scale(study, scale).get("trials", study.search.trials)
    return spec, config, int(trials), set_seeds or seeds


# --- iso-MAC -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def data_shape(dataset: str, resize: int | None) -> tuple[int, int, int]:
    """(input size, channels, classes) of a dataset as a run sees it."""
    from archlab.data import load_dataset

    d = load_dataset(dataset, train_subset=1, val_size=0, resize=resize, seed=0)
    return d.image_size, d.in_chans, d.num_classes


def _macs(model: str, spec: ArchSpec, config: TrainConfig) -> int:
    from archlab.measure import fast_macs

    size, chans, classes = data_shape(config.dataset, config.resize)
    return fast_macs(model, spec, input_size=size, in_chans=chans, num_classes=classes)


@functools.lru_cache(maxsize=256)
def _solve(
    model: str, spec: ArchSpec, budget: int, dataset: str, resize: int | None, tol: float
) -> ArchSpec:
    from archlab.measure import solve_width

    size, chans, classes = data_shape(dataset, resize)
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
            spec = _solve(study.model, r.spec, budget, r.config.dataset, r.config.resize, tol)
        except SpecError as e:
            _fail(str(study.path), f"iso_macs (variant {r.label!r})", str(e))
        out.append(_Resolved(r.group, r.label, r.is_baseline, spec, r.config))
    return out


# --- --set overrides and study lookup ------------------------------------------------------------


def parse_set(
    items: typing.Sequence[str],
) -> tuple[dict[str, Any], dict[str, Any], tuple[int, ...] | None]:
    """``--set key=value`` strings -> (spec overrides, recipe overrides, seeds or None)."""
    from archlab.train import config_from_overrides
    from archlab.variants import parse_value

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
                seeds = _seeds("--set", "seeds", json.loads(text))
            except json.JSONDecodeError:
                raise StudyFileError(f"--set {item!r}: write seeds=N or seeds=[0,1,2]") from None
        elif key.removeprefix("spec.") in _SPEC_HINTS:
            spec[key.removeprefix("spec.")] = parse_value(key.removeprefix("spec."), text)
        elif key.removeprefix("recipe.") in RECIPE_FIELDS and key.removeprefix("recipe.") != "seed":
            recipe_items[key.removeprefix("recipe.")] = text
        else:
            valid = [*field_names(), *(f for f in RECIPE_FIELDS if f != "seed"), "seeds"]
            raise StudyFileError(f"--set {item!r}: unknown key {key!r}; valid: {', '.join(valid)}")
    try:
        parsed = config_from_overrides(TrainConfig(), [f"{k}={v}" for k, v in recipe_items.items()])
    except ConfigError as e:  # say where the bad value came from
        raise StudyFileError(f"--set {e}") from None
    recipe = {k: getattr(parsed, k) for k in recipe_items}
    return spec, recipe, seeds


def find_study_file(name_or_file: str, studies_dir: str | Path = "studies") -> Path:
    """A study file given its path or its name (``studies/NAME.yaml``)."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.is_dir():
            raise StudyFileError(f"{p}: is a directory; give a study file (studies/NAME.yaml)")
        if not p.is_file():
            raise StudyFileError(f"{p}: no such study file")
        return p
    candidate = Path(studies_dir) / f"{name_or_file}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(f.stem for f in Path(studies_dir).glob("*.yaml"))
    raise StudyFileError(f"{name_or_file}: no such study; valid: {', '.join(known) or '(none)'}")
