"""Regenerate the golden files in tests/data (run from the repository root).

    .venv/bin/python tests/data/make_golden.py complexity
    PYTHONPATH=. <a python with torchvision> tests/data/make_golden.py state-dict

``complexity_golden.json``: MACs (conv + linear, closed form), params and params with the aux
head of every one-axis variant of every registered model, plus knob variants of the mini.
Regenerate it only when a change is *meant* to alter counts, and say why in the commit.

``inception_v3_tv_state_dict.json``: every key of torchvision's
``inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()`` and its shape,
so the layout check runs where torchvision is not installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPLEXITY = HERE / "complexity_golden.json"
STATE_DICT = HERE / "inception_v3_tv_state_dict.json"

#: Knob settings of the mini model kept in the golden file (the axes come from the registries).
MINI_KNOBS = (
    "width_mult=0.5",
    "width_mult=1.5",
    "depth_mult=0.5",
    "depth_mult=2",
    "reduce_ratio=0.25",
    "bottleneck_ratio=0.5",
    "n=5",
)


def dumps(obj: object, indent: int = 0) -> str:
    """JSON with one leaf (a flat dict or list) per line: diffs show which entry changed."""
    flat = isinstance(obj, list) or (
        isinstance(obj, dict) and not any(isinstance(v, dict | list) for v in obj.values())
    )
    if not isinstance(obj, dict) or flat:
        return json.dumps(obj)
    pad = " " * (indent + 1)
    items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def complexity_cases() -> list[tuple[str, str, object]]:
    """(model, label, spec) of every golden complexity entry, in a stable order."""
    from archlab.arch.models import MODELS, default_spec
    from archlab.arch.spec import apply_overrides
    from archlab.report.sweep import one_axis_variants

    cases: dict[tuple[str, str], object] = {}
    for model in MODELS.names():
        for v in one_axis_variants(model):
            cases[(model, v.label)] = v.spec
    base = default_spec("inception_mini")
    for o in MINI_KNOBS:
        cases[("inception_mini", o)] = apply_overrides(base, [o])
    return [(m, label, spec) for (m, label), spec in cases.items()]


def make_complexity() -> None:
    """Write complexity_golden.json."""
    from archlab.report.sweep import count

    models: dict[str, dict[str, dict[str, int]]] = {}
    for model, label, spec in complexity_cases():
        c = count(model, spec, fvcore=False)  # type: ignore[arg-type]
        models.setdefault(model, {})[label] = {
            "macs": c.macs,
            "params": c.params,
            "params_with_aux": c.params_with_aux,
        }
    data = {"regenerate": "python tests/data/make_golden.py complexity", "models": models}
    COMPLEXITY.write_text(dumps(data) + "\n")
    print(f"wrote {COMPLEXITY} ({sum(len(v) for v in models.values())} entries)")


def make_state_dict() -> None:
    """Write inception_v3_tv_state_dict.json from torchvision's model."""
    import torchvision
    from torchvision.models import inception_v3

    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    data = {
        "source": (
            f"torchvision {torchvision.__version__.split('+')[0]} "
            "inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()"
        ),
        "regenerate": "python tests/data/make_golden.py state-dict (needs torchvision)",
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    STATE_DICT.write_text(dumps(data) + "\n")
    print(f"wrote {STATE_DICT} ({len(data['shapes'])} keys)")


if __name__ == "__main__":
    jobs = {"complexity": make_complexity, "state-dict": make_state_dict}
    if len(sys.argv) != 2 or sys.argv[1] not in jobs:
        sys.exit(f"usage: make_golden.py {{{' | '.join(jobs)}}}")
    jobs[sys.argv[1]]()
