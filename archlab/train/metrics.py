"""Classification metrics from logits: top-k accuracy, NLL, ECE and reliability bins.

Conventions (shared with reports): accuracies in percent (0-100), NLL in nats per image,
ECE as a fraction (0-1). Every function takes raw logits ``(N, K)`` and integer targets ``(N,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ECE_BINS = 15  # Guo et al. 2017 ("On Calibration of Modern Neural Networks") use 15 bins


def predicted_class(logits: torch.Tensor) -> torch.Tensor:
    """The class top-1 counts for each row: ``topk``'s pick, which breaks ties as top-1 does."""
    # argmax can pick another of two tied logits (bf16 ties happen), so a prediction list built
    # with it disagrees with the reported top-1 on a few images
    return logits.topk(1, dim=1).indices[:, 0]


def topk_accuracy(logits: torch.Tensor, target: torch.Tensor, k: int = 1) -> float:
    """Percent of rows whose target is among the k highest logits (k is capped at K)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return 100.0 * (top == target[:, None]).any(dim=1).float().mean().item()


def nll(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean negative log-likelihood of the targets, in nats."""
    return F.cross_entropy(logits.float(), target).item()


def _bin_stats(
    logits: torch.Tensor, target: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin (count, summed confidence, summed correctness) over equal-width confidence bins."""
    conf, pred = logits.float().softmax(dim=1).max(dim=1)
    correct = (pred == target).float()
    # bin i holds confidences in (i/n, (i+1)/n]; the max softmax is always > 0
    idx = (conf * n_bins).ceil().long().sub(1).clamp(0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).float()
    conf_sum = torch.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = torch.bincount(idx, weights=correct, minlength=n_bins)
    return count, conf_sum, acc_sum


def ece(logits: torch.Tensor, target: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over bins of |B|/N * |accuracy(B) - confidence(B)|."""
    count, conf_sum, acc_sum = _bin_stats(logits, target, n_bins)
    return ((acc_sum - conf_sum).abs().sum() / count.sum()).item()


def reliability(
    logits: torch.Tensor, target: torch.Tensor, n_bins: int = ECE_BINS
) -> dict[str, list]:
    """Reliability-diagram data per bin: mean confidence, accuracy (None when empty), count."""
    count, conf_sum, acc_sum = _bin_stats(logits, target, n_bins)
    counts = [int(c) for c in count.tolist()]
    return {
        "bin_conf": [s / c if c else None for s, c in zip(conf_sum.tolist(), counts, strict=True)],
        "bin_acc": [s / c if c else None for s, c in zip(acc_sum.tolist(), counts, strict=True)],
        "bin_count": counts,
    }


def classification_metrics(
    logits: torch.Tensor, target: torch.Tensor, prefix: str = ""
) -> dict[str, float]:
    """top1, top5 (%), nll (nats) and ece (fraction), keys prefixed with ``prefix``."""
    return {
        f"{prefix}top1": topk_accuracy(logits, target, 1),
        f"{prefix}top5": topk_accuracy(logits, target, 5),
        f"{prefix}nll": nll(logits, target),
        f"{prefix}ece": ece(logits, target),
    }
