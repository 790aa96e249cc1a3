"""Write tests/data/inception_v3_tv_forward.json: torchvision's Inception-v3 outputs, by seed.

The project's venv has no torchvision, so this runs once in a throwaway one::

    python3 -m venv /tmp/tvvenv
    /tmp/tvvenv/bin/pip install torch==2.13.0 torchvision==0.28.0   # 0.28 is the torch 2.13 pair
    /tmp/tvvenv/bin/python scripts/make_tv_golden.py

It imports nothing from archlab. The weights are not stored (27 M parameters are ~100 MB in
fp32): every tensor of the state_dict is filled by ``fill_state`` from a generator seeded by the
tensor's name, so ``tests/test_parity.py`` rebuilds the identical weights in archlab's
``inception_v3_tv`` by loading ``fill_state`` from this script (which therefore imports
only torch at module level); change it and regenerate this file. The file keeps, for a
seeded batch of two 299x299 images, the eval-mode logits and the train-mode logits and aux
logits, computed in float64 (so the test's tolerance can be tight): the first logits of each
image, each image's L2 norm and sum, and its dot product with a seeded probe vector, which sees
every class.

Regenerate only when the procedure below changes, or torchvision changes what it computes.
"""

from __future__ import annotations

import json
import math
import sys
import zlib
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "inception_v3_tv_forward.json"

SEED = 0  # fill_state's base seed
INPUT_SEED = 1  # the batch of images
PROBE_SEED = 2  # the probe vector
TRAIN_SEED = 3  # torch.manual_seed before the train-mode forward (no op draws from it now)
BATCH, SIZE = 2, 299
HEAD = 8  # logits kept in full per image


def fill_state(model: torch.nn.Module, seed: int) -> None:
    """Fill every parameter and buffer from a generator seeded by ``seed`` and its key.

    A tensor's values depend only on its name, shape and kind, not on the order of the keys.
    Conv/linear weights: He-normal (fan-in); BN weight: U(0.5, 1.5); every bias and BN shift:
    N(0, 0.1^2); BN running_mean: N(0, 0.2^2); running_var: U(0.5, 1.5), so eval-mode BN is no
    identity; num_batches_tracked: 0. Drawn in float64, then cast to the tensor's dtype.
    """
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                t.zero_()
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            shape, f64 = t.shape, torch.float64
            if name.endswith("running_var") or (t.ndim == 1 and name.endswith("weight")):
                v = 0.5 + torch.rand(shape, generator=g, dtype=f64)
            elif name.endswith("running_mean"):
                v = 0.2 * torch.randn(shape, generator=g, dtype=f64)
            elif t.ndim == 1:  # a bias (BN shift or linear bias)
                v = 0.1 * torch.randn(shape, generator=g, dtype=f64)
            else:  # conv or linear weight
                fan_in = math.prod(shape[1:])
                gain = 2.0 if t.ndim == 4 else 1.0
                v = math.sqrt(gain / fan_in) * torch.randn(shape, generator=g, dtype=f64)
            t.copy_(v)


def summarize(y: torch.Tensor, probe: torch.Tensor) -> dict[str, list]:
    """The compact record of a (batch, classes) float64 output."""
    return {
        "head": y[:, :HEAD].tolist(),
        "l2": y.norm(dim=1).tolist(),
        "sum": y.sum(dim=1).tolist(),
        "probe": (y @ probe).tolist(),
    }


def import_torchvision():  # noqa: ANN201
    """torchvision.models; the CUDA build of torchvision on a CPU torch cannot load its C ops.

    Inception-v3 needs none of them (they are nms, roi_align, ...), but torchvision registers fake
    kernels for them at import, which fails without the ops: skip only that registration.
    """
    try:
        import torchvision.models as tvm
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        for mod in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[mod]
        torch.library.register_fake = lambda *a, **k: lambda f: f  # type: ignore[assignment]
        import torchvision.models as tvm
    import torchvision

    return torchvision, tvm


def main() -> None:
    torchvision, tvm = import_torchvision()
    torch.set_num_threads(1)
    model = tvm.inception_v3(
        weights=None, aux_logits=True, init_weights=True, transform_input=False
    ).double()
    fill_state(model, SEED)
    state = model.state_dict()  # summarized now: the train-mode forward updates running stats
    state_summary = {
        "keys": len(state),
        "numel": sum(v.numel() for v in state.values()),
        "sum": float(sum(v.double().sum() for v in state.values())),
    }
    x = torch.randn(
        BATCH,
        3,
        SIZE,
        SIZE,
        generator=torch.Generator().manual_seed(INPUT_SEED),
        dtype=torch.float64,
    )
    classes = model.fc.out_features
    probe = torch.randn(
        classes, generator=torch.Generator().manual_seed(PROBE_SEED), dtype=torch.float64
    )
    with torch.no_grad():
        logits = model.eval()(x)
        # train mode: batch statistics in every BN and the aux head runs; dropout stays off so
        # the outputs depend on no random draw (dropout's p is recorded and checked apart)
        model.train()
        model.dropout.eval()
        torch.manual_seed(TRAIN_SEED)
        train_logits, train_aux = model(x)
    data = {
        "source": (
            f"torchvision {torchvision.__version__.split('+')[0]}, torch "
            f"{torch.__version__.split('+')[0]}: inception_v3(weights=None, aux_logits=True, "
            "init_weights=True, transform_input=False), float64"
        ),
        "regenerate": "python scripts/make_tv_golden.py (in a venv with torchvision)",
        "fill": "fill_state(model, seed) in scripts/make_tv_golden.py = tests/test_parity.py",
        "seed": SEED,
        "input": {
            "shape": [BATCH, 3, SIZE, SIZE],
            "how": "torch.randn(shape, generator=torch.Generator().manual_seed(input_seed), "
            "dtype=torch.float64)",
            "input_seed": INPUT_SEED,
        },
        "probe": {"how": "torch.randn(classes, generator=seed probe_seed)", "seed": PROBE_SEED},
        "train_seed": TRAIN_SEED,
        "num_classes": classes,
        "dropout": model.dropout.p,
        "state": state_summary,
        "eval_logits": summarize(logits, probe),
        "train_logits": summarize(train_logits, probe),
        "train_aux_logits": summarize(train_aux, probe),
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); eval logits std {logits.std():.3f}")


if __name__ == "__main__":
    main()
