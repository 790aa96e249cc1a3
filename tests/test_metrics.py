"""Tests for archlab.train.metrics against hand-computed values."""

import math

import pytest
import torch

from archlab.train.metrics import classification_metrics, ece, nll, reliability, topk_accuracy


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    """Logits whose softmax is exactly ``probs``."""
    return torch.tensor(probs, dtype=torch.float64).log()


# confidences 0.9 (right), 0.9 (wrong), 0.7 (right), 0.7 (right): bins 13 and 10 of 15
CAL_LOGITS = logits_of([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
CAL_TARGET = torch.tensor([0, 1, 1, 1])


def test_topk_counts_target_among_k_highest() -> None:
    logits = torch.tensor(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target 0: top-1
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target 4: top-5 only
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target 5: neither
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # target 1: top-5 only
        ]
    )
    target = torch.tensor([0, 4, 5, 1])
    assert topk_accuracy(logits, target, 1) == pytest.approx(25.0)
    assert topk_accuracy(logits, target, 5) == pytest.approx(75.0)
    assert topk_accuracy(logits, target, 2) == pytest.approx(25.0)


def test_topk_caps_k_at_number_of_classes() -> None:
    logits = torch.tensor([[1.0, 0.0, 2.0]])
    assert topk_accuracy(logits, torch.tensor([1]), 5) == 100.0


def test_nll_is_mean_negative_log_probability_of_target() -> None:
    logits = logits_of([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    expected = -(math.log(0.25) + math.log(0.8)) / 2
    assert nll(logits, torch.tensor([2, 1])) == pytest.approx(expected, rel=1e-6)


def test_ece_by_hand() -> None:
    # bin of 0.9: accuracy 0.5, weight 2/4 -> 0.2; bin of 0.7: accuracy 1.0, weight 2/4 -> 0.15
    assert ece(CAL_LOGITS, CAL_TARGET) == pytest.approx(0.35, abs=1e-6)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    logits = logits_of([[0.5, 0.5]] * 4)  # argmax picks class 0 at a tie
    assert ece(logits, torch.tensor([0, 0, 1, 1])) == pytest.approx(0.0, abs=1e-6)


def test_ece_bins_are_right_closed() -> None:
    # confidence exactly 1 falls in the last bin, not past it; 10 bins of width 0.1
    logits = torch.tensor([[100.0, 0.0], [0.0, 100.0]])
    rel = reliability(logits, torch.tensor([0, 0]), n_bins=10)
    assert rel["bin_count"] == [0] * 9 + [2]
    assert rel["bin_acc"][9] == pytest.approx(0.5)


def test_reliability_bins_by_hand() -> None:
    rel = reliability(CAL_LOGITS, CAL_TARGET)
    assert [len(v) for v in rel.values()] == [15, 15, 15]
    expected_count = [0] * 15
    expected_count[10] = expected_count[13] = 2
    assert rel["bin_count"] == expected_count
    assert rel["bin_conf"][13] == pytest.approx(0.9)
    assert rel["bin_acc"][13] == pytest.approx(0.5)
    assert rel["bin_conf"][10] == pytest.approx(0.7)
    assert rel["bin_acc"][10] == pytest.approx(1.0)
    assert rel["bin_conf"][0] is None and rel["bin_acc"][0] is None


def test_classification_metrics_prefixes_keys_and_units() -> None:
    out = classification_metrics(CAL_LOGITS, CAL_TARGET, "test_")
    assert set(out) == {"test_top1", "test_top5", "test_nll", "test_ece"}
    assert out["test_top1"] == pytest.approx(75.0)  # percent
    assert out["test_ece"] == pytest.approx(0.35, abs=1e-6)  # fraction


def test_predicted_class_breaks_ties_as_top1_counts() -> None:
    """bf16 logits tie; a prediction list must give exactly the reported top-1 even then."""
    from archlab.train.metrics import predicted_class, topk_accuracy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2_000, 10, generator=g).bfloat16().float()
    logits[:, 3] = logits.max(dim=1).values  # class 3 ties with the largest logit in every row
    target = torch.randint(0, 10, (2_000,), generator=g)
    target[:500] = 3
    hits = 100.0 * (predicted_class(logits) == target).float().mean().item()
    assert hits == pytest.approx(topk_accuracy(logits, target, 1), abs=1e-9)
