"""One training run: an ArchSpec and a TrainConfig in, a RunResult out.

The whole dataset lives in memory as uint8 tensors; each step gathers an index batch, augments
it (batched crop + flip), normalizes it and runs forward/backward in channels_last memory format
under bf16 autocast where the hardware makes that fast (see DESIGN.md section 7).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab import metrics
from archlab.config import (
    COMPILE,
    DEVICES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    ConfigError,
    RunResult,
    TrainConfig,
)
from archlab.data import Dataset, augment, batches, load_dataset, normalize
from archlab.variants import ArchSpec

# compile="auto": on this project's 2-core AVX512-BF16 CPU (torch 2.13) compiled training steps
# of the mini model measured 0.8-0.95x eager speed (bf16 and fp32, channels_last) after 150 s of
# compiling, so "auto" never compiles on CPU. On CUDA, where compiling fuses the BN/ReLU/pool
# work that dominates these nets' steps, it times COMPILE_PROBE_STEPS eager steps and compiles
# when the projected saving at an assumed 1.5x speedup (DESIGN.md s. 7) exceeds the compile cost.
COMPILE_COST_S = 70.0
COMPILE_SPEEDUP = 1.5
COMPILE_PROBE_STEPS = 20  # eager steps timed before "auto" decides
# A host sync per step is free on CPU (ops run synchronously) but stalls a GPU's queue.
CHECK_EVERY_CPU = 1
CHECK_EVERY_CUDA = 25
STATUS_EVERY = 25  # steps between progress-bar postfix updates (each one redraws the bar)
_PRECISE_BN_SALT = 0x5EED_B4
_DATA_SEED_SALT = 0x5EED  # data order/augmentation stream differs from the init stream

Metrics = dict[str, Any]


# --- config validation --------------------------------------------------------------------------


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# key: (is the value valid, allowed values in words); None passes where the field allows it
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train_subset": (lambda v: v is None or _is_int(v) and v >= 1, "None or an integer >= 1"),
    "val_size": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "resize": (lambda v: v is None or _is_int(v) and v >= 1, "None or an integer >= 1"),
    "epochs": (lambda v: _finite(v) and v > 0, "a number > 0"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "eval_batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "lr": (lambda v: _finite(v) and v > 0, "a number > 0"),
    "momentum": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "nesterov": (lambda v: isinstance(v, bool), "true or false"),
    "rmsprop_decay": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "rmsprop_eps": (lambda v: _finite(v) and v > 0, "a number > 0"),
    "weight_decay": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "warmup_epochs": (lambda v: _finite(v) and v >= 0, "a number >= 0"),
    "exp_gamma": (lambda v: _finite(v) and 0 < v <= 1, "a number in (0, 1]"),
    "exp_every": (lambda v: _finite(v) and v > 0, "a number > 0"),
    "grad_clip": (lambda v: v is None or _finite(v) and v > 0, "None or a number > 0"),
    "label_smoothing": (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "ema_decay": (lambda v: v is None or _finite(v) and 0 < v < 1, "None or a number in (0, 1)"),
    "precise_bn": (lambda v: _is_int(v) and 0 <= v <= 10_000, "an integer in [0, 10000]"),
    "augment": (lambda v: isinstance(v, bool), "true or false"),
    "crop_pad": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "channels_last": (lambda v: isinstance(v, bool), "true or false"),
    "threads": (lambda v: v is None or _is_int(v) and v >= 1, "None or an integer >= 1"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "eval_every": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "device": DEVICES,
    "precision": PRECISIONS,
    "compile": COMPILE,
}


def validate_config(config: TrainConfig) -> None:
    """Raise ConfigError naming the first invalid setting, its value and what is allowed."""
    if not isinstance(config.dataset, str) or not config.dataset:
        raise ConfigError(f"dataset={config.dataset!r} is invalid: allowed: a dataset name")
    for key, allowed in _CHOICES.items():
        value = getattr(config, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is invalid: allowed: {', '.join(allowed)}")
    for key, (ok, allowed) in _RULES.items():
        value = getattr(config, key)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} is invalid: allowed: {allowed}")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device='cuda' is invalid: no CUDA device is available; allowed: auto, cpu"
        )


def config_from_overrides(base: TrainConfig, items: list[str]) -> TrainConfig:
    """Apply ``key=value`` strings to a config, converting each value by the field's type."""
    hints = typing.get_type_hints(TrainConfig)
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ConfigError(f"recipe override {item!r} must look like key=value")
        if key not in hints:
            valid = ", ".join(f.name for f in fields(TrainConfig))
            raise ConfigError(f"unknown recipe key {key!r}; valid: {valid}")
        changes[key] = _parse_field(key, text, hints[key])
    return base.replace(**changes)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number"}


def _parse_field(key: str, text: str, hint: Any) -> Any:
    """Convert ``text`` to the type ``hint`` (bool, int, float, str, Literal, X | None)."""
    args = typing.get_args(hint)
    if type(None) in args:
        if text.lower() in ("none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r} is invalid: allowed: {_TYPE_WORDS[hint]}") from None
    return text  # str and Literal choices; validate_config checks the choices


# --- loss, optimizer, schedule -------------------------------------------------------------------


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean cross-entropy against the paper's smoothed targets q'(k) = (1-eps) d(k,y) + eps/K."""
    logp = logits.float().log_softmax(dim=-1)
    k = logits.shape[-1]
    q = torch.full_like(logp, eps / k).scatter_(-1, target[:, None], 1 - eps + eps / k)
    return -(q * logp).sum(dim=-1).mean()


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1 (the paper's trainer) computes it, with momentum.

    torch.optim.RMSprop differs in three ways that matter at the paper's eps = 1.0: it adds eps
    outside the square root (g / (sqrt(ms) + eps); TF: g / sqrt(ms + eps)), starts the mean
    square at 0 (TF: 1) and applies lr after the momentum buffer (TF: inside it, so a schedule's
    lr change acts on new gradients only). Update: ms = a ms + (1-a) g^2;
    mom = m mom + lr g / sqrt(ms + eps); p -= mom.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        *,
        alpha: float = 0.9,
        eps: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "momentum": momentum,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            for p in params:
                if not self.state[p]:
                    self.state[p]["ms"] = torch.ones_like(p)
                    self.state[p]["mom"] = torch.zeros_like(p)
            ms = [self.state[p]["ms"] for p in params]
            mom = [self.state[p]["mom"] for p in params]
            torch._foreach_mul_(ms, group["alpha"])
            torch._foreach_addcmul_(ms, grads, grads, value=1 - group["alpha"])
            denom = torch._foreach_add(ms, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_mul_(mom, group["momentum"])
            torch._foreach_addcdiv_(mom, grads, denom, value=group["lr"])
            torch._foreach_sub_(params, mom)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameters with weight decay (conv/linear weights) and without (BN scale/shift, biases)."""
    # BN makes the net invariant to the scale of the preceding conv's weights, so decaying BN's
    # gamma/beta or a bias constrains nothing useful and only shifts the learned affine map; the
    # paper's released trainer likewise regularized conv and fc weights only.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over ``model``'s parameters."""
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "rmsprop":
        return RMSpropTF(
            groups,
            config.lr,
            alpha=config.rmsprop_decay,
            eps=config.rmsprop_eps,
            momentum=config.momentum,
        )
    return torch.optim.SGD(
        groups,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,  # torch refuses nesterov without momentum
        foreach=True,
    )


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _onecycle(max_lr: float, step: int, total: int) -> float:
    """torch.optim.lr_scheduler.OneCycleLR's defaults: 30% cosine up from lr/25, then down."""
    initial = max_lr / 25
    peak = 0.3 * total - 1
    if step <= peak:
        return _cos_anneal(initial, max_lr, step / peak)
    return _cos_anneal(max_lr, initial / 1e4, (step - peak) / (total - 1 - peak))


def lr_at(config: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): the schedule times a linear warmup."""
    epoch = step / steps_per_epoch
    if config.schedule == "exp":  # staircase: x gamma once per exp_every epochs
        lr = config.lr * config.exp_gamma ** math.floor(epoch / config.exp_every)
    elif config.schedule == "cosine":
        lr = _cos_anneal(config.lr, 0.0, step / total_steps)
    elif config.schedule == "onecycle":
        lr = _onecycle(config.lr, step, total_steps)
    else:
        lr = config.lr
    warmup_steps = config.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        lr *= (step + 1) / warmup_steps
    return lr


# --- EMA ------------------------------------------------------------------------------------------


class Ema:
    """Exponential moving average of a model's parameters; buffers (BN statistics) are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._src = list(model.parameters())
        self._dst = list(self.model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current parameters."""
        self.updates += 1
        # TF's ExponentialMovingAverage(decay, num_updates), as the paper's trainer used it: the
        # decay ramps up, so on short runs the average forgets the random initialization.
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, 1 - decay)

    @torch.no_grad()
    def sync_buffers(self, model: nn.Module) -> None:
        """Copy the BN running statistics from ``model``."""
        # they already are moving averages over recent batches; re-estimating them under the
        # averaged weights (swa_utils.update_bn) would be more exact but costs a pass over the data
        for dst, src in zip(self.model.buffers(), model.buffers(), strict=True):
            dst.copy_(src)


# --- device and precision -----------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes."""

    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype; None = fp32
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, x: torch.Tensor, data: Dataset) -> torch.Tensor:
        """uint8 images on the device -> normalized float input in the model's memory format."""
        x = normalize(x, data.mean, data.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast pays."""
    # plain AVX-512 only emulates bf16 dot products in oneDNN, which is no faster than fp32
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if all(hasattr(cpu, c) for c in checks):
        return any(getattr(cpu, c)() for c in checks)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_runtime(config: TrainConfig) -> Runtime:
    """Device, autocast dtype and memory format the config asks for on this machine."""
    use_cuda = config.device == "cuda" or config.device == "auto" and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    if config.precision == "fp32":
        amp = None
    elif config.precision == "bf16":
        amp = torch.bfloat16
    elif use_cuda:
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    else:
        amp = torch.bfloat16 if cpu_has_fast_bf16() else None
    return Runtime(device, amp, config.channels_last)


def compile_pays(eager_step_s: float, remaining_steps: int) -> bool:
    """Whether compiling (COMPILE_COST_S) repays itself over the remaining eager steps."""
    saved = eager_step_s * remaining_steps * (1 - 1 / COMPILE_SPEEDUP)
    return saved > COMPILE_COST_S


@contextlib.contextmanager
def _isolated_torch_state(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG for the run and restore it and the thread count afterwards."""
    threads = torch.get_num_threads()
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    else:
        cuda = []
    try:
        with torch.random.fork_rng(devices=cuda):
            # init and dropout draw from the global RNG; fork_rng gives it back untouched
            torch.manual_seed(config.seed)
            if config.threads is not None:
                torch.set_num_threads(config.threads)
            yield
    finally:
        torch.set_num_threads(threads)


# --- progress -------------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar when stderr is a terminal, one plain line per epoch otherwise, or nothing."""

    def __init__(self, enabled: bool, total_steps: int, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, desc=label, file=sys.stderr, leave=False)

    def step(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def status(self, epoch: float, loss: float, acc: float, img_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(
                epoch=f"{epoch:.2f}", loss=f"{loss:.3f}", acc=f"{acc:.1f}%", img_s=f"{img_s:.0f}"
            )

    def epoch(self, row: Metrics, epochs: float) -> None:
        if self.enabled and self.bar is None:
            test = f" test {row['test_top1']:.2f}%" if "test_top1" in row else ""
            print(
                f"{self.label}: epoch {row['epoch']:g}/{epochs:g} loss {row['train_loss']:.4f} "
                f"train {row['train_top1']:.2f}%{test} {row['images_per_s']:.0f} img/s "
                f"{row['wall_s']:.1f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- the run --------------------------------------------------------------------------------------


class _Diverged(Exception):
    """The loss, the weights or the BN statistics became NaN or infinite."""


def _split(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    return out if isinstance(out, tuple) else (out, None)


class _Trainer:
    """State of one run between steps: model, optimizer, EMA, data stream, counters."""

    def __init__(
        self, net: nn.Module, spec: ArchSpec, config: TrainConfig, data: Dataset, rt: Runtime
    ) -> None:
        self.net, self.spec, self.config, self.rt = net, spec, config, rt
        self.data = _to_device(data, rt.device)
        n = len(self.data.train_y)
        # full batches only: fixed shapes (no recompiles) and no size-1 BatchNorm batch
        self.batch_size = min(config.batch_size, n)
        self.steps_per_epoch = n // self.batch_size
        self.total_steps = max(1, round(config.epochs * self.steps_per_epoch))
        self.opt = build_optimizer(net, config)
        self.ema = Ema(net, config.ema_decay) if config.ema_decay is not None else None
        self.forward: Callable[[torch.Tensor], Any] = net
        # one CPU generator drives data order and augmentation (it works for CUDA batches too),
        # so every variant trained at a seed sees the same batches: paired comparisons
        self.gen = torch.Generator().manual_seed(config.seed ^ _DATA_SEED_SALT)
        self.step = 0
        self.check_every = CHECK_EVERY_CUDA if rt.device.type == "cuda" else CHECK_EVERY_CPU
        if config.compile == "on":
            self.forward = torch.compile(net)

    def train_step(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the images ``idx``; returns (loss, number correct) as tensors."""
        cfg, rt = self.config, self.rt
        for group in self.opt.param_groups:
            group["lr"] = lr_at(cfg, self.step, self.steps_per_epoch, self.total_steps)
        idx = idx.to(rt.device)
        x, y = self.data.train_x[idx], self.data.train_y[idx]
        if cfg.augment:
            x = augment(x, pad=cfg.crop_pad, hflip=self.data.hflip, generator=self.gen)
        with rt.autocast():
            logits, aux = _split(self.forward(rt.prepare(x, self.data)))
        loss = smoothed_cross_entropy(logits, y, cfg.label_smoothing)
        if aux is not None and self.spec.aux_weight > 0:
            loss = loss + self.spec.aux_weight * smoothed_cross_entropy(aux, y, cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip, foreach=True)
        self.opt.step()
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return loss.detach(), (logits.argmax(dim=1) == y).sum()

    def run_epoch(self, epoch: int, progress: _Progress) -> Metrics:
        """Train up to one epoch (less at the end of fractional epochs); the epoch's metrics."""
        n_steps = min(self.steps_per_epoch, self.total_steps - self.step)
        loss_sum = torch.zeros((), device=self.rt.device)
        correct = torch.zeros((), dtype=torch.long, device=self.rt.device)
        start = time.perf_counter()
        order = batches(
            len(self.data.train_y),
            self.batch_size,
            shuffle=True,
            generator=self.gen,
            drop_last=True,
        )
        for i, idx in zip(range(n_steps), order, strict=False):
            loss, hits = self.train_step(idx)
            loss_sum += loss
            correct += hits
            progress.step(1)
            if (i + 1) % self.check_every == 0 or i + 1 == n_steps:
                self._check(loss_sum, epoch, i + 1)
            if progress.bar is not None and (i + 1) % STATUS_EVERY == 0:
                seen = (i + 1) * self.batch_size
                progress.status(
                    self.step / self.steps_per_epoch,
                    loss_sum.item() / (i + 1),
                    100 * correct.item() / seen,
                    seen / (time.perf_counter() - start),
                )
            if i + 1 == COMPILE_PROBE_STEPS and self.step == i + 1:
                self._maybe_compile((time.perf_counter() - start) / (i + 1))
        elapsed = time.perf_counter() - start
        self._check_weights(epoch)
        return {
            "epoch": round(self.step / self.steps_per_epoch, 4),
            "train_loss": loss_sum.item() / n_steps,
            "train_top1": 100 * correct.item() / (n_steps * self.batch_size),
            "images_per_s": n_steps * self.batch_size / elapsed,
            "lr": self.opt.param_groups[0]["lr"],
            "train_s": elapsed,
        }

    def _check(self, loss_sum: torch.Tensor, epoch: int, step_in_epoch: int) -> None:
        if not torch.isfinite(loss_sum).item():
            where = "at" if self.check_every == 1 else "by"
            raise _Diverged(
                f"loss became {loss_sum.item()} in epoch {epoch} {where} step {step_in_epoch} "
                f"(global step {self.step})"
            )

    def _check_weights(self, epoch: int) -> None:
        # BN can keep the loss finite while weights or running statistics blow up, which only
        # shows at evaluation; a check per epoch catches it
        state = self.net.state_dict().values()
        if not all(t.isfinite().all().item() for t in state if t.is_floating_point()):
            raise _Diverged(f"weights or BN statistics became non-finite in epoch {epoch}")

    def _maybe_compile(self, eager_step_s: float) -> None:
        # the first steps include one-off kernel setup, so this overestimates: errs towards compile
        auto = self.config.compile == "auto" and self.rt.device.type == "cuda"
        if auto and compile_pays(eager_step_s, self.total_steps - self.step):
            self.forward = torch.compile(self.net)

    def evaluate(self, epoch: int) -> tuple[Metrics, dict[str, list]]:
        """val_*/test_* metrics and aux_top1 of the evaluated model, plus test reliability bins."""
        model = self.net
        if self.ema is not None:
            self.ema.sync_buffers(self.net)
            model = self.ema.model
        if self.config.precise_bn:
            self.precise_bn(model)
        out: Metrics = {}
        if len(self.data.val_y):
            logits, _ = self.predict(model, self.data.val_x)
            out.update(metrics.classification_metrics(logits, self.data.val_y, "val_"))
        logits, aux = self.predict(model, self.data.test_x)
        if not logits.isfinite().all().item():  # finite but huge weights overflow here
            raise _Diverged(f"test logits became non-finite after epoch {epoch}")
        out.update(metrics.classification_metrics(logits, self.data.test_y, "test_"))
        if aux is not None:
            out["aux_top1"] = metrics.topk_accuracy(aux, self.data.test_y, 1)
        return out, metrics.reliability(logits, self.data.test_y)

    @torch.no_grad()
    def precise_bn(self, model: nn.Module) -> None:
        """Recompute ``model``'s BN statistics over ``precise_bn`` training batches."""
        # Short runs leave the running averages stale (they lag the last weights, and the EMA
        # model never ran forward at all); a cumulative average (momentum None) over fixed
        # batches, in train mode, gives the statistics of the weights actually evaluated.
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
        if not bns:
            return
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        # its own generator: the same images at every evaluation, training's data order untouched
        gen = torch.Generator().manual_seed(self.config.seed ^ _PRECISE_BN_SALT)
        n = len(self.data.train_y)
        was_training = model.training
        model.train()
        order = batches(n, self.batch_size, shuffle=True, generator=gen, drop_last=True)
        for _, idx in zip(range(self.config.precise_bn), order, strict=False):
            x = self.data.train_x[idx.to(self.rt.device)]
            with self.rt.autocast():
                model(self.rt.prepare(x, self.data))
        for m, momentum in zip(bns, saved, strict=True):
            m.momentum = momentum
        model.train(was_training)

    @torch.inference_mode()
    def predict(self, model: nn.Module, x_all: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """fp32 logits (and aux-head logits where the model has one) of every image, eval mode."""
        was_training = model.training
        model.eval()
        logits, aux = [], []
        with _aux_tap(model) as tapped:
            for i in range(0, len(x_all), self.config.eval_batch_size):
                x = self.rt.prepare(x_all[i : i + self.config.eval_batch_size], self.data)
                with self.rt.autocast():
                    logits.append(model(x).float())
                aux += [t.float() for t in tapped]
                tapped.clear()
        model.train(was_training)
        return torch.cat(logits), torch.cat(aux) if aux else None


@contextlib.contextmanager
def _aux_tap(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the aux head's logits in eval mode (forward only returns them when training)."""
    head = getattr(model, "AuxLogits", None)
    stages = getattr(model, "stages", {})
    tapped: list[torch.Tensor] = []
    if head is None or not stages.get("stage_b"):
        yield tapped
        return
    site = model.get_submodule(stages["stage_b"][-1])  # the aux head hangs off this module
    handle = site.register_forward_hook(lambda _m, _i, out: tapped.append(head(out)))
    try:
        yield tapped
    finally:
        handle.remove()


def _to_device(data: Dataset, device: torch.device) -> Dataset:
    if device.type == "cpu":
        return data
    # moved once per run: every step then indexes device memory, no host-to-device copies
    splits = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
    return dataclasses.replace(data, **{k: getattr(data, k).to(device) for k in splits})


def train(
    spec: ArchSpec,
    config: TrainConfig,
    *,
    model: str = "inception_mini",
    progress: bool | None = None,
    on_epoch: Callable[[Metrics], None] | None = None,
    dataset: Dataset | None = None,
) -> RunResult:
    """Train ``model`` with architecture ``spec`` under ``config``; never leaves global state."""
    from archlab.measure import complexity
    from archlab.models import build_model

    start = time.perf_counter()
    validate_config(config)
    data = dataset if dataset is not None else _load(config)
    rt = resolve_runtime(config)
    size = data.train_x.shape[-1]
    cost = complexity(
        model, spec, input_size=size, in_chans=data.in_chans, num_classes=data.num_classes
    )
    with _isolated_torch_state(config, rt.device):
        net = build_model(
            model, spec, num_classes=data.num_classes, in_chans=data.in_chans, input_size=size
        ).to(rt.device)
        if rt.channels_last:
            net = net.to(memory_format=torch.channels_last)
        trainer = _Trainer(net, spec, config, data, rt)
        label = f"train {model} seed {config.seed}"
        status, error, history, final = _fit(trainer, progress is not False, label, on_epoch)
    return RunResult(
        status=status,
        spec=spec.to_dict(),
        config=config.to_dict(),
        model=model,
        final=final,
        history=history,
        macs=cost.macs,
        params=cost.params,
        wall_time_s=time.perf_counter() - start,
        error=error,
    )


def _load(config: TrainConfig) -> Dataset:
    return load_dataset(
        config.dataset,
        train_subset=config.train_subset,
        val_size=config.val_size,
        resize=config.resize,
        seed=config.seed,
    )


def _fit(
    trainer: _Trainer,
    show: bool,
    label: str,
    on_epoch: Callable[[Metrics], None] | None,
) -> tuple[str, str, list[Metrics], Metrics]:
    """The epoch loop: (status, error, history, final metrics)."""
    cfg = trainer.config
    n_epochs = math.ceil(trainer.total_steps / trainer.steps_per_epoch)
    history: list[Metrics] = []
    train_s = 0.0
    bins: dict[str, list] = {}
    start = time.perf_counter()
    progress = _Progress(show, trainer.total_steps, label)
    try:
        for epoch in range(1, n_epochs + 1):
            row = trainer.run_epoch(epoch, progress)
            train_s += row.pop("train_s")
            if epoch == n_epochs or epoch % cfg.eval_every == 0:
                evaluated, bins = trainer.evaluate(epoch)
                row.update(evaluated)
            row["wall_s"] = time.perf_counter() - start
            history.append(row)
            progress.epoch(row, cfg.epochs)
            if on_epoch is not None:
                on_epoch(dict(row))
    except _Diverged as e:
        return "diverged", str(e), history, {"train_time_s": train_s}
    finally:
        progress.close()
    images = trainer.total_steps * trainer.batch_size
    final = {k: v for k, v in history[-1].items() if k.startswith(("val_", "test_", "aux_"))}
    final.update(images_per_s=images / train_s, train_time_s=train_s, reliability=bins)
    return "complete", "", history, final


# --- results --------------------------------------------------------------------------------------


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON atomically: a temp file in the same folder, then os.replace."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary_lines(result: RunResult) -> list[str]:
    """A few aligned lines describing a run's outcome."""
    f = result.final
    lines = [f"status     {result.status}" + (f" ({result.error})" if result.error else "")]
    if "test_top1" in f:
        lines += [
            f"test top-1 {f['test_top1']:.2f} %   top-5 {f['test_top5']:.2f} %",
            f"test NLL   {f['test_nll']:.4f} nats   ECE {f['test_ece']:.4f} (15 bins)",
        ]
    lines += [
        f"MACs       {result.macs:,} per image (1 MAC = 1 multiply-add)",
        f"params     {result.params:,}",
        f"time       {result.wall_time_s:.1f} s total, {f.get('train_time_s', 0.0):.1f} s training",
    ]
    if "images_per_s" in f:
        lines.append(f"img/s      {f['images_per_s']:,.0f} (training)")
    return lines
