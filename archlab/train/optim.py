"""How a run optimizes: smoothed cross-entropy, RMSpropTF, param groups, lr schedules, EMA."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archlab.train.config import TrainConfig


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


class Ema:
    """A moving average of a model's parameters; buffers (BN statistics) are copied.

    ``decay``: an exponential average; ``swa_from``: instead, the uniform average of the
    parameters after every update from that update on (SWA), a plain copy before it.
    """

    def __init__(
        self, model: nn.Module, decay: float | None = None, *, swa_from: int | None = None
    ) -> None:
        if (decay is None) == (swa_from is None):
            raise ValueError("Ema needs exactly one of decay and swa_from")
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.swa_from = decay, swa_from
        self.updates = 0
        self._src = list(model.parameters())
        self._dst = list(self.model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current parameters."""
        self.updates += 1
        if self.swa_from is not None:
            # the k-th averaged step gets weight 1/k: the mean of those steps' weights
            averaged = self.updates - self.swa_from + 1
            weight = 1.0 if averaged <= 1 else 1.0 / averaged
        else:
            # TF's ExponentialMovingAverage(decay, num_updates), as the paper's trainer used
            # it: the decay ramps up, so on short runs the average forgets the random init.
            assert self.decay is not None
            weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, weight)

    @torch.no_grad()
    def sync_buffers(self, model: nn.Module) -> None:
        """Copy the BN running statistics from ``model``."""
        # they already are moving averages over recent batches; re-estimating them under the
        # averaged weights (swa_utils.update_bn) would be more exact but costs a pass over the data
        for dst, src in zip(self.model.buffers(), model.buffers(), strict=True):
            dst.copy_(src)
