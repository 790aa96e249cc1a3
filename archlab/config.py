"""The training recipe (TrainConfig) and the outcome of one run (RunResult)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "exp", "constant")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")
COMPILE = ("auto", "on", "off")
STATUSES = ("complete", "diverged", "failed")


class ConfigError(ValueError):
    """An invalid training setting; the message names key, value and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the architecture; frozen so it can key results."""

    dataset: str = "fashion-mnist"
    train_subset: int | None = None  # first N training images (after a seeded shuffle)
    val_size: int = 0  # images carved from train for validation (tuning); test is for final numbers
    resize: int | None = None  # resize images to N px (low-resolution study)
    epochs: float = 10  # fractional epochs allowed for quick smoke runs
    batch_size: int = 128
    eval_batch_size: int = 1024
    optimizer: Literal["sgd", "rmsprop"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    rmsprop_decay: float = 0.9  # paper: decay 0.9
    rmsprop_eps: float = 1.0  # paper: epsilon 1.0
    weight_decay: float = 5e-4
    schedule: Literal["onecycle", "cosine", "exp", "constant"] = "onecycle"
    warmup_epochs: float = 0.0
    exp_gamma: float = 0.94  # paper: x0.94 ...
    exp_every: float = 2.0  # ... every 2 epochs
    grad_clip: float | None = None  # global-norm clipping (paper: 2.0)
    label_smoothing: float = 0.0  # q'(k) = (1-eps) delta(k,y) + eps/K
    ema_decay: float | None = None  # parameter EMA for evaluation (paper: running average)
    # precise BN: before each evaluation, recompute the evaluated model's BN statistics over this
    # many training batches (train mode, cumulative average); 0 keeps the running averages
    precise_bn: int = 0
    augment: bool = True  # random crop with padding (+ flip where the dataset allows it)
    crop_pad: int = 2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    compile: Literal["auto", "on", "off"] = "off"
    # torch threads. 1 by default: these small nets gain nothing from a second thread, and when
    # the other core is busy (another worker, the OS) OpenMP's barriers made 2 threads 10-40x
    # slower here (measured: 0.26 s vs 21.7 s for the same smoke run). Scale out with --jobs.
    threads: int | None = 1
    seed: int = 0
    eval_every: int = 1  # evaluate val/test every k epochs (and always at the end)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            valid = ", ".join(f.name for f in fields(self))
            raise ConfigError(f"unknown recipe key {unknown[0]!r}; valid: {valid}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    """Outcome of one run: final metrics, per-epoch history, cost and provenance."""

    status: str  # one of STATUSES
    spec: dict[str, Any]
    config: dict[str, Any]
    model: str
    final: dict[str, float] = field(default_factory=dict)  # test_top1, test_nll, ... (top-1 in %)
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    macs: int = 0  # forward multiply-adds per image (eval, no aux head); 1 MAC = 1 multiply-add
    params: int = 0  # parameters used at inference (aux head excluded)
    wall_time_s: float = 0.0
    error: str = ""  # why a run diverged or failed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


#: Named recipes (``archlab train --preset NAME``); each is a set of TrainConfig overrides.
PRESETS: dict[str, dict[str, Any]] = {
    # About one minute on one CPU core: 16k images once, small batches for more steps. No
    # augmentation and label smoothing 0.1: on a 5k validation split (2 seeds) one pass scored
    # 88.5% without crop/flip vs 87.3% with it, 88.8% with smoothing added; lr 0.2 was worse.
    # 16k rather than 20k images keeps the whole run (load, train, test) under a minute.
    "quick": {
        "train_subset": 16000,
        "epochs": 1,
        "batch_size": 64,
        "lr": 0.1,
        "augment": False,
        "label_smoothing": 0.1,
        "eval_batch_size": 256,  # 1.16x faster than 1024 for this model on one core
    },
    # the whole training set for 12 epochs with crop/flip augmentation and label smoothing
    "full": {"epochs": 12, "batch_size": 128, "lr": 0.2, "label_smoothing": 0.1},
    # Section 8 of the paper: RMSProp(0.9, eps 1.0), lr x0.94 every 2 epochs, clip 2.0, LS 0.1, EMA
    "paper": {
        "optimizer": "rmsprop",
        "lr": 0.045,
        "schedule": "exp",
        "grad_clip": 2.0,
        "label_smoothing": 0.1,
        "ema_decay": 0.999,
        "weight_decay": 4e-5,
        "batch_size": 32,
    },
}


def preset(name: str) -> TrainConfig:
    """The TrainConfig of a named recipe."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return TrainConfig(**PRESETS[name])
