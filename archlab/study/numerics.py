"""A study's numerics: the device and precision its runs compute with, pinned at its first plan.

A recipe may say ``device: auto`` and ``precision: auto``; what they become depends on the
machine (CUDA or not, a CPU with native bf16 or not), and bf16 and fp32 runs are not paired
samples of one experiment. So a comparison resolves them when it plans its cells: the resolved
values go into every cell's TrainConfig (its run key and its RunResult record them). The first
plan stores ``numerics: {device, precision, cpu_bf16}`` in the study's user attrs; every later
plan (a resume, another worker or machine) uses the pinned values. A machine that would resolve
differently is refused with one line, unless the user asks to run as pinned (``--numerics
pinned``). Only the recipe fields left at ``auto`` are pinned; an explicit value is kept.
"""

from __future__ import annotations

from typing import Any

from archlab.study.errors import StudyError
from archlab.train.config import TrainConfig

__all__ = ["NUMERICS_MODES", "apply_numerics", "choose_numerics", "machine_numerics"]

#: ``--numerics``: refuse a machine that differs from the pinned numerics, or run as pinned
NUMERICS_MODES = ("check", "pinned")


def machine_numerics(config: TrainConfig) -> dict[str, Any]:
    """What ``config``'s device and precision resolve to on this machine."""
    import torch

    from archlab.train.runtime import cpu_has_fast_bf16, resolve_runtime

    runtime = resolve_runtime(config)
    return {
        "device": runtime.device.type,
        "precision": "bf16" if runtime.amp_dtype == torch.bfloat16 else "fp32",
        "cpu_bf16": bool(cpu_has_fast_bf16()),
    }


def apply_numerics(config: TrainConfig, numerics: dict[str, Any]) -> TrainConfig:
    """``config`` with its ``auto`` device and precision replaced by the pinned values."""
    changes = {k: numerics[k] for k in ("device", "precision") if getattr(config, k) == "auto"}
    return config.replace(**changes) if changes else config


def _words(numerics: dict[str, Any], keys: tuple[str, ...]) -> str:
    text = " ".join(str(numerics[k]) for k in keys)
    bf16 = "native bf16" if numerics.get("cpu_bf16") else "no native bf16"
    return f"{text} (CPU: {bf16})"


def choose_numerics(
    pinned: dict[str, Any] | None, config: TrainConfig, mode: str = "check"
) -> dict[str, Any]:
    """The numerics to plan with: ``pinned`` if any (checked against this machine), else ours.

    ``config`` is the study's base recipe (before resolution). With mode ``check`` a machine
    resolving an ``auto`` field differently is a StudyError; with ``pinned`` the pinned values
    are used anyway, except a pinned CUDA device on a machine without one.
    """
    if mode not in NUMERICS_MODES:
        raise StudyError(f"--numerics {mode!r}: valid: {', '.join(NUMERICS_MODES)}")
    here = machine_numerics(config)
    if not pinned:
        return here
    keys = tuple(k for k in ("device", "precision") if getattr(config, k) == "auto")
    if all(pinned.get(k) == here[k] for k in keys):
        return dict(pinned)
    if mode == "check":
        raise StudyError(
            f"this study's numerics are pinned to {_words(pinned, keys)} at its first plan; "
            f"this machine resolves {_words(here, keys)}: run it where they match, or pass "
            "--numerics pinned to run as pinned"
        )
    if pinned.get("device") == "cuda" and here["device"] != "cuda" and "device" in keys:
        raise StudyError(
            "this study's numerics are pinned to cuda; this machine has no CUDA device: "
            "--numerics pinned cannot run it here"
        )
    return dict(pinned)
