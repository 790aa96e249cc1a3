"""Study files: validation (first problem, one line), expansion into cells, content keys."""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from archlab.analysis.claims import get_claim
from archlab.arch.cost import complexity
from archlab.arch.spec import AXES, ArchSpec
from archlab.study.errors import StudyFileError
from archlab.study.plan import parse_set, plan_cells, run_key, variant_label
from archlab.study.schema import SMOKE
from archlab.study.studyfile import find_study_file, load_study
from archlab.train.config import TrainConfig

MINIMAL = """
name: s
variants:
  one_factor:
    - {conv5x5: 5x5}
scales:
  quick: {epochs: 2, seeds: 2}
"""


def write(tmp_path: Path, text: str, name: str = "s") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


# --- validation --------------------------------------------------------------------------------

#: a valid study up to a quick scale's tune_grid mapping
GRID = "name: s\nvariants:\n  one_factor: [{stem: 7x7}]\nscales:\n  quick: {tune_grid: "
BAD = {
    "analysis for a compare study": (
        "name: s\nvariants:\n  one_factor:\n    - {conv5x5: 5x5}\nanalysis: {threshold: 80}\n",
        "analysis: only for kind: principle2, principle4 (this is compare)",
    ),
    "analysis curve": (
        "name: s\nkind: principle2\n"
        "variants:\n  one_factor:\n    - {conv5x5: 5x5}\nanalysis: {curve: val_loss}\n",
        "analysis.curve: 'val_loss' is not a curve; valid: val_top1, train_top1, test_top1",
    ),
    "analysis threshold": (
        "name: s\nkind: principle2\n"
        "variants:\n  one_factor:\n    - {conv5x5: 5x5}\nanalysis: {threshold: 180}\n",
        "analysis.threshold: 180 is not a top-1 in (0, 100) %",
    ),
    "unknown top key": ("name: s\nnmae: x\n", "nmae: unknown key; valid: name, title"),
    "unknown axis": (
        "name: s\nvariants:\n  one_factor:\n    - {conv9x9: a}\n",
        "variants.one_factor[0].conv9x9: unknown key; valid: conv5x5, conv_nxn",
    ),
    "unknown option lists valid ones": (
        "name: s\nvariants:\n  one_factor:\n    - {conv5x5: 4x4}\n",
        "variants.one_factor[0].conv5x5: '4x4' is not a conv5x5 option; "
        "valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1",
    ),
    "bad knob type": (
        "name: s\nvariants:\n  one_factor:\n    - {n: three}\n",
        "variants.one_factor[0].n: 'three' is not an integer",
    ),
    "bad recipe option": (
        "name: s\nrecipe: {optimizer: adam}\nvariants:\n  one_factor:\n    - {stem: 7x7}\n",
        "recipe.optimizer: 'adam' is not an option; valid: sgd, rmsprop",
    ),
    "negative epochs": (
        "name: s\nrecipe: {epochs: -1}\nvariants:\n  one_factor:\n    - {stem: 7x7}\n",
        "epochs=-1.0 is invalid",
    ),
    "empty grid": ("name: s\nvariants:\n  grid: {}\n", "variants.grid: empty grid"),
    "empty grid values": (
        "name: s\nvariants:\n  grid: {conv5x5: []}\n",
        "variants.grid.conv5x5: expected a non-empty list",
    ),
    "duplicate variants": (
        "name: s\nvariants:\n  one_factor:\n    - {conv5x5: 5x5}\n    - {conv5x5: 5x5}\n",
        "variants.one_factor[1]: duplicate variant: the same run as 'conv5x5=5x5'",
    ),
    "variant equal to the baseline": (
        "name: s\nvariants:\n  one_factor:\n    - {conv5x5: 3x3x2}\n",
        "variants.one_factor[0]: the same as the baseline",
    ),
    "empty variant": ("name: s\nvariants:\n  one_factor:\n    - {}\n", "empty variant"),
    "both modes": (
        "name: s\nvariants:\n  one_factor: [{stem: 7x7}]\n  grid: {stem: [7x7]}\n",
        "variants: give exactly one of one_factor or grid",
    ),
    "seeds not ints": (
        "name: s\nseeds: [0, a]\nvariants:\n  one_factor: [{stem: 7x7}]\n",
        "seeds[1]: seed 'a' is not an integer in [0, 100,000)",
    ),
    "zero seeds": (
        "name: s\nseeds: 0\nvariants:\n  one_factor: [{stem: 7x7}]\n",
        "0 seeds: allowed 1 to 100,000",
    ),
    "duplicate seeds": (
        "name: s\nseeds: [1, 1]\nvariants:\n  one_factor: [{stem: 7x7}]\n",
        "seeds: duplicate seeds",
    ),
    "bad scale key": (
        "name: s\nvariants:\n  one_factor: [{stem: 7x7}]\nscales:\n  quick: {epoch: 2}\n",
        "scales.quick.epoch: unknown key; valid: seeds, base, trials",
    ),
    "bad kind": ("name: s\nkind: sweep\n", "kind: 'sweep' is not a study kind; valid: compare"),
    "unknown claim": (
        "name: s\nclaims: [nope]\nvariants:\n  one_factor: [{stem: 7x7}]\n",
        "claims[0]: 'nope' is not a claim id; valid: conv5x5_cost",
    ),
    "name differs from file": ("name: other\n", "name: 'other' must equal the file name 's'"),
    "missing variants": ("name: s\n", "variants: missing"),
    "iso with width variant": (
        "name: s\niso_macs: {}\nvariants:\n  one_factor: [{width_mult: 2.0}]\n",
        "variants.one_factor[0]: iso_macs solves width_mult",
    ),
    "search in a comparison": (
        "name: s\nvariants:\n  one_factor: [{stem: 7x7}]\nsearch: {trials: 2}\n",
        "search: only for kind: search",
    ),
    "even n bounds": (
        "name: s\nkind: search\nsearch: {trials: 2, knobs: {n: [2, 6]}}\n",
        "search.knobs.n: [2, 6]: n takes odd integer bounds",
    ),
    "recipe key in variant": (
        "name: s\nvariants:\n  one_factor: [{recipe.epoch: 2}]\n",
        "variants.one_factor[0].recipe.epoch: unknown recipe key",
    ),
    "invalid yaml": ("name: s\nvariants: [\n", "invalid YAML"),
    "tune_grid of a non-recipe key": (
        GRID + "{speed: [1, 2]}}\n",
        "scales.quick.tune_grid.speed: not a recipe key",
    ),
    "tune_grid of one value": (
        GRID + "{lr: [0.1]}}\n",
        "scales.quick.tune_grid.lr: [0.1] is not a list of 2 to 12 values",
    ),
    "tune_grid value twice": (
        GRID + "{lr: [0.1, 0.1]}}\n",
        "scales.quick.tune_grid.lr: [0.1, 0.1] lists a value twice",
    ),
    "tune_grid bad value": (
        GRID + "{lr: [0.1, -1]}}\n",
        "scales.quick.tune_grid.lr[1]",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_invalid_study_files_fail_with_one_line(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(StudyFileError) as err:
        load_study(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_study_file_error_is_a_cli_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from archlab.cli import main

    path = write(tmp_path, "name: s\nkind: sweep\n")
    assert main(["study", "run", str(path), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kind: 'sweep' is not a study kind" in err[0]


def test_unknown_scale_lists_valid_ones(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MINIMAL))
    with pytest.raises(StudyFileError, match="no scale 'huge'; valid: quick, smoke"):
        plan_cells(study, "huge")


def test_bad_set_override_is_an_error(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MINIMAL))
    with pytest.raises(StudyFileError, match="unknown key 'epoch'"):
        plan_cells(study, "quick", ["epoch=3"])


# --- expansion ---------------------------------------------------------------------------------


def test_one_factor_cells_each_group_baseline_first(tmp_path: Path) -> None:
    text = """
name: s
variants:
  one_factor:
    - {conv5x5: 5x5}
    - {stem: 7x7, factor_act: linear}
groups:
  n3:
    base: {n: 3, conv_nxn: nxn}
    variants:
      one_factor: [{conv_nxn: 2x2x2}]
seeds: [4, 7]
scales:
  quick: {epochs: 2}
"""
    cells = plan_cells(load_study(write(tmp_path, text)), "quick")
    labels = [(c.group, c.variant, c.is_baseline) for c in cells if c.seed == 4]
    assert labels == [
        ("", "baseline", True),
        ("", "conv5x5=5x5", False),
        ("", "factor_act=linear,stem=7x7", False),
        # labels are relative to the study's base, so the group's own baseline is not "baseline"
        ("n3", "conv_nxn=nxn,n=3", True),
        ("n3", "conv_nxn=2x2x2,n=3", False),
    ]
    assert [c.seed for c in cells] == [4, 7] * 5
    assert all(c.config.epochs == 2.0 and c.config.seed == c.seed for c in cells)
    stem = next(c for c in cells if c.variant == "factor_act=linear,stem=7x7")
    assert (stem.spec.stem, stem.spec.factor_act, stem.spec.conv5x5) == ("7x7", "linear", "3x3x2")
    assert len({c.key for c in cells}) == len(cells)


def test_grid_is_a_product_and_its_base_point_is_the_baseline(tmp_path: Path) -> None:
    text = """
name: s
variants:
  grid:
    grid_reduction: [parallel, pool_conv, conv_pool]
    recipe.label_smoothing: [0.0, 0.1]
scales:
  quick: {epochs: 1}
"""
    cells = plan_cells(load_study(write(tmp_path, text)), "quick")
    assert len(cells) == 6  # 3 x 2, the (parallel, 0.0) point being the baseline
    assert [c.variant for c in cells if c.is_baseline] == ["baseline"]
    assert "grid_reduction=pool_conv,label_smoothing=0.1" in {c.variant for c in cells}


def test_recipe_sub_mapping_and_dotted_keys_are_the_same_variant(tmp_path: Path) -> None:
    dotted = MINIMAL.replace("{conv5x5: 5x5}", "{recipe.label_smoothing: 0.1}")
    nested = MINIMAL.replace("{conv5x5: 5x5}", "{recipe: {label_smoothing: 0.1}}")
    a = plan_cells(load_study(write(tmp_path / "a", dotted)), "quick")
    b = plan_cells(load_study(write(tmp_path / "b", nested)), "quick")
    assert [c.key for c in a] == [c.key for c in b]
    assert a[-1].variant == "label_smoothing=0.1" and a[-1].config.label_smoothing == 0.1


def test_smoke_scale_exists_for_every_study(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MINIMAL))
    cells = plan_cells(study, "smoke")
    assert study.scale_names() == ["quick", "smoke"]
    assert {c.config.dataset for c in cells} == {SMOKE["dataset"]}
    assert {c.seed for c in cells} == set(SMOKE["seeds"])
    assert {c.spec.width_mult for c in cells} == {SMOKE["base"]["width_mult"]}


def test_set_overrides_reach_spec_recipe_and_seeds(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MINIMAL))
    cells = plan_cells(study, "quick", ["lr=0.05", "dropout=0.3", "seeds=[5]"])
    assert {(c.config.lr, c.spec.dropout, c.seed) for c in cells} == {(0.05, 0.3, 5)}
    assert parse_set(["recipe.epochs=3", "spec.n=5"]) == ({"n": 5}, {"epochs": 3.0}, None)


def test_tuned_values_replace_a_variants_recipe(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MINIMAL))
    cells = plan_cells(study, "quick", tuned={"conv5x5=5x5": {"lr": 0.02}})
    assert {c.variant: c.config.lr for c in cells} == {"baseline": 0.1, "conv5x5=5x5": 0.02}


def test_variant_labels_are_canonical() -> None:
    assert variant_label({}) == "baseline"
    assert variant_label({"width_mult": 1.0, "conv5x5": "5x5"}) == "conv5x5=5x5,width_mult=1"
    assert variant_label({"label_smoothing": 0.10, "reduce_ratio": None}) == (
        "label_smoothing=0.1,reduce_ratio=none"
    )


def test_study_files_are_found_by_name_or_path(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert find_study_file("s", tmp_path) == path
    assert find_study_file(str(path)) == path
    with pytest.raises(StudyFileError, match="no such study; valid: s"):
        find_study_file("t", tmp_path)


# --- content keys ------------------------------------------------------------------------------


def _other(value: object, hint: object, name: str) -> object:
    """A valid value of a field different from ``value``."""
    if name in AXES:
        return next(o for o in AXES[name].names() if o != value)
    if typing.get_origin(hint) is typing.Literal:
        return next(o for o in typing.get_args(hint) if o != value)
    if isinstance(value, bool):
        return not value
    if name == "n":
        return value + 2
    if name == "stem_stride":
        return 2
    if name in (
        "dropout",
        "label_smoothing",
        "momentum",
        "rmsprop_decay",
        "exp_gamma",
        "squeeze_ratio",
    ):
        return value / 2 if value else 0.1
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return 0.5 if name in ("reduce_ratio", "ema_decay") else 3
    return f"{value}:2" if name == "dataset" else f"{value}x"


def test_run_key_is_stable_and_changes_with_every_field() -> None:
    spec, config = ArchSpec(), TrainConfig()
    key = run_key("inception_mini", spec, config, "quick")
    assert key == run_key("inception_mini", ArchSpec(), TrainConfig(), "quick")
    # a JSON round trip (how workers get their configuration from the storage) keeps the key
    again = (ArchSpec(**json.loads(json.dumps(spec.to_dict()))), TrainConfig(**config.to_dict()))
    assert run_key("inception_mini", *again, "quick") == key
    seen = {key}
    for cls, obj in ((ArchSpec, spec), (TrainConfig, config)):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            changed = obj.replace(**{f.name: _other(getattr(obj, f.name), hints[f.name], f.name)})
            k = run_key(
                "inception_mini",
                *((changed, config) if cls is ArchSpec else (spec, changed)),
                "quick",
            )
            assert k not in seen, f.name
            seen.add(k)
    assert run_key("inception_mini", spec, config, "full") not in seen
    assert run_key("inception_v3_tv", spec, config, "quick") not in seen


def test_integer_and_float_spellings_give_one_key(tmp_path: Path) -> None:
    a = plan_cells(load_study(write(tmp_path / "a", MINIMAL)), "quick")
    b = plan_cells(
        load_study(write(tmp_path / "b", MINIMAL.replace("epochs: 2", "epochs: 2.0"))), "quick"
    )
    assert [c.key for c in a] == [c.key for c in b]


def _key_without_revisions(spec: ArchSpec, config: TrainConfig) -> str:
    import hashlib

    from archlab.arch.spec import ADDED_SPEC_FIELDS
    from archlab.train.config import ADDED_FIELDS

    recipe = {k: v for k, v in config.to_dict().items() if ADDED_FIELDS.get(k, object()) != v}
    arch = {k: v for k, v in spec.to_dict().items() if ADDED_SPEC_FIELDS.get(k, object()) != v}
    doc = {"model": "inception_mini", "spec": arch, "recipe": recipe, "scale": "quick"}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_rebuilt_option_gets_new_keys_and_the_others_keep_theirs() -> None:
    # factor_act=linear was rebuilt to reach every factorized pair (revision 1): the runs stored
    # under its old build must not be taken for the new one; untouched options keep their keys
    config = TrainConfig()
    for spec, rebuilt in ((ArchSpec(), False), (ArchSpec(factor_act="linear"), True)):
        same = run_key("inception_mini", spec, config, "quick") == _key_without_revisions(
            spec, config
        )
        assert same != rebuilt


CHAIN = """
name: s
variants:
  one_factor:
    - {conv5x5: 5x5}
    - {conv5x5: 3x3x2_sqrt, vs: conv5x5=5x5}
scales:
  quick: {epochs: 2, seeds: 2}
"""


def test_vs_compares_a_variant_with_another_variant(tmp_path: Path) -> None:
    import pandas as pd

    from archlab.analysis.stats import compare_to_baseline

    cells = plan_cells(load_study(write(tmp_path, CHAIN)), "quick")
    vs = {c.variant: c.vs for c in cells}
    assert vs == {"baseline": "", "conv5x5=5x5": "", "conv5x5=3x3x2_sqrt": "conv5x5=5x5"}
    shift = {"baseline": 0.0, "conv5x5=5x5": -1.0, "conv5x5=3x3x2_sqrt": 0.5}
    runs = pd.DataFrame(
        {
            "variant": c.variant,
            "group": c.group,
            "vs": c.vs,
            "is_baseline": c.is_baseline,
            "seed": c.seed,
            "status": "complete",
            "test_top1": 90 + shift[c.variant] + 0.1 * c.seed * (1 + (c.variant == "baseline")),
        }
        for c in cells
    )
    comps = compare_to_baseline(runs, n_boot=100).set_index("variant")
    assert comps.loc["conv5x5=3x3x2_sqrt", "baseline"] == "conv5x5=5x5"
    assert comps.loc["conv5x5=3x3x2_sqrt", "mean_diff"] == pytest.approx(1.5)
    assert comps.loc["conv5x5=5x5", "baseline"] == "baseline"


@pytest.mark.parametrize("vs", ["conv5x5=7x7", "conv5x5=3x3x2_sqrt"])
def test_vs_must_name_another_variant(tmp_path: Path, vs: str) -> None:
    with pytest.raises(StudyFileError) as info:
        load_and_plan = load_study(write(tmp_path, CHAIN.replace("vs: conv5x5=5x5", f"vs: {vs}")))
        plan_cells(load_and_plan, "quick")
    assert f"variants.one_factor[1].vs: {vs!r} is not another variant of the study" in str(
        info.value
    )


def test_principle4_literal_spends_twice_the_compute_three_ways() -> None:
    """Width only, depth only and both at ~2x the default's MACs, each against both."""
    study = load_study("studies/principle4-literal.yaml")
    cells = [c for c in plan_cells(study, "quick") if c.config.seed == 0]
    size = {"input_size": 28, "in_chans": 1, "num_classes": 10}
    macs = {c.variant: complexity(study.model, c.spec, **size).macs for c in cells}
    default = complexity(study.model, ArchSpec(), **size).macs
    assert 1.9 <= macs["baseline"] / default <= 2.2  # "twice the compute"
    assert all(abs(m / macs["baseline"] - 1) <= 0.02 for m in macs.values())
    spec = {c.variant: c.spec for c in cells}
    assert spec["baseline"].depth_mult == 1.5 and spec["baseline"].width_mult > 1.1  # both
    assert spec["depth_mult=2.5"].width_mult == pytest.approx(1.0, abs=0.02)  # depth only
    assert spec["depth_mult=1"].width_mult > spec["baseline"].width_mult  # width only
    for cid, ref in (("balance_vs_depth", "2.5"), ("balance_vs_width", "1")):
        claim = get_claim(cid)
        assert (claim.axis, claim.option, claim.reference) == ("depth_mult", "1.5", ref)
