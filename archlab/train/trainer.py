"""One training run: an ArchSpec and a TrainConfig in, a RunResult out.

The whole dataset lives in memory as uint8 tensors; each step gathers an index batch, augments
it (batched crop + flip), normalizes it and runs forward/backward in channels_last memory format
under bf16 autocast where the hardware makes that fast (``archlab.train.runtime``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.arch.spec import ArchSpec
from archlab.train import metrics
from archlab.train.config import ConfigError, RunResult, TrainConfig, validate_config
from archlab.train.data import Dataset, augment, batches, load_dataset
from archlab.train.kernels import KERNELS, tune
from archlab.train.optim import Ema, build_optimizer, lr_at, smoothed_cross_entropy
from archlab.train.runtime import (
    COMPILE_PROBE_STEPS,
    Runtime,
    compile_pays,
    isolated_torch_state,
    resolve_runtime,
    runtime_record,
)

# A host sync per step is free on CPU (ops run synchronously) but stalls a GPU's queue.
CHECK_EVERY_CPU = 1
CHECK_EVERY_CUDA = 25
STATUS_EVERY = 25  # steps between progress-bar postfix updates (each one redraws the bar)
PRECISE_BN_SALT = 0x5EED_B4  # precise BN's batches differ from the training stream
DATA_SEED_SALT = 0x5EED  # data order/augmentation stream differs from the init stream

Metrics = dict[str, Any]


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


class Trainer:
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
        self.ema = None
        if config.swa_start is not None:
            # the first averaged step: swa_start of the run's steps have passed
            swa_from = min(self.total_steps, math.floor(config.swa_start * self.total_steps) + 1)
            self.ema = Ema(net, swa_from=swa_from)
        elif config.ema_decay is not None:
            self.ema = Ema(net, config.ema_decay)
        self.forward: Callable[[torch.Tensor], Any] = net
        # one CPU generator drives data order and augmentation (it works for CUDA batches too),
        # so every variant trained at a seed sees the same batches: paired comparisons
        self.gen = torch.Generator().manual_seed(config.seed ^ DATA_SEED_SALT)
        self.step = 0
        self.predictions: dict[str, torch.Tensor] = {}  # the last evaluation's, per split
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
            self.predictions["val"] = metrics.predicted_class(logits)
        logits, aux = self.predict(model, self.data.test_x)
        if not logits.isfinite().all().item():  # finite but huge weights overflow here
            raise _Diverged(f"test logits became non-finite after epoch {epoch}")
        out.update(metrics.classification_metrics(logits, self.data.test_y, "test_"))
        self.predictions["test"] = metrics.predicted_class(logits)
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
        gen = torch.Generator().manual_seed(self.config.seed ^ PRECISE_BN_SALT)
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
    kernels: str = "tuned",
    keep_predictions: bool = False,
) -> RunResult:
    """Train ``model`` with architecture ``spec`` under ``config``; never leaves global state.

    ``kernels="stock"`` trains with PyTorch's own kernels (the bench's baseline); the tuned ones
    give bit-identical numbers, faster (``archlab.train.kernels``). ``keep_predictions`` keeps
    the final evaluation's predicted class of every val/test image in ``result.predictions``.
    """
    from archlab.arch.cost import complexity
    from archlab.arch.models import build_model

    start = time.perf_counter()
    validate_config(config)
    if kernels not in KERNELS:
        raise ConfigError(f"kernels: {kernels!r} is not one of {', '.join(KERNELS)}")
    data = dataset if dataset is not None else load_data(config)
    rt = resolve_runtime(config)
    size = data.train_x.shape[-1]
    cost = complexity(
        model, spec, input_size=size, in_chans=data.in_chans, num_classes=data.num_classes
    )
    with isolated_torch_state(config, rt.device):
        net = build_model(
            model, spec, num_classes=data.num_classes, in_chans=data.in_chans, input_size=size
        ).to(rt.device)
        if rt.channels_last:
            net = net.to(memory_format=torch.channels_last)
        tune(net, kernels)
        trainer = Trainer(net, spec, config, data, rt)
        label = f"train {model} seed {config.seed}"
        status, error, history, final = _fit(trainer, progress is not False, label, on_epoch)
    kept = keep_predictions and status == "complete"
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
        runtime=runtime_record(rt, config, kernels),
        predictions=_predictions(trainer, data) if kept else None,
    )


def _predictions(trainer: Trainer, data: Dataset) -> dict[str, np.ndarray]:
    """Predicted and true class of every evaluated image, per split, as small int arrays."""
    out = {}
    for split, pred in trainer.predictions.items():
        out[f"{split}_pred"] = pred.cpu().numpy().astype(np.int16)
        out[f"{split}_y"] = getattr(data, f"{split}_y").cpu().numpy().astype(np.int16)
    return out


def load_data(config: TrainConfig) -> Dataset:
    """The dataset a run of ``config`` trains and tests on (what ``train`` loads without one)."""
    return load_dataset(
        config.dataset,
        train_subset=config.train_subset,
        val_size=config.val_size,
        resize=config.resize,
        upsample=config.upsample,
        seed=config.seed if config.split_seed is None else config.split_seed,
    )


def _fit(
    trainer: Trainer,
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


# --- summary --------------------------------------------------------------------------------------


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
