"""Registry: registration, lookup, defaults, patterns and the errors users see."""

import pytest

from archlab.arch.registry import Entry, Registry, RegistryError


@pytest.fixture
def reg() -> Registry[int]:
    r: Registry[int] = Registry("fruit", "things to eat")
    r.add("apple", 1, description="red", paper="Fig. 1")
    r.add("banana", 2, description="yellow")

    @r.register("apricot", description="orange", paper="Sec. 2")
    def _apricot() -> int:
        return 3

    return r


def test_register_get_and_entry(reg: Registry[int]) -> None:
    assert reg.get("apple") == 1
    assert reg.get("banana") == 2
    assert reg.get("apricot")() == 3  # the decorator registers the function itself
    assert reg.entry("apple") == Entry("apple", 1, "red", "Fig. 1")
    assert reg.entry("banana").paper == ""


def test_decorator_returns_the_object_unchanged() -> None:
    r: Registry = Registry("k")

    def f() -> str:
        return "x"

    assert r.register("f", description="d")(f) is f


def test_default_is_the_first_registered(reg: Registry[int]) -> None:
    assert reg.default == "apple"


def test_order_len_contains_iter(reg: Registry[int]) -> None:
    assert reg.names() == ["apple", "banana", "apricot"]
    assert len(reg) == 3
    assert "banana" in reg and "cherry" not in reg
    assert [e.name for e in reg] == ["apple", "banana", "apricot"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", ["apple", "banana", "apricot"]),
        ("a*", ["apple", "apricot"]),
        ("*an*", ["banana"]),
        ("ap?le", ["apple"]),
        ("A*", []),  # case-sensitive, like the names users type
        ("cherry", []),
    ],
)
def test_names_pattern(reg: Registry[int], pattern: str, expected: list[str]) -> None:
    assert reg.names(pattern) == expected


def test_duplicate_registration_is_an_error(reg: Registry[int]) -> None:
    with pytest.raises(ValueError, match="fruit: 'apple' is already registered"):
        reg.add("apple", 9, description="again")
    assert reg.get("apple") == 1  # the first registration survives


@pytest.mark.parametrize("method", ["get", "entry"])
def test_unknown_name_lists_valid_names(reg: Registry[int], method: str) -> None:
    with pytest.raises(RegistryError) as info:
        getattr(reg, method)("cherry")
    assert str(info.value) == "unknown fruit 'cherry'; valid: apple, banana, apricot"
    assert isinstance(info.value, KeyError)  # callers catching KeyError still work


def test_unknown_name_in_empty_registry() -> None:
    with pytest.raises(RegistryError, match=r"unknown thing 'x'; valid: \(none\)"):
        Registry("thing").get("x")


def test_repr_names_kind_and_options(reg: Registry[int]) -> None:
    assert repr(reg) == "Registry('fruit', ['apple', 'banana', 'apricot'])"
