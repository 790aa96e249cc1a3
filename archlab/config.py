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
    augment: bool = True  # random crop with padding (+ flip where the dataset allows it)
    crop_pad: int = 2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    compile: Literal["auto", "on", "off"] = "off"
    threads: int | None = None  # torch threads; None leaves torch's default
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
