"""Tests for archlab.train.data and .sources: loaders, error messages, splits, normalization,
augmentation."""

import gzip
import hashlib
import io
import pickle
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

from archlab.cli import main
from archlab.errors import UserError
from archlab.train import sources
from archlab.train.data import DataError, augment, batches, load_dataset, normalize

# ---- file builders -------------------------------------------------------------------------------


def idx_bytes(magic: int, arr: np.ndarray) -> bytes:
    return struct.pack(f">i{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def write(path: Path, blob: bytes, gz: bool) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def id_images(n: int, offset: int = 0) -> np.ndarray:
    """Images whose first two pixels encode their index, so splits can be traced."""
    x = np.zeros((n, 28, 28), np.uint8)
    ids = np.arange(offset, offset + n)
    x[:, 0, 0], x[:, 0, 1] = ids % 256, ids // 256
    x[:, 5:20, 5:20] = (ids % 200 + 30)[:, None, None]
    return x


def make_idx(root: Path, n_train: int = 40, n_test: int = 10, gz: bool = True) -> dict:
    """Write the four IDX files; return {stem: decompressed bytes}."""
    root.mkdir(parents=True, exist_ok=True)
    blobs = {
        "train-images-idx3-ubyte": idx_bytes(2051, id_images(n_train)),
        "train-labels-idx1-ubyte": idx_bytes(2049, np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(2051, id_images(n_test, 1000)),
        "t10k-labels-idx1-ubyte": idx_bytes(2049, np.arange(n_test) % 10),
    }
    for stem, blob in blobs.items():
        write(root / stem, blob, gz)
    return blobs


def save_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, size=(8, 8)) -> None:
    for split in ("train", "test"):
        for k, cls in enumerate(classes):
            for i in range(per_class):
                save_png(root / split / cls / f"{i}.png", np.full(size, 10 * k + i, np.uint8))


def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)


def make_cifar(root: Path, binary: bool, n: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for seed, stem in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x, y = cifar_arrays(n, seed)
        if binary:
            records = np.concatenate([y[:, None].astype(np.uint8), x], axis=1)
            (root / f"{stem}.bin").write_bytes(records.tobytes())
        else:
            batch = {b"data": x, b"labels": y.tolist(), b"batch_label": stem.encode()}
            (root / stem).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.fixture
def no_fmnist(tmp_path, monkeypatch):
    """A world with Fashion-MNIST nowhere on the search path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    monkeypatch.setattr(sources, "_SYSTEM_FMNIST_DIR", tmp_path / "nowhere")
    return tmp_path


# ---- IDX / Fashion-MNIST -------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_loads_gzipped_and_raw(tmp_path, gz):
    make_idx(tmp_path, gz=gz)
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.train_x.shape == (40, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (10, 1, 28, 28) and ds.test_y.dtype == torch.int64
    assert ds.val_x.shape == (0, 1, 28, 28)
    assert torch.equal(ds.train_y, torch.arange(40) % 10)
    assert torch.equal(ds.train_x[:, 0, 0, 0], torch.arange(40, dtype=torch.uint8))
    assert ds.classes == [str(i) for i in range(10)] and not ds.hflip
    assert (ds.num_classes, ds.in_chans, ds.image_size, ds.image_hw) == (10, 1, 28, (28, 28))


def test_idx_wrong_magic(tmp_path):
    make_idx(tmp_path)
    bad = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(2049, id_images(40)), gz=True)
    with pytest.raises(DataError, match=rf"{bad}: bad magic number 2049, expected 2051"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_truncated(tmp_path):
    make_idx(tmp_path)
    blob = idx_bytes(2051, id_images(40))
    bad = write(tmp_path / "train-images-idx3-ubyte", blob[:-100], gz=True)
    msg = rf"{bad}: truncated: expected {len(blob)} bytes, found {len(blob) - 100}"
    with pytest.raises(DataError, match=msg):
        load_dataset(f"idx:{tmp_path}")


def test_idx_count_mismatch(tmp_path):
    make_idx(tmp_path)
    bad = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(2049, np.zeros(9)), gz=True)
    with pytest.raises(DataError, match=rf"{bad}: 9 labels for the 10 images"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_corrupt_gzip(tmp_path):
    make_idx(tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(2049, np.zeros(40)))[:-12])
    with pytest.raises(DataError, match=rf"{bad}: corrupt gzip"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_missing_file(tmp_path):
    make_idx(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing IDX file t10k-images-idx3-ubyte"):
        load_dataset(f"idx:{tmp_path}")


def test_cache_follows_file_changes_and_is_not_shared(tmp_path):
    make_idx(tmp_path, n_train=40)
    first = load_dataset(f"idx:{tmp_path}")
    first.train_x.zero_()
    first.test_x.zero_()
    again = load_dataset(f"idx:{tmp_path}")
    assert int(again.train_x[1, 0, 0, 0]) == 1 and int(again.test_x.max()) > 0
    make_idx(tmp_path, n_train=30)
    assert len(load_dataset(f"idx:{tmp_path}").train_y) == 30


def fake_fmnist_hashes(monkeypatch, blobs: dict) -> None:
    hashes = {stem: hashlib.sha256(blob).hexdigest() for stem, blob in blobs.items()}
    monkeypatch.setattr(sources, "_FMNIST_SHA256", hashes)


@pytest.mark.parametrize("subdir", ["", "fashion-mnist"])
def test_fashion_mnist_found_via_env(no_fmnist, monkeypatch, subdir):
    blobs = make_idx(no_fmnist / "d" / subdir, gz=False)
    fake_fmnist_hashes(monkeypatch, blobs)
    monkeypatch.setenv("ARCHLAB_DATA", str(no_fmnist / "d"))
    ds = load_dataset("fashion-mnist")
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot" and ds.hflip
    assert len(ds.train_y) == 40


def test_fashion_mnist_checksum_mismatch(no_fmnist, monkeypatch):
    blobs = make_idx(no_fmnist / "data" / "fashion-mnist")
    fake_fmnist_hashes(monkeypatch, blobs)
    bad = write(no_fmnist / "data/fashion-mnist/t10k-labels-idx1-ubyte", b"x" * 30, gz=True)
    with pytest.raises(DataError, match=rf"{bad}: SHA-256 of the decompressed data is"):
        load_dataset("fashion-mnist")


def test_fashion_mnist_missing_with_download_disabled(no_fmnist, monkeypatch):
    monkeypatch.setenv("ARCHLAB_NO_DOWNLOAD", "1")
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist")
    msg = str(err.value)
    assert "\n" not in msg and "ARCHLAB_NO_DOWNLOAD" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "ARCHLAB_DATA" in msg


def test_fashion_mnist_download_failure_is_a_data_error(no_fmnist, monkeypatch):
    monkeypatch.delenv("ARCHLAB_NO_DOWNLOAD", raising=False)

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sources.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="download from .* failed .*apt-get install"):
        load_dataset("fashion-mnist")


def test_fashion_mnist_download_verifies_and_saves(no_fmnist, monkeypatch):
    blobs = make_idx(no_fmnist / "src", gz=False)
    fake_fmnist_hashes(monkeypatch, blobs)
    monkeypatch.delenv("ARCHLAB_NO_DOWNLOAD", raising=False)
    fetched = []

    def fake_urlopen(url, timeout):
        fetched.append(url)
        return io.BytesIO(gzip.compress(blobs[url.rsplit("/", 1)[1].removesuffix(".gz")]))

    monkeypatch.setattr(sources.urllib.request, "urlopen", fake_urlopen)
    assert len(load_dataset("fashion-mnist").test_y) == 10
    assert len(fetched) == 4
    assert sorted(p.name for p in (no_fmnist / "data/fashion-mnist").iterdir()) == sorted(
        f"{stem}.gz" for stem in blobs
    )


@pytest.mark.usefixtures("real_fashion_mnist")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    monkeypatch.setenv("ARCHLAB_NO_DOWNLOAD", "1")
    checked = []
    real_check = sources._check_sha256
    monkeypatch.setattr(sources, "_check_sha256", lambda *a: checked.append(a[0]) or real_check(*a))
    files = sources._find_fashion_mnist()
    ds = sources._read_idx_source.__wrapped__(files, True)  # bypass the cache: hashes must run
    assert [f.name.split(".")[0] for f in checked] == list(sources._FMNIST_SHA256)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    full = load_dataset("fashion-mnist")
    assert full.train_x.shape == (60000, 1, 28, 28) and full.test_y.shape == (10000,)
    assert int(full.train_y.min()) == 0 and int(full.train_y.max()) == 9
    assert torch.equal(torch.bincount(full.test_y), torch.full((10,), 1000))
    assert full.mean[0] == pytest.approx(0.2860, abs=1e-4)
    assert full.std[0] == pytest.approx(0.3530, abs=1e-4)


# ---- image folders -------------------------------------------------------------------------------


def test_imagefolder_grey(tmp_path):
    make_folder(tmp_path, classes=("dog", "cat"))
    save_png(tmp_path / "train/cat/upper.PNG", np.full((8, 8), 99, np.uint8))
    (tmp_path / "train/cat/notes.txt").write_text("not an image")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ["cat", "dog"] and ds.hflip
    assert ds.train_x.shape == (7, 1, 8, 8) and ds.test_x.shape == (6, 1, 8, 8)
    assert ds.train_y.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert ds.train_x[:, 0, 0, 0].tolist() == [10, 11, 12, 99, 0, 1, 2]


def test_imagefolder_colour_makes_all_rgb(tmp_path):
    make_folder(tmp_path)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50
    save_png(tmp_path / "train/dog/colour.png", rgb)
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.in_chans == 3 and ds.test_x.shape == (6, 3, 8, 8)
    assert ds.train_x[1, :, 0, 0].tolist() == [1, 1, 1]  # grey replicated
    assert ds.train_x[-1, :, 0, 0].tolist() == [200, 0, 50]
    assert len(ds.mean) == len(ds.std) == 3


def test_imagefolder_jpeg_and_16_bit_png(tmp_path):
    make_folder(tmp_path)
    Image.fromarray(np.full((8, 8), 120, np.uint8)).save(tmp_path / "train/cat/x.JPEG")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "test/cat/deep.png")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert abs(int(ds.train_x[3, 0, 4, 4]) - 120) <= 2
    assert int(ds.test_x[3, 0, 4, 4]) == 40000 >> 8


def test_imagefolder_non_square(tmp_path):
    make_folder(tmp_path, size=(6, 10))
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.image_hw == (6, 10) and ds.image_size == 6


def test_imagefolder_mixed_sizes(tmp_path):
    make_folder(tmp_path)
    odd = tmp_path / "test/dog/2.png"
    save_png(odd, np.zeros((9, 8), np.uint8))
    with pytest.raises(DataError, match=rf"{odd}: size 8x9 differs from .*0.png's 8x8 .*resize"):
        load_dataset(f"imagefolder:{tmp_path}")
    ds = load_dataset(f"imagefolder:{tmp_path}", resize=12)
    assert ds.train_x.shape == (6, 1, 12, 12) and ds.test_x.shape == (6, 1, 12, 12)


def test_imagefolder_empty_class(tmp_path):
    make_folder(tmp_path)
    for f in (tmp_path / "test/cat").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"{tmp_path / 'test/cat'}: empty class folder"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_undecodable(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "train/dog/broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match=rf"{bad}: cannot decode image"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_missing_test_split(tmp_path):
    make_folder(tmp_path)
    for f in (tmp_path / "test").rglob("*.png"):
        f.unlink()
    for d in (tmp_path / "test").iterdir():
        d.rmdir()
    (tmp_path / "test").rmdir()
    with pytest.raises(DataError, match=rf"{tmp_path / 'test'}: missing"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_class_mismatch(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "test/cat").rename(tmp_path / "test/cow")
    with pytest.raises(
        DataError, match=r"class folders differ .*missing \['cat'\], extra \['cow'\]"
    ):
        load_dataset(f"imagefolder:{tmp_path}")


# ---- CIFAR-10 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_cifar10_batches(tmp_path, binary):
    root = tmp_path / ("cifar-10-batches-bin" if binary else "cifar-10-batches-py")
    make_cifar(root, binary)
    if not binary:
        names = [f"c{i}".encode() for i in range(10)]
        (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    ds = load_dataset(f"cifar10:{tmp_path}")
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    x, y = cifar_arrays(4, 5)
    assert torch.equal(ds.test_x, torch.from_numpy(x.reshape(4, 3, 32, 32)))  # channel planes
    assert ds.test_y.tolist() == y.tolist() and ds.hflip
    assert ds.classes == (
        [f"c{i}" for i in range(10)] if not binary else list(sources.CIFAR10_CLASSES)
    )


def test_cifar10_truncated_binary(tmp_path):
    make_cifar(tmp_path, binary=True)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(DataError, match=rf"{bad}: truncated: 12291 bytes .*3073-byte records"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_python_wrong_size(tmp_path):
    make_cifar(tmp_path, binary=False)
    bad = tmp_path / "test_batch"
    bad.write_bytes(pickle.dumps({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4}))
    with pytest.raises(DataError, match=rf"{bad}: wrong size: data is \(4, 3000\)"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_refuses_foreign_pickle_globals(tmp_path):
    make_cifar(tmp_path, binary=False)
    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DataError, match=rf"{bad}: not a CIFAR-10 python batch: refusing"):
        load_dataset(f"cifar10:{tmp_path}")


def _set_cifar_label(path: Path, binary: bool, index: int, label: int) -> None:
    """Rewrite one label of a written CIFAR batch."""
    if binary:
        records = bytearray(path.read_bytes())
        records[index * 3073] = label  # the label byte leads each 3073-byte record
        path.write_bytes(bytes(records))
    else:
        batch = pickle.loads(path.read_bytes())
        batch[b"labels"][index] = label
        path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize(
    ("binary", "stem", "label"),
    [(True, "data_batch_2.bin", 10), (True, "test_batch.bin", 255), (False, "test_batch", 12)],
)
def test_cifar10_label_out_of_range_names_the_file(tmp_path, capsys, binary, stem, label):
    make_cifar(tmp_path, binary)
    bad = tmp_path / stem
    _set_cifar_label(bad, binary, 1, label)
    with pytest.raises(UserError, match=rf"{bad}: label {label} out of range for 10 classes"):
        load_dataset(f"cifar10:{tmp_path}")
    # and at the command line: one line naming the file, exit 2, nothing trained
    assert main(["train", "--dataset", f"cifar10:{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "out of range" in err and "Traceback" not in err


def test_cifar10_label_beyond_the_meta_files_classes(tmp_path):
    make_cifar(tmp_path, binary=False)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"]}))
    x, y = cifar_arrays(4, 0)  # data_batch_1's labels reach 3 or more
    assert y.max() >= 3
    with pytest.raises(DataError, match=rf"data_batch_1: label {y.max()} out of range for 3 clas"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_negative_label_names_the_file(tmp_path):
    make_cifar(tmp_path, binary=False)
    bad = tmp_path / "data_batch_4"
    _set_cifar_label(bad, False, 0, -1)
    with pytest.raises(DataError, match=rf"{bad}: label -1 out of range for 10 classes"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar10_missing_batch(tmp_path):
    make_cifar(tmp_path, binary=True)
    (tmp_path / "data_batch_5.bin").unlink()
    with pytest.raises(DataError, match="data_batch_5.bin: missing"):
        load_dataset(f"cifar10:{tmp_path}")


# ---- names and options ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "imagefolder:", "cifar100:/x", "Synthetic"])
def test_unknown_name_lists_valid_forms(name):
    with pytest.raises(DataError, match="unknown dataset .*fashion-mnist, synthetic, synthetic:N"):
        load_dataset(name)


def test_bad_paths_and_synthetic_sizes(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_dataset(f"cifar10:{tmp_path / 'absent'}")
    with pytest.raises(DataError, match="no CIFAR-10 batch files"):
        load_dataset(f"cifar10:{tmp_path}")
    for name in ("synthetic:abc", "synthetic:5", "synthetic:-20"):
        with pytest.raises(DataError, match="must be an integer >= 10"):
            load_dataset(name)


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("train_subset", 0, r"\[1, 100\]"),
        ("train_subset", 101, r"\[1, 100\]"),
        ("train_subset", 2.5, r"\[1, 100\]"),
        ("val_size", -1, r"\[0, 99\]"),
        ("val_size", 100, r"\[0, 99\]"),
        ("resize", 0, r"\[1, 1024\]"),
        ("resize", 5000, r"\[1, 1024\]"),
        ("resize", True, r"\[1, 1024\]"),
    ],
)
def test_bad_options(option, value, allowed):
    with pytest.raises(DataError, match=rf"^{option}={value!r}: must be an integer in {allowed}"):
        load_dataset("synthetic:100", **{option: value})
    with pytest.raises(DataError, match=r"train_subset=91: .*\[1, 90\]"):
        load_dataset("synthetic:100", val_size=10, train_subset=91)


def ids(x: torch.Tensor) -> list[int]:
    return (x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long()).tolist()


def test_val_split_is_disjoint_and_fixed_across_subsets(tmp_path):
    make_idx(tmp_path, n_train=300)
    name = f"idx:{tmp_path}"
    a = load_dataset(name, val_size=50, seed=3)
    b = load_dataset(name, val_size=50, train_subset=100, seed=3)
    c = load_dataset(name, val_size=50, train_subset=100, seed=4)
    assert len(ids(a.val_x)) == 50 and len(ids(b.train_x)) == 100
    assert set(ids(a.train_x)) | set(ids(a.val_x)) == set(range(300))
    assert not set(ids(a.train_x)) & set(ids(a.val_x))
    assert ids(a.val_x) == ids(b.val_x) and set(ids(b.train_x)) <= set(ids(a.train_x))
    assert ids(b.train_x) != ids(c.train_x)
    assert torch.equal(b.val_y, torch.tensor(ids(b.val_x)) % 10)  # labels follow their images
    assert ids(load_dataset(name, val_size=50, train_subset=100, seed=3).train_x) == ids(b.train_x)


def test_resize_and_channel_stats(tmp_path):
    make_folder(tmp_path, per_class=2)
    ds = load_dataset(f"imagefolder:{tmp_path}", resize=3)
    assert ds.train_x.shape == (4, 1, 3, 3) and ds.train_x.dtype == torch.uint8
    assert ds.train_x[:, 0].flatten(1).tolist() == [[v] * 9 for v in (0, 1, 10, 11)]  # flat stays
    syn = load_dataset("synthetic:200", resize=40, val_size=20)
    assert syn.train_x.shape == (180, 1, 40, 40) and syn.val_x.shape == (20, 1, 40, 40)
    assert syn.test_x.shape == (50, 1, 40, 40)
    x = syn.train_x.double() / 255
    assert syn.mean[0] == pytest.approx(x.mean().item(), abs=1e-12)
    assert syn.std[0] == pytest.approx(x.std(unbiased=False).item(), abs=1e-12)


def test_upsample_keeps_the_low_resolution_information_at_the_larger_size():
    low = load_dataset("synthetic:200", resize=14, val_size=20)
    up = load_dataset("synthetic:200", resize=14, upsample=28, val_size=20)
    assert up.train_x.shape == (180, 1, 28, 28) and up.test_x.shape == (50, 1, 28, 28)
    # back down to 14 px the upsampled images are close to the low-resolution ones, far closer
    # than they are to the full-resolution images at 28 px: the detail is gone, none comes back
    again = sources.resize_images(up.train_x, 14).float()
    full = load_dataset("synthetic:200", val_size=20)
    kept = (again - low.train_x.float()).abs().mean()
    lost = (up.train_x.float() - full.train_x.float()).abs().mean()
    assert kept < lost / 2, (kept, lost)


# ---- normalize, augment, batches -----------------------------------------------------------------


def test_normalize():
    ds = load_dataset("synthetic:200")
    x = normalize(ds.train_x, ds.mean, ds.std)
    assert x.dtype == torch.float32 and x.shape == ds.train_x.shape
    assert abs(x.mean().item()) < 1e-4 and x.std(unbiased=False).item() == pytest.approx(1, 1e-4)
    xb = normalize(ds.train_x, ds.mean, ds.std, dtype=torch.bfloat16)
    assert xb.dtype == torch.bfloat16 and torch.allclose(xb.float(), x, atol=0.05)
    with pytest.raises(TypeError, match="uint8"):
        normalize(x, ds.mean, ds.std)
    with pytest.raises(ValueError, match="1 channels but 3 means"):
        normalize(ds.train_x, (0.5,) * 3, (0.2,) * 3)


def matches_window(out: torch.Tensor, img: torch.Tensor, pad: int) -> bool:
    padded = torch.nn.functional.pad(img, (pad,) * 4)
    h, w = img.shape[-2:]
    windows = [
        padded[:, dy : dy + h, dx : dx + w]
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
    ]
    return any(torch.equal(out, win) or torch.equal(out, win.flip(-1)) for win in windows)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_crops_are_shifted_windows(dtype):
    x = torch.randint(1, 256, (64, 2, 9, 9), generator=torch.Generator().manual_seed(0))
    x = x.to(dtype)
    out = augment(x, pad=2, hflip=True, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == dtype
    assert all(matches_window(out[i], x[i], 2) for i in range(len(x)))
    zero_rows = (out == 0).all(dim=(1, 3)).sum().item()  # some crops must reach into the padding
    assert 0 < zero_rows
    again = augment(x, pad=2, hflip=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert not torch.equal(out, augment(x, pad=2, hflip=True, generator=torch.Generator()))


def test_augment_flips_about_half():
    x = torch.arange(8, dtype=torch.uint8).expand(2000, 1, 4, 8).contiguous()
    out = augment(x, pad=0, hflip=True, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).float()
    assert torch.equal(out[flipped.bool()], x[flipped.bool()].flip(-1))
    assert torch.equal(out[~flipped.bool()], x[~flipped.bool()])
    assert 0.45 < flipped.mean().item() < 0.55
    assert augment(x, pad=0, hflip=False, generator=torch.Generator()) is x
    with pytest.raises(ValueError, match="pad"):
        augment(x, pad=-1, hflip=False, generator=torch.Generator())


def test_batches():
    g = torch.Generator().manual_seed(0)
    got = list(batches(10, 4, shuffle=True, generator=g))
    assert [len(b) for b in got] == [4, 4, 2]
    assert sorted(torch.cat(got).tolist()) == list(range(10))
    assert torch.cat(got).tolist() != list(range(10))
    again = list(batches(10, 4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a, b) for a, b in zip(got, again, strict=True))
    plain = list(batches(10, 4, shuffle=False, generator=None, drop_last=True))
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert list(batches(0, 4, shuffle=True, generator=None)) == []
    with pytest.raises(ValueError, match="batch_size"):
        batches(10, 0, shuffle=False, generator=None)


# ---- synthetic -----------------------------------------------------------------------------------


class CountTorchCalls(TorchFunctionMode):
    """Counts torch function and tensor-method calls made inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def test_synthetic_generation_is_vectorized():
    """As many torch calls for 2048 images as for 100: no per-image Python loop, so generating
    the default set stays a fraction of a second on any machine (no wall-clock bound here)."""
    calls = {}
    for n in (100, 2048):
        with CountTorchCalls() as counter:
            ds = load_dataset(f"synthetic:{n}", seed=3)
        assert len(ds.train_y) == n
        calls[n] = counter.calls
    assert calls[2048] == calls[100], calls
    assert calls[100] < 1000  # a few hundred batched ops


def test_synthetic_deterministic_balanced_learnable():
    ds = load_dataset("synthetic")
    assert ds.train_x.shape == (2048, 1, 28, 28) and ds.test_x.shape == (512, 1, 28, 28)
    assert not ds.hflip and ds.num_classes == 10
    counts = torch.bincount(ds.train_y, minlength=10)
    assert counts.max() - counts.min() <= 1
    same = load_dataset("synthetic", seed=0)
    other = load_dataset("synthetic", seed=1)
    assert torch.equal(ds.train_x, same.train_x) and torch.equal(ds.test_y, same.test_y)
    assert not torch.equal(ds.train_x, other.train_x)
    # Nearest class mean on raw pixels already far above the 10% of chance.
    x = normalize(ds.train_x, ds.mean, ds.std).flatten(1)
    centroids = torch.stack([x[ds.train_y == k].mean(0) for k in range(10)])
    test = normalize(ds.test_x, ds.mean, ds.std).flatten(1)
    accuracy = (torch.cdist(test, centroids).argmin(1) == ds.test_y).float().mean().item()
    assert accuracy > 0.6
    small = load_dataset("synthetic:100")
    assert len(small.train_y) == 100 and len(small.test_y) == 25
