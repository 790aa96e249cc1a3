"""Reading a study file (``studies/*.yaml``): find it, load it, validate every key into a StudyDef.

A study file is data: ``yaml.safe_load`` only, unknown keys are errors, and the first problem is
reported as one line ``FILE: key.path: problem; valid: ...``. ``studies/README.md`` documents
the schema (schema.py holds its keys and types). Loading also resolves every scale
(plan.check_study), so a bad combination fails at load time rather than mid-study.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from archlab.analysis.anytime import METHODS
from archlab.analysis.claims import CLAIMS
from archlab.arch.spec import AXES, KNOBS, field_names
from archlab.study.errors import StudyFileError
from archlab.study.plan import check_study
from archlab.study.schema import (
    ANALYSIS_KEYS,
    CURVES,
    GROUP_KEYS,
    GROUP_RE,
    ISO_KEYS,
    KINDS,
    MAX_GRID_VALUES,
    NAME_RE,
    SCALE_EXTRA_KEYS,
    SEARCH_KEYS,
    SEARCH_OBJECTIVES,
    TOP_KEYS,
    VARIANT_MODES,
    Group,
    IsoMacs,
    SearchSpace,
    StudyDef,
    Variant,
)
from archlab.study.values import (
    MAX_SEEDS,
    RECIPE_KEYS,
    SPEC_HINTS,
    as_mapping,
    as_seeds,
    as_string,
    check_config,
    fail,
    recipe_overrides,
    recipe_value,
    reject_unknown,
    spec_overrides,
    spec_value,
)
from archlab.train.config import PRESETS, TrainConfig

__all__ = ["find_study_file", "load_study"]


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
    data = as_mapping(where, "(top level)", data if data is not None else {})
    reject_unknown(where, "", data, TOP_KEYS)
    study = _parse(where, path, data)
    check_study(study)
    return study


# --- the top level -------------------------------------------------------------------------------


def _parse(where: str, path: Path, data: dict[str, Any]) -> StudyDef:
    name, kind, model, claims = _header(where, path, data)
    base = spec_overrides(where, "base", data.get("base", {}))
    recipe = recipe_overrides(where, "recipe", data.get("recipe", {}))
    check_config(where, "recipe", TrainConfig().replace(**recipe))  # scales may hide it
    seeds = as_seeds(where, "seeds", data.get("seeds", 1))
    groups = _groups(where, data, kind)
    iso = _iso(where, data["iso_macs"]) if "iso_macs" in data else None
    if iso:
        for g in groups:
            for i, v in enumerate(g.variants):
                if "width_mult" in v.spec:
                    fail(where, g.variant_path(i), "iso_macs solves width_mult; do not set it")
    search = _search(where, data["search"]) if "search" in data else None
    if kind == "search" and search is None:
        fail(where, "search", "missing; a search study needs search: {trials, axes, knobs}")
    if kind != "search" and search is not None:
        fail(where, "search", f"only for kind: search (this study is kind: {kind})")
    scales = _scales(where, data, kind)
    analysis = _analysis(where, data["analysis"], kind) if "analysis" in data else {}
    return StudyDef(
        path=path,
        name=name,
        title=as_string(where, "title", data.get("title", name)),
        description=as_string(where, "description", data.get("description", "")).strip(),
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
        analysis=analysis,
    )


def _header(where: str, path: Path, data: dict[str, Any]) -> tuple[str, str, str, list[str]]:
    """The study's name (its file name), kind, model and claim ids."""
    from archlab.arch.models import MODELS

    if "name" not in data:
        fail(where, "name", "missing; every study needs a name (the file name without .yaml)")
    name = as_string(where, "name", data["name"], empty=False)
    if not NAME_RE.match(name):
        fail(where, "name", f"{name!r} must be lower-case letters, digits, - and _")
    if name != path.stem:
        fail(where, "name", f"{name!r} must equal the file name {path.stem!r}")
    kind = data.get("kind", "compare")
    if kind not in KINDS:
        fail(where, "kind", f"{kind!r} is not a study kind", KINDS)
    model = data.get("model", "inception_mini")
    if model not in MODELS:
        fail(where, "model", f"{model!r} is not a model", MODELS.names())
    claims = data.get("claims", [])
    if not isinstance(claims, list):
        fail(where, "claims", "expected a list of claim ids")
    for i, c in enumerate(claims):
        if c not in CLAIMS:
            fail(where, f"claims[{i}]", f"{c!r} is not a claim id", CLAIMS)
    return name, kind, model, claims


# --- variants and groups -------------------------------------------------------------------------


def _variant_entry(where: str, path: str, data: Any) -> Variant:
    """A variant mapping: spec keys, ``recipe.KEY`` keys or a ``recipe:`` mapping, ``name``."""
    data = as_mapping(where, path, data)
    spec: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    name = vs = ""
    valid = [*field_names(), "recipe", "recipe.KEY", "name", "vs"]
    for k, v in data.items():
        p = f"{path}.{k}"
        if k == "name":
            name = as_string(where, p, v, empty=False)
        elif k == "vs":
            vs = as_string(where, p, v, empty=False)
        elif k == "recipe":
            for rk, rv in recipe_overrides(where, p, v).items():
                recipe[rk] = rv
        elif k.startswith("recipe."):
            rk = k.removeprefix("recipe.")
            if rk not in RECIPE_KEYS:
                fail(where, p, "unknown recipe key", RECIPE_KEYS)
            recipe[rk] = recipe_value(where, p, rk, v)
        elif k in SPEC_HINTS:
            spec[k] = spec_value(where, p, k, v)
        else:
            fail(where, p, "unknown key", valid)
    if not spec and not recipe:
        fail(where, path, "empty variant: set at least one axis, knob or recipe key")
    return Variant(spec, recipe, name, vs)


def _grid(where: str, path: str, data: Any) -> list[Variant]:
    data = as_mapping(where, path, data)
    if not data:
        fail(where, path, "empty grid: give at least one key with a list of values")
    axes: list[tuple[str, list[Any]]] = []
    for k, values in data.items():
        p = f"{path}.{k}"
        if not isinstance(values, list) or not values:
            fail(where, p, "expected a non-empty list of values")
        checked = [_variant_entry(where, f"{p}[{i}]", {k: v}) for i, v in enumerate(values)]
        if len({json.dumps([c.spec, c.recipe], sort_keys=True) for c in checked}) != len(checked):
            fail(where, p, f"duplicate values in {values}")
        axes.append((k, checked))
    points = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        spec = {k: v for c in combo for k, v in c.spec.items()}
        recipe = {k: v for c in combo for k, v in c.recipe.items()}
        points.append(Variant(spec, recipe))
    return points


def _variants(where: str, path: str, data: Any) -> tuple[list[Variant], bool]:
    data = as_mapping(where, path, data)
    reject_unknown(where, path, data, VARIANT_MODES)
    if len(data) != 1:
        fail(where, path, "give exactly one of one_factor or grid", VARIANT_MODES)
    mode, value = next(iter(data.items()))
    if mode == "grid":
        return _grid(where, f"{path}.grid", value), True
    if not isinstance(value, list) or not value:
        fail(where, f"{path}.one_factor", "expected a non-empty list of variant mappings")
    return [_variant_entry(where, f"{path}.one_factor[{i}]", v) for i, v in enumerate(value)], False


def _groups(where: str, data: dict[str, Any], kind: str) -> list[Group]:
    if kind == "search":
        for k in ("variants", "groups"):
            if k in data:
                fail(where, k, "a search study samples its variants; use search: instead")
        return []
    groups = []
    if "variants" in data:
        variants, grid = _variants(where, "variants", data["variants"])
        groups.append(Group("", "", {}, tuple(variants), grid))
    for gname, g in as_mapping(where, "groups", data.get("groups", {})).items():
        p = f"groups.{gname}"
        if not GROUP_RE.match(gname):
            fail(where, p, "group names are letters, digits, ., - and _")
        g = as_mapping(where, p, g)
        reject_unknown(where, p, g, GROUP_KEYS)
        if "variants" not in g:
            fail(where, f"{p}.variants", "missing; a group needs its variants")
        variants, grid = _variants(where, f"{p}.variants", g["variants"])
        base = spec_overrides(where, f"{p}.base", g.get("base", {}))
        desc = as_string(where, f"{p}.description", g.get("description", ""))
        groups.append(Group(gname, desc, base, tuple(variants), grid))
    if not groups:
        fail(where, "variants", "missing; a comparison needs variants (or groups)")
    return groups


# --- iso_macs, search, scales --------------------------------------------------------------------


def _analysis(where: str, data: Any, kind: str) -> dict[str, Any]:
    """A principle analysis's options: which curve and which threshold, chosen in advance."""
    if kind not in ANALYSIS_KEYS:
        fail(where, "analysis", f"only for kind: {', '.join(ANALYSIS_KEYS)} (this is {kind})")
    data = as_mapping(where, "analysis", data)
    reject_unknown(where, "analysis", data, ANALYSIS_KEYS[kind])
    out = dict(data)
    if "curve" in out and out["curve"] not in CURVES:
        fail(where, "analysis.curve", f"{out['curve']!r} is not a curve", CURVES)
    if "threshold" in out:
        t = out["threshold"]
        if not isinstance(t, int | float) or isinstance(t, bool) or not 0 < t < 100:
            fail(where, "analysis.threshold", f"{t!r} is not a top-1 in (0, 100) %")
        out["threshold"] = float(t)
    if "tolerance" in out:
        out["tolerance"] = _tolerance(where, "analysis.tolerance", out["tolerance"])
    return out


def _tolerance(where: str, path: str, tol: Any) -> float:
    """A MAC tolerance: a number in (0, 0.5]."""
    if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 < tol <= 0.5:
        fail(where, path, f"{tol!r} is not a number in (0, 0.5]")
    return float(tol)


def _iso(where: str, data: Any) -> IsoMacs:
    data = as_mapping(where, "iso_macs", data)
    reject_unknown(where, "iso_macs", data, ISO_KEYS)
    budget = data.get("budget", "baseline")
    if budget != "baseline" and (
        not isinstance(budget, int) or isinstance(budget, bool) or budget < 1
    ):
        fail(where, "iso_macs.budget", f"{budget!r} is not 'baseline' or a positive MAC count")
    return IsoMacs(budget, _tolerance(where, "iso_macs.tolerance", data.get("tolerance", 0.02)))


def _search(where: str, data: Any) -> SearchSpace:
    data = as_mapping(where, "search", data)
    reject_unknown(where, "search", data, SEARCH_KEYS)
    trials = data.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        fail(where, "search.trials", f"{trials!r} is not an integer >= 1")
    axes = _search_axes(where, data.get("axes", list(AXES)))
    knobs = _search_knobs(where, data.get("knobs", {}))
    if not axes and not knobs:
        fail(where, "search", "nothing to search: give axes or knobs")
    population = data.get("population")
    if population is not None and (
        not isinstance(population, int) or isinstance(population, bool) or population < 2
    ):
        fail(where, "search.population", f"{population!r} is not an integer >= 2")
    objective = data.get("objective", "val_top1")
    if objective not in SEARCH_OBJECTIVES:
        fail(where, "search.objective", f"{objective!r} is not an objective", SEARCH_OBJECTIVES)
    return SearchSpace(trials, axes, knobs, population, objective)


def _search_axes(where: str, axes_in: Any) -> dict[str, tuple[str, ...]]:
    """``search.axes``: a list of axes (all their options) or a mapping axis -> options."""
    axes: dict[str, tuple[str, ...]] = {}
    if isinstance(axes_in, list):
        axes_in = {a: None for a in axes_in}
    for a, options in as_mapping(where, "search.axes", axes_in).items():
        if a not in AXES:
            fail(where, f"search.axes.{a}", "unknown axis", AXES)
        options = AXES[a].names() if options is None else options
        if not isinstance(options, list) or len(options) < 1:
            fail(where, f"search.axes.{a}", "expected a non-empty list of options")
        for i, o in enumerate(options):
            spec_value(where, f"search.axes.{a}[{i}]", a, o)
        axes[a] = tuple(options)
    return axes


def _search_knobs(where: str, knobs_in: Any) -> dict[str, tuple[float, float]]:
    """``search.knobs``: knob -> [low, high] within the knob's valid range."""
    knobs: dict[str, tuple[float, float]] = {}
    for k, rng in as_mapping(where, "search.knobs", knobs_in).items():
        p = f"search.knobs.{k}"
        if k not in KNOBS:
            fail(where, p, "unknown knob", KNOBS)
        if (
            not isinstance(rng, list)
            or len(rng) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in rng)
            or not rng[0] < rng[1]
        ):
            fail(where, p, f"{rng!r} is not a range [low, high] with low < high")
        if k == "n" and not all(isinstance(x, int) and x % 2 for x in rng):
            fail(where, p, f"{rng!r}: n takes odd integer bounds (it is searched in steps of 2)")
        _, low, inclusive = KNOBS[k]
        if rng[0] < low or (rng[0] == low and not inclusive):
            fail(where, p, f"low bound {rng[0]} is out of range: {KNOBS[k][0]}")
        knobs[k] = (rng[0], rng[1])
    return knobs


def _tune_grid(where: str, path: str, data: Any) -> dict[str, list[Any]]:
    """``{recipe key: [values]}``: every variant is trained once per grid point on validation."""
    grid = {}
    for k, values in as_mapping(where, path, data).items():
        p = f"{path}.{k}"
        if k not in RECIPE_KEYS:
            fail(where, p, "not a recipe key", RECIPE_KEYS)
        if not isinstance(values, list) or not 2 <= len(values) <= MAX_GRID_VALUES:
            fail(where, p, f"{values!r} is not a list of 2 to {MAX_GRID_VALUES} values")
        checked = [recipe_value(where, f"{p}[{i}]", k, v) for i, v in enumerate(values)]
        for i, v in enumerate(checked):  # the value's range, as a recipe is checked
            check_config(where, f"{p}[{i}]", TrainConfig().replace(**{k: v}))
        if len(set(checked)) != len(checked):
            fail(where, p, f"{values!r} lists a value twice")
        grid[k] = checked
    if not grid:
        fail(where, path, "names no recipe key")
    return grid


def _scales(where: str, data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    scales = {}
    for s, v in as_mapping(where, "scales", data.get("scales", {})).items():
        if not NAME_RE.match(s):
            fail(where, f"scales.{s}", "scale names are lower-case letters, digits, - and _")
        scales[s] = _scale(where, f"scales.{s}", v if v is not None else {}, kind)
    return scales


def _scale(where: str, path: str, data: Any, kind: str) -> dict[str, Any]:
    data = as_mapping(where, path, data)
    valid = [*SCALE_EXTRA_KEYS, *RECIPE_KEYS]
    out: dict[str, Any] = {}
    for k, v in data.items():
        p = f"{path}.{k}"
        if k == "seeds":
            out[k] = list(as_seeds(where, p, v))
        elif k == "base":
            out[k] = spec_overrides(where, p, v)
        elif k == "iso_tolerance":
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 0.5:
                fail(where, p, f"{v!r} is not a number in (0, 0.5]")
            out[k] = float(v)
        elif k == "preset":  # the scale's recipe starts from this named training preset
            if v not in PRESETS:
                fail(where, p, f"{v!r} is not a preset; valid: {', '.join(PRESETS)}")
            out[k] = v
        elif k == "max_seeds":  # --until-decided stops adding seeds at this many
            if kind == "search":
                fail(where, p, "max_seeds is for comparison studies (--until-decided)")
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_SEEDS:
                fail(where, p, f"{v!r} is not an integer in [1, {MAX_SEEDS:,}]")
            out[k] = v
        elif k == "sequential":  # --until-decided: planned looks or anytime-valid verdicts
            if kind == "search":
                fail(where, p, "sequential is for comparison studies (--until-decided)")
            if v not in METHODS:
                fail(where, p, f"{v!r} is not a method", METHODS)
            out[k] = v
        elif k == "tune_grid":  # recipe values tried per variant on validation; best is used
            if kind == "search":
                fail(where, p, "tune_grid is for comparison studies")
            out[k] = _tune_grid(where, p, v)
        elif k == "trials":
            if kind != "search":
                fail(where, p, "trials is for search studies (kind: search)")
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                fail(where, p, f"{v!r} is not an integer >= 1")
            out[k] = v
        elif k in RECIPE_KEYS:
            out[k] = recipe_value(where, p, k, v)
        else:
            fail(where, p, "unknown key", valid)
    return out
