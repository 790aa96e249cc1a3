"""ArchSpec validation, override parsing and the variant table, over every registered axis."""

import dataclasses

import pytest

from archlab.arch.spec import (
    AXES,
    CONV_NXN,
    KNOBS,
    ArchSpec,
    SpecError,
    apply_overrides,
    field_names,
    variant_table,
)


def test_default_spec_is_valid_and_uses_each_registry_default() -> None:
    spec = ArchSpec()
    for axis, reg in AXES.items():
        assert getattr(spec, axis) == reg.default, axis
    assert set(AXES) | set(KNOBS) == set(field_names())


def test_spec_is_frozen_hashable_and_diffable() -> None:
    a, b = ArchSpec(), ArchSpec(conv5x5="5x5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n = 3  # type: ignore[misc]
    assert hash(a) == hash(ArchSpec()) and a != b
    assert b.diff(a) == {"conv5x5": "5x5"}
    assert a.to_dict()["conv5x5"] == "3x3x2"


@pytest.mark.parametrize(("axis", "option"), [(a, e.name) for a, reg in AXES.items() for e in reg])
def test_every_registered_option_is_a_valid_spec(axis: str, option: str) -> None:
    valid_n = getattr(AXES[axis].get(option), "valid_n", None)
    n = min(valid_n) if valid_n else 7
    assert getattr(ArchSpec(**{axis: option, "n": n}), axis) == option


@pytest.mark.parametrize("axis", list(AXES))
def test_unknown_option_names_axis_and_valid_options(axis: str) -> None:
    with pytest.raises(SpecError) as info:
        ArchSpec(**{axis: "bogus"})
    msg = str(info.value)
    assert msg.startswith(f"{axis}='bogus' is not an option; valid: ")
    for name in AXES[axis].names():
        assert name in msg


# (field, bad value, fragments the message must contain: key and what is allowed)
INVALID_KNOBS = [
    ("n", 1, ["n=1", "odd integer >= 3"]),
    ("n", 2, ["n=2", "odd integer >= 3"]),
    ("n", 4, ["n=4", "odd integer >= 3"]),  # even kernels cannot keep the grid size
    ("n", 3.0, ["n=3.0", "odd integer"]),
    ("n", "7", ["n='7'", "must be a number"]),
    ("n", True, ["n=True", "must be a number"]),
    ("width_mult", 0.0, ["width_mult=0.0", "> 0"]),
    ("width_mult", -1.0, ["width_mult=-1.0", "> 0"]),
    ("width_mult", float("nan"), ["width_mult=nan", "> 0"]),
    ("depth_mult", 0, ["depth_mult=0", "> 0"]),
    ("reduce_ratio", 0.0, ["reduce_ratio=0.0", "> 0"]),
    ("bottleneck_ratio", -0.5, ["bottleneck_ratio=-0.5", "> 0"]),
    ("aux_weight", -0.1, ["aux_weight=-0.1", ">= 0"]),
    ("dropout", 1.0, ["dropout=1.0", "[0, 1)"]),
    ("dropout", -0.1, ["dropout=-0.1", "[0, 1)"]),
    ("dropout", None, ["dropout=None", "must be a number"]),
]


@pytest.mark.parametrize(("key", "value", "fragments"), INVALID_KNOBS)
def test_invalid_knob_names_key_and_allowed_range(
    key: str, value: object, fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        ArchSpec(**{key: value})
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "option", [e.name for e in CONV_NXN if getattr(e.obj, "valid_n", None) is not None]
)
def test_restricted_kernel_sizes_are_enforced(option: str) -> None:
    valid_n = CONV_NXN.get(option).valid_n
    bad = next(n for n in (3, 5, 7, 9) if n not in valid_n)
    with pytest.raises(SpecError) as info:
        ArchSpec(conv_nxn=option, n=bad)
    msg = str(info.value)
    assert f"conv_nxn='{option}'" in msg and str(sorted(valid_n)) in msg and f"n={bad}" in msg


def test_replace_validates_and_rejects_unknown_keys() -> None:
    assert ArchSpec().replace(n=3).n == 3
    with pytest.raises(SpecError, match="width_mult=0"):
        ArchSpec().replace(width_mult=0)
    with pytest.raises(SpecError, match="unknown spec key 'colour'; valid: conv5x5, "):
        ArchSpec().replace(colour="red")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["n=5"], {"n": 5}),
        (["conv5x5=5x5"], {"conv5x5": "5x5"}),
        ([" width_mult = 0.5 "], {"width_mult": 0.5}),
        (["depth_mult=2"], {"depth_mult": 2.0}),
        (["reduce_ratio=none"], {"reduce_ratio": None}),
        (["reduce_ratio=None"], {"reduce_ratio": None}),
        (["reduce_ratio=0.25"], {"reduce_ratio": 0.25}),
        (["bottleneck_ratio=1e-1"], {"bottleneck_ratio": 0.1}),
        (["aux_weight=0"], {"aux_weight": 0.0}),
        # the spec is validated once, after every override: order does not matter
        (["conv_nxn=2x2x2", "n=3"], {"conv_nxn": "2x2x2", "n": 3}),
        ({"conv_nxn": "2x2x2", "n": 3}, {"conv_nxn": "2x2x2", "n": 3}),
        ({"stem": "7x7", "dropout": 0.5}, {"stem": "7x7", "dropout": 0.5}),
    ],
)
def test_apply_overrides_parses_types(overrides: list[str] | dict, expected: dict) -> None:
    spec = apply_overrides(ArchSpec(), overrides)
    assert set(spec.diff(ArchSpec())) <= set(expected)  # nothing else changed
    for key, value in expected.items():
        got = getattr(spec, key)
        assert got == value and type(got) is type(value), key


def test_apply_overrides_returns_int_n_and_float_knobs() -> None:
    spec = apply_overrides(ArchSpec(), ["n=3", "width_mult=1"])
    assert isinstance(spec.n, int) and isinstance(spec.width_mult, float)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["n"], "override 'n' must look like key=value"),
        (["=3"], "override '=3' must look like key=value"),
        (["n=abc"], "n='abc' must be an odd integer"),
        (["n=3.5"], "n='3.5' must be an odd integer"),
        (["n=4"], "n=4 must be an odd integer >= 3"),
        (["width_mult=wide"], "width_mult='wide' must be a number"),
        (["colour=red"], "unknown spec key 'colour'; valid: conv5x5"),
        (["conv5x5=7x7"], "conv5x5='7x7' is not an option; valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1"),
        (["conv_nxn=2x2x2"], "conv_nxn='2x2x2' needs n in [3], got n=7"),
        ({"n": "3"}, "n='3' must be a number"),
        ({"colour": "red"}, "unknown spec key 'colour'"),
    ],
)
def test_bad_overrides_raise_spec_error(overrides: list[str] | dict, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        apply_overrides(ArchSpec(), overrides)
    assert fragment in str(info.value)


def test_variant_table_covers_every_option_with_description_and_paper() -> None:
    rows = variant_table()
    assert [(r["axis"], r["option"]) for r in rows] == [
        (a, e.name) for a, reg in AXES.items() for e in reg
    ]
    for r in rows:
        assert r["description"].strip() and r["paper"].strip(), r
        assert r["default"] == ("yes" if r["option"] == AXES[r["axis"]].default else "")
    for axis in AXES:
        assert sum(r["default"] == "yes" for r in rows if r["axis"] == axis) == 1
