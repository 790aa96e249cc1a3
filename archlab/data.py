"""Datasets as in-memory uint8 tensors; normalization and augmentation batched on tensors."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import io
import logging
import math
import os
import pickle
import struct
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# SHA-256 of the decompressed files: the Debian package recompresses the .gz files, so only the
# decompressed bytes match the official release.
_FMNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_IDX_STEMS = tuple(_FMNIST_SHA256)
_IDX_IMAGES, _IDX_LABELS = 2051, 2049
# The official bucket is an S3 website endpoint, which serves plain HTTP only; the SHA-256 check
# of every file is what makes the download trustworthy.
_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_SYSTEM_FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_LOCAL_FMNIST_DIR = Path("data/fashion-mnist")
_DOWNLOAD_TIMEOUT_S = 10

_SYNTHETIC_DEFAULT_N = 2048
_SYNTHETIC_CLASSES = 10
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")
_MAX_RESIZE = 1024
_CIFAR_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_CIFAR_RECORD = 1 + 3 * 32 * 32
_RESIZE_CHUNK = 4096  # images per interpolate call: bounds the float copy when upscaling

log = logging.getLogger(__name__)


class DataError(ValueError):
    """Bad or missing data; one line naming the file and what is wrong."""


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


@dataclass(frozen=True)
class _Source:
    """A dataset as stored: full train and test splits, before subsetting or resizing."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    hflip: bool


def load_dataset(
    name: str,
    *,
    train_subset: int | None = None,
    val_size: int = 0,
    resize: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load a dataset by name (see DATASETS), split off validation, subset, resize."""
    if resize is not None:
        _check_int("resize", resize, 1, _MAX_RESIZE)
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
    train_x = _resize(src.train_x[train_idx], resize)
    mean, std = _channel_stats(train_x)
    return Dataset(
        name=name,
        train_x=train_x,
        train_y=src.train_y[train_idx],
        val_x=_resize(src.train_x[val_idx], resize),
        val_y=src.train_y[val_idx],
        test_x=_resize(src.test_x, resize).clone(),  # never hand out the cached tensor itself
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


def _load_source(name: str, resize: int | None, seed: int) -> _Source:
    if not isinstance(name, str):
        raise DataError(
            f"dataset name must be a string, got {name!r}; valid: {', '.join(DATASETS)}"
        )
    kind, _, arg = name.partition(":")
    if name == "fashion-mnist":
        return _read_idx_source(_find_fashion_mnist(), True)
    if kind == "synthetic":
        return _synthetic(_synthetic_n(name, arg), seed)
    if kind in ("idx", "imagefolder", "cifar10") and arg:
        root = Path(arg).expanduser()
        if not root.is_dir():
            raise DataError(f"{root}: no such directory (dataset {name!r})")
        if kind == "idx":
            return _read_idx_source(_idx_files(root), False)
        if kind == "imagefolder":
            return _imagefolder(root, resize)
        return _cifar10(root)
    raise DataError(f"unknown dataset {name!r}; valid forms: {', '.join(DATASETS)}")


def _check_int(option: str, value: object, lo: int, hi: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        note = f" ({why})" if why else ""
        raise DataError(f"{option}={value!r}: must be an integer in [{lo}, {hi}]{note}")


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    # Antialiasing only matters when shrinking; without it downscaling aliases fine texture.
    shrink = size < max(x.shape[-2:])
    out = torch.empty((*x.shape[:2], size, size), dtype=torch.uint8)
    for i in range(0, len(x), _RESIZE_CHUNK):
        chunk = x[i : i + _RESIZE_CHUNK].float()
        chunk = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[i : i + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


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


def _cached_by_files(fn: Callable[..., _Source]) -> Callable[..., _Source]:
    """Memoize fn(files, *args) per process, keyed on the files' paths, sizes and mtimes."""

    # Studies load the same data for many runs; 4 entries bound the memory held.
    @functools.lru_cache(maxsize=4)
    def cached(stamp: tuple, files: tuple[Path, ...], *args: object) -> _Source:
        return fn(files, *args)

    @functools.wraps(fn)
    def wrapper(files: Sequence[Path], *args: object) -> _Source:
        stats = [f.stat() for f in files]
        stamp = tuple((str(f), s.st_mtime_ns, s.st_size) for f, s in zip(files, stats, strict=True))
        return cached(stamp, tuple(files), *args)

    return wrapper


def _check_labels(path: Path, labels: torch.Tensor, num_classes: int) -> None:
    if len(labels) and int(labels.max()) >= num_classes:
        raise DataError(f"{path}: label {int(labels.max())} out of range for {num_classes} classes")


# ---- IDX files (Fashion-MNIST, MNIST and friends) ----------------------------------------------


def _find_fashion_mnist() -> list[Path]:
    dirs = []
    if env := os.environ.get("ARCHLAB_DATA"):
        dirs += [Path(env), Path(env) / "fashion-mnist"]
    local = _LOCAL_FMNIST_DIR.absolute()  # absolute, so messages say where the data went
    dirs += [local, _SYSTEM_FMNIST_DIR]
    for d in dirs:
        try:
            return _idx_files(d)
        except DataError:
            continue  # keep searching; the message below lists every place tried
    howto = (
        "install it with `apt-get install dataset-fashion-mnist` or set ARCHLAB_DATA to a folder "
        "holding its four IDX files (train-images-idx3-ubyte.gz ...)"
    )
    looked = ", ".join(str(d) for d in dirs)
    if os.environ.get("ARCHLAB_NO_DOWNLOAD", "") not in ("", "0"):
        raise DataError(
            f"Fashion-MNIST not found (looked in {looked}; download disabled by "
            f"ARCHLAB_NO_DOWNLOAD); {howto}"
        )
    try:
        _download_fashion_mnist(local)
    except (OSError, http.client.HTTPException) as e:
        raise DataError(
            f"Fashion-MNIST not found (looked in {looked}) and download from {_FMNIST_URL} "
            f"failed ({e}); {howto}"
        ) from None
    return [local / f"{stem}.gz" for stem in _IDX_STEMS]


def _download_fashion_mnist(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for stem, digest in _FMNIST_SHA256.items():
        target = dest / f"{stem}.gz"
        if target.is_file():
            continue
        url = f"{_FMNIST_URL}{stem}.gz"
        log.warning("downloading %s to %s", url, target)
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            blob = response.read()
        _check_sha256(url, _gunzip(url, blob), digest)
        part = target.with_name(target.name + ".part")  # never leave a half-written file behind
        part.write_bytes(blob)
        part.replace(target)


def _idx_files(d: Path) -> list[Path]:
    """The four IDX files in d, raw preferred over .gz; DataError naming the first missing."""
    files = []
    for stem in _IDX_STEMS:
        found = [f for f in (d / stem, d / f"{stem}.gz") if f.is_file()]
        if not found:
            raise DataError(f"{d}: missing IDX file {stem} (or {stem}.gz)")
        files.append(found[0])
    return files


@_cached_by_files
def _read_idx_source(files: tuple[Path, ...], fashion: bool) -> _Source:
    arrays = []
    for f, stem in zip(files, _IDX_STEMS, strict=True):
        blob = _read_bytes(f)
        if fashion:
            _check_sha256(f, blob, _FMNIST_SHA256[stem])
        arrays.append(_parse_idx(f, blob, _IDX_IMAGES if "images" in stem else _IDX_LABELS))
    splits = []
    for i in (0, 2):  # (train images, train labels), then (test images, test labels)
        x, y = arrays[i], arrays[i + 1]
        if len(x) != len(y):
            raise DataError(
                f"{files[i + 1]}: {len(y)} labels for the {len(x)} images of {files[i]}"
            )
        splits += [torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64))]
    if fashion:
        classes = FASHION_MNIST_CLASSES
    else:  # plain IDX files carry no class names: use the label numbers
        classes = tuple(str(i) for i in range(int(max(splits[1].max(), splits[3].max())) + 1))
    _check_labels(files[1], splits[1], len(classes))
    _check_labels(files[3], splits[3], len(classes))
    # Clothes are a class whichever way they face; digits are not.
    return _Source(*splits, classes=classes, hflip=fashion)


def _read_bytes(path: Path) -> bytes:
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None
    if path.suffix == ".gz" or blob[:2] == b"\x1f\x8b":
        return _gunzip(path, blob)
    return blob


def _gunzip(path: Path | str, blob: bytes) -> bytes:
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip: {e}") from None


def _check_sha256(path: Path | str, blob: bytes, expected: str) -> None:
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected:
        raise DataError(
            f"{path}: SHA-256 of the decompressed data is {digest}, expected {expected} "
            "(corrupt or not the official Fashion-MNIST file)"
        )


def _parse_idx(path: Path, blob: bytes, magic: int) -> np.ndarray:
    what = "images" if magic == _IDX_IMAGES else "labels"
    if len(blob) < 4:
        raise DataError(f"{path}: truncated: expected at least 4 bytes, found {len(blob)}")
    (found,) = struct.unpack(">i", blob[:4])
    if found != magic:
        raise DataError(f"{path}: bad magic number {found}, expected {magic} (IDX {what})")
    ndim = magic & 0xFF  # the magic's last byte is the number of dimensions
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{path}: truncated: expected at least {header} bytes, found {len(blob)}")
    dims = struct.unpack(f">{ndim}I", blob[4:header])
    expected = header + math.prod(dims)
    if len(blob) < expected:
        raise DataError(f"{path}: truncated: expected {expected} bytes, found {len(blob)}")
    if len(blob) > expected:
        raise DataError(f"{path}: expected {expected} bytes, found {len(blob)} (trailing data)")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims).copy()


# ---- image folders -------------------------------------------------------------------------------


def _imagefolder(root: Path, resize: int | None) -> _Source:
    split_dirs = [root / "train", root / "test"]
    for d in split_dirs:
        if not d.is_dir():
            raise DataError(f"{d}: missing (an image folder needs train/ and test/ class folders)")
    classes = _class_dirs(split_dirs[0])
    test_classes = _class_dirs(split_dirs[1])
    if not classes:
        raise DataError(f"{split_dirs[0]}: no class folders")
    if test_classes != classes:
        missing = sorted(set(classes) - set(test_classes))
        extra = sorted(set(test_classes) - set(classes))
        raise DataError(
            f"{split_dirs[1]}: class folders differ from train/ (missing {missing}, extra {extra})"
        )
    train_files, train_labels = _class_images(split_dirs[0], classes)
    test_files, test_labels = _class_images(split_dirs[1], classes)
    return _read_imagefolder(
        train_files + test_files,
        len(train_files),
        tuple(train_labels + test_labels),
        tuple(classes),
        resize,
    )


def _class_dirs(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_images(d: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        images = sorted(
            f for f in (d / cls).iterdir() if f.suffix.lower() in _IMAGE_EXTS and f.is_file()
        )
        if not images:
            raise DataError(f"{d / cls}: empty class folder (no {'/'.join(_IMAGE_EXTS)} images)")
        files += images
        labels += [label] * len(images)
    return files, labels


@_cached_by_files
def _read_imagefolder(
    files: tuple[Path, ...],
    n_train: int,
    labels: tuple[int, ...],
    classes: tuple[str, ...],
    resize: int | None,
) -> _Source:
    images = []
    for f in files:
        img = _decode_image(f)
        if resize is not None:
            img = _resize(img[None], resize)[0]
        elif images and img.shape[1:] != images[0].shape[1:]:
            h0, w0 = images[0].shape[1:]
            raise DataError(
                f"{f}: size {img.shape[2]}x{img.shape[1]} differs from {files[0]}'s "
                f"{w0}x{h0} (pass resize=N to resize every image)"
            )
        images.append(img)
    # One colour image makes the whole set colour: a batch needs one channel count.
    chans = max(img.shape[0] for img in images)
    x = torch.stack([img.expand(chans, -1, -1) for img in images])
    y = torch.tensor(labels, dtype=torch.int64)
    return _Source(x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, hflip=True)


def _decode_image(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a broken file fails here and is named
            if im.mode.startswith("I;16"):  # 16-bit grey: keep the high byte (convert() clips)
                arr = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
            elif im.mode in ("1", "L", "LA", "I", "F"):
                arr = np.asarray(im.convert("L"))
            else:
                arr = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot decode image: {e}") from None
    t = torch.from_numpy(arr.copy())
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


# ---- CIFAR-10 ------------------------------------------------------------------------------------


def _cifar10(root: Path) -> _Source:
    for d, suffix in (
        (root, ""),
        (root / "cifar-10-batches-py", ""),
        (root, ".bin"),
        (root / "cifar-10-batches-bin", ".bin"),
    ):
        files = [d / f"{stem}{suffix}" for stem in _CIFAR_STEMS]
        if any(f.is_file() for f in files):
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise DataError(
                    f"{missing[0]}: missing (CIFAR-10 needs data_batch_1..5, test_batch)"
                )
            meta = d / ("batches.meta.txt" if suffix else "batches.meta")
            return _read_cifar10(files + ([meta] if meta.is_file() else []))
    raise DataError(
        f"{root}: no CIFAR-10 batch files (data_batch_1..5 and test_batch, python or .bin)"
    )


@_cached_by_files
def _read_cifar10(files: tuple[Path, ...]) -> _Source:
    read = _read_cifar_bin if files[0].suffix == ".bin" else _read_cifar_py
    parts = [read(f) for f in files[: len(_CIFAR_STEMS)]]
    classes = _read_cifar_meta(files[-1]) if len(files) > len(_CIFAR_STEMS) else CIFAR10_CLASSES
    for f, (_, y) in zip(files, parts, strict=False):  # files may end with the meta file
        _check_labels(f, y, len(classes))
    train_x = torch.cat([x for x, _ in parts[:-1]])
    train_y = torch.cat([y for _, y in parts[:-1]])
    return _Source(train_x, train_y, *parts[-1], classes=classes, hflip=True)


def _read_cifar_bin(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    blob = _read_bytes(path)
    if not blob or len(blob) % _CIFAR_RECORD:
        raise DataError(
            f"{path}: truncated: {len(blob)} bytes is not a whole number of "
            f"{_CIFAR_RECORD}-byte records"
        )
    records = torch.frombuffer(bytearray(blob), dtype=torch.uint8).view(-1, _CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32).clone(), records[:, 0].long()


# Globals a CIFAR-10 python batch may name: numpy's array rebuilders (numpy 1 and 2 spellings)
# and the bytes helper of protocol-2 pickles; anything else is refused.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler limited to numpy arrays and plain containers."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _unpickle(path: Path) -> object:
    # CIFAR-10's python version ships only as pickles, the standard files the user points us at;
    # the allow-list above keeps a tampered file from running code.
    try:
        return _CifarUnpickler(io.BytesIO(_read_bytes(path)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise DataError(f"{path}: not a CIFAR-10 python batch: {e}") from None


def _read_cifar_py(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 python batch: no b'data' and b'labels' entries")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != _CIFAR_RECORD - 1:
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{path}: wrong size: data is {shape}, expected (N, {_CIFAR_RECORD - 1})")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    x = torch.from_numpy(data.astype(np.uint8).reshape(-1, 3, 32, 32))
    return x, torch.as_tensor(np.asarray(labels, dtype=np.int64))


def _read_cifar_meta(path: Path) -> tuple[str, ...]:
    if path.suffix == ".txt":
        names = path.read_text().split("\n")
    else:
        meta = _unpickle(path)
        names = meta.get(b"label_names", []) if isinstance(meta, dict) else []
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise DataError(f"{path}: no class names")
    return tuple(names)


# ---- synthetic -----------------------------------------------------------------------------------


def _synthetic_n(name: str, arg: str) -> int:
    if name == "synthetic":
        return _SYNTHETIC_DEFAULT_N
    if not arg.isdigit() or int(arg) < _SYNTHETIC_CLASSES:
        raise DataError(
            f"{name!r}: N in synthetic:N must be an integer >= {_SYNTHETIC_CLASSES} (one per class)"
        )
    return int(arg)


def _synthetic(n: int, seed: int) -> _Source:
    """Ten smooth random 28x28 templates, shifted, contrast-jittered and noised per image."""
    g = torch.Generator().manual_seed(seed)
    # Upsampled 7x7 noise gives blob shapes a small CNN picks up in an epoch or two.
    coarse = torch.randn(_SYNTHETIC_CLASSES, 1, 7, 7, generator=g)
    templates = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=False)
    templates /= templates.flatten(1).abs().amax(1).view(-1, 1, 1, 1)
    train_x, train_y = _synthetic_split(templates, n, g)
    test_x, test_y = _synthetic_split(templates, n // 4, g)
    classes = tuple(f"pattern{i}" for i in range(_SYNTHETIC_CLASSES))
    return _Source(train_x, train_y, test_x, test_y, classes, hflip=False)


def _synthetic_split(
    templates: torch.Tensor, n: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    y = (torch.arange(n) % _SYNTHETIC_CLASSES)[torch.randperm(n, generator=g)]
    x = augment(templates[y], pad=3, hflip=False, generator=g)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.5, 1.0, generator=g)
    x = x * contrast + 0.35 * torch.randn(x.shape, generator=g)
    return (128 + 100 * x).round_().clamp_(0, 255).to(torch.uint8), y
