"""Dataset files read into uint8 tensors and checked: Fashion-MNIST and other IDX files, image
folders, CIFAR-10. Every error names the file and what is wrong.
"""

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from archlab.errors import UserError

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

_IMAGE_EXTS = (".png", ".jpg", ".jpeg")
_CIFAR_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_CIFAR_RECORD = 1 + 3 * 32 * 32
_RESIZE_CHUNK = 4096  # images per interpolate call: bounds the float copy when upscaling

log = logging.getLogger(__name__)


class DataError(UserError):
    """Bad or missing data; one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Source:
    """A dataset as stored: full train and test splits, before subsetting or resizing."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    hflip: bool


def fashion_mnist() -> Source:
    """Fashion-MNIST, found on disk or downloaded, every file's SHA-256 checked."""
    return _read_idx_source(_find_fashion_mnist(), True)


def idx(root: Path) -> Source:
    """The four IDX files (MNIST layout, raw or .gz) in ``root``."""
    return _read_idx_source(_idx_files(root), False)


def resize_images(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 NCHW images resized to size x size (bilinear, antialiased when shrinking)."""
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


def _cached_by_files(fn: Callable[..., Source]) -> Callable[..., Source]:
    """Memoize fn(files, *args) per process, keyed on the files' paths, sizes and mtimes."""

    # Studies load the same data for many runs; 4 entries bound the memory held.
    @functools.lru_cache(maxsize=4)
    def cached(stamp: tuple, files: tuple[Path, ...], *args: object) -> Source:
        return fn(files, *args)

    @functools.wraps(fn)
    def wrapper(files: Sequence[Path], *args: object) -> Source:
        stats = [f.stat() for f in files]
        stamp = tuple((str(f), s.st_mtime_ns, s.st_size) for f, s in zip(files, stats, strict=True))
        return cached(stamp, tuple(files), *args)

    return wrapper


def _check_labels(path: Path, labels: torch.Tensor, num_classes: int) -> None:
    if not len(labels):
        return
    # a pickled CIFAR batch may hold any integer: a negative label is as wrong as a large one
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise DataError(f"{path}: label {bad} out of range for {num_classes} classes")


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
def _read_idx_source(files: tuple[Path, ...], fashion: bool) -> Source:
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
    return Source(*splits, classes=classes, hflip=fashion)


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


def imagefolder(root: Path, resize: int | None) -> Source:
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
) -> Source:
    images = []
    for f in files:
        img = _decode_image(f)
        if resize is not None:
            img = resize_images(img[None], resize)[0]
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
    return Source(x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, hflip=True)


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


def cifar10(root: Path) -> Source:
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
def _read_cifar10(files: tuple[Path, ...]) -> Source:
    read = _read_cifar_bin if files[0].suffix == ".bin" else _read_cifar_py
    parts = [read(f) for f in files[: len(_CIFAR_STEMS)]]
    classes = _read_cifar_meta(files[-1]) if len(files) > len(_CIFAR_STEMS) else CIFAR10_CLASSES
    for f, (_, y) in zip(files, parts, strict=False):  # files may end with the meta file
        _check_labels(f, y, len(classes))
    train_x = torch.cat([x for x, _ in parts[:-1]])
    train_y = torch.cat([y for _, y in parts[:-1]])
    return Source(train_x, train_y, *parts[-1], classes=classes, hflip=True)


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
