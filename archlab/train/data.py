"""Datasets by name as in-memory uint8 tensors: splits and subsets, synthetic patterns, and
normalization, augmentation and batch order computed batched on tensors.

``archlab.train.sources`` reads the dataset files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from archlab.train import sources
from archlab.train.sources import DataError, Source, resize_images

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "augment",
    "batches",
    "load_dataset",
    "normalize",
]

DATASETS = [
    "fashion-mnist",
    "synthetic",
    "synthetic:N",
    "idx:PATH",
    "imagefolder:PATH",
    "cifar10:PATH",
]

_SYNTHETIC_DEFAULT_N = 2048
_SYNTHETIC_CLASSES = 10
_MAX_RESIZE = 1024


@dataclass
class Dataset:
    """Train/val/test splits as uint8 NCHW tensors plus what a trainer needs to know about them."""

    name: str
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    classes: list[str]
    hflip: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        """Channels per image (1 grey, 3 colour)."""
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        """Image height (equal to the width unless an image folder held non-square images)."""
        return self.train_x.shape[2]

    @property
    def image_hw(self) -> tuple[int, int]:
        """Image height and width."""
        return self.train_x.shape[2], self.train_x.shape[3]


def load_dataset(
    name: str,
    *,
    train_subset: int | None = None,
    val_size: int = 0,
    resize: int | None = None,
    upsample: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load a dataset by name (see DATASETS), split off validation, subset, resize (, upsample)."""
    if resize is not None:
        _check_int("resize", resize, 1, _MAX_RESIZE)
    if upsample is not None:
        _check_int("upsample", upsample, 1, _MAX_RESIZE)
    src = _load_source(name, resize, seed)
    n = len(src.train_y)
    _check_int("val_size", val_size, 0, n - 1, f"{name} has {n} training images")
    if train_subset is not None:
        _check_int(
            "train_subset", train_subset, 1, n - val_size, f"{n} training images, {val_size} to val"
        )
    # Val comes from the end of one seeded permutation and the subset from its start, so the
    # validation images stay the same whatever train_subset is, and never overlap training.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx = perm[n - val_size :].sort().values
    train_idx = perm[: n - val_size]
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    train_idx = train_idx.sort().values
    train_x = resize_images(resize_images(src.train_x[train_idx], resize), upsample)
    mean, std = _channel_stats(train_x)
    return Dataset(
        name=name,
        train_x=train_x,
        train_y=src.train_y[train_idx],
        val_x=resize_images(resize_images(src.train_x[val_idx], resize), upsample),
        val_y=src.train_y[val_idx],
        # never hand out the cached tensor itself
        test_x=resize_images(resize_images(src.test_x, resize), upsample).clone(),
        test_y=src.test_y.clone(),
        classes=list(src.classes),
        hflip=src.hflip,
        mean=mean,
        std=std,
    )


def normalize(
    x: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Map uint8 NCHW images to (x / 255 - mean) / std per channel, as dtype."""
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(f"normalize expects uint8 NCHW images, got {x.dtype} of shape {x.shape}")
    if not len(mean) == len(std) == x.shape[1]:
        raise ValueError(f"{x.shape[1]} channels but {len(mean)} means and {len(std)} stds")
    # Low-precision targets (bf16) are computed in float32 and rounded once at the end.
    work = torch.promote_types(dtype, torch.float32)
    m = torch.tensor(mean, dtype=torch.float64)
    s = torch.tensor(std, dtype=torch.float64)
    scale = (1 / (255 * s)).to(x.device, work).view(1, -1, 1, 1)
    shift = (-m / s).to(x.device, work).view(1, -1, 1, 1)
    return torch.addcmul(shift, x.to(work), scale).to(dtype)


def augment(x: torch.Tensor, *, pad: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop from the zero-padded image and random horizontal flip (p=0.5), per image."""
    if x.ndim != 4:
        raise ValueError(f"augment expects NCHW images, got shape {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if pad == 0 and not hflip:
        return x
    n, c, h, w = x.shape
    # Draw on the generator's device, then move: a CPU generator can drive CUDA batches.
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
    shifts = shifts.to(x.device)
    rows = shifts[0, :, None] + torch.arange(h, device=x.device)
    cols = shifts[1, :, None] + torch.arange(w, device=x.device)
    if hflip:
        flip = torch.rand(n, generator=generator, device=generator.device).to(x.device) < 0.5
        cols = torch.where(flip[:, None], cols.flip(1), cols)  # flip = read the window backwards
    # Zero padding is black on uint8 input and the dataset mean on normalized input.
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    # One gather for crop and flip together, no per-image loop.
    return padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(c, device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches, shuffled with generator if asked."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    device = generator.device if generator is not None else None
    order = torch.randperm(n, generator=generator, device=device) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (order[i : i + batch_size] for i in range(0, stop, batch_size))


# ---- name dispatch and the split-independent steps ----------------------------------------------


def _load_source(name: str, resize: int | None, seed: int) -> Source:
    if not isinstance(name, str):
        raise DataError(
            f"dataset name must be a string, got {name!r}; valid: {', '.join(DATASETS)}"
        )
    kind, _, arg = name.partition(":")
    if name == "fashion-mnist":
        return sources.fashion_mnist()
    if kind == "synthetic":
        return _synthetic(_synthetic_n(name, arg), seed)
    if kind in ("idx", "imagefolder", "cifar10") and arg:
        root = Path(arg).expanduser()
        if not root.is_dir():
            raise DataError(f"{root}: no such directory (dataset {name!r})")
        if kind == "idx":
            return sources.idx(root)
        if kind == "imagefolder":
            return sources.imagefolder(root, resize)
        return sources.cifar10(root)
    raise DataError(f"unknown dataset {name!r}; valid forms: {', '.join(DATASETS)}")


def _check_int(option: str, value: object, lo: int, hi: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        note = f" ({why})" if why else ""
        raise DataError(f"{option}={value!r}: must be an integer in [{lo}, {hi}]{note}")


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Histogram counts are exact, so the float64 moments carry no accumulated rounding error.
    counts = torch.stack(
        [torch.bincount(x[:, c].reshape(-1), minlength=256) for c in range(x.shape[1])]
    ).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum(1)
    mean = counts @ levels / total
    var = counts @ levels**2 / total - mean**2
    # A constant channel would make normalize divide by zero; one grey level is the floor.
    std = var.clamp_min(0).sqrt().clamp_min(1 / 255)
    return tuple(mean.tolist()), tuple(std.tolist())


# ---- synthetic -----------------------------------------------------------------------------------


def _synthetic_n(name: str, arg: str) -> int:
    if name == "synthetic":
        return _SYNTHETIC_DEFAULT_N
    if not arg.isdigit() or int(arg) < _SYNTHETIC_CLASSES:
        raise DataError(
            f"{name!r}: N in synthetic:N must be an integer >= {_SYNTHETIC_CLASSES} (one per class)"
        )
    return int(arg)


def _synthetic(n: int, seed: int) -> Source:
    """Ten smooth random 28x28 templates, shifted, contrast-jittered and noised per image."""
    g = torch.Generator().manual_seed(seed)
    # Upsampled 7x7 noise gives blob shapes a small CNN picks up in an epoch or two.
    coarse = torch.randn(_SYNTHETIC_CLASSES, 1, 7, 7, generator=g)
    templates = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=False)
    templates /= templates.flatten(1).abs().amax(1).view(-1, 1, 1, 1)
    train_x, train_y = _synthetic_split(templates, n, g)
    test_x, test_y = _synthetic_split(templates, n // 4, g)
    classes = tuple(f"pattern{i}" for i in range(_SYNTHETIC_CLASSES))
    return Source(train_x, train_y, test_x, test_y, classes, hflip=False)


def _synthetic_split(
    templates: torch.Tensor, n: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    y = (torch.arange(n) % _SYNTHETIC_CLASSES)[torch.randperm(n, generator=g)]
    x = augment(templates[y], pad=3, hflip=False, generator=g)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.5, 1.0, generator=g)
    x = x * contrast + 0.35 * torch.randn(x.shape, generator=g)
    return (128 + 100 * x).round_().clamp_(0, 255).to(torch.uint8), y
