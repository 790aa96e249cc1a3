"""Study files are data, loaders run no code, passwords stay secret, reports escape every string."""

from __future__ import annotations

import ast
import os
import pickle
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

import archlab
from archlab.study.engine import run_study
from tests.pgserver import PASSWORD
from tests.studykit import CONV5, one_torch_thread, run_cli, run_main, tree, write_study

PACKAGE = Path(archlab.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_torch_thread()


# --- study files are data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['touch {marker}']\n",
        "name: evil\ntitle: !!python/object/apply:os.system ['touch {marker}']\n",
        "name: evil\nmodel: !!python/name:os.system\n",
    ],
    ids=["whole-file", "in-a-value", "python-name"],
)
def test_python_yaml_tags_are_refused_and_never_run(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(text.format(marker=marker))
    rc, out, err = run_main(capsys, "study", "run", str(path), "--results", str(tmp_path / "r"))
    assert rc == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "invalid YAML" in err and "could not determine a constructor" in err
    assert not marker.exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("edit", "args", "expect"),
    [
        (("{conv5x5: 5x5}", "{conv5x5: os.system}"), (), "'os.system' is not a conv5x5 option"),
        (("{conv5x5: 5x5}", "{os.system: 5x5}"), (), "os.system: unknown key"),
        (("{conv5x5: 5x5}", "{stem: subprocess.Popen}"), (), "'subprocess.Popen' is not a stem"),
        (("title:", "model: os.system\ntitle:"), (), "'os.system' is not a model"),
        (("title:", "kind: builtins.eval\ntitle:"), (), "'builtins.eval' is not a study kind"),
        ((), ("--set", "factor_act=os.system"), "'os.system' is not an option"),
        ((), ("--set", "dataset=os.system"), "unknown dataset 'os.system'"),
    ],
    ids=["option", "axis", "option-class", "model", "kind", "set-option", "set-dataset"],
)
def test_only_registered_names_are_accepted(
    edit: tuple[str, str] | tuple[()],
    args: tuple[str, ...],
    expect: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_study(tmp_path, "named")
    if edit:
        path.write_text(path.read_text().replace(*edit))
    rc, _, err = run_main(capsys, "study", "run", str(path), "--scale", "smoke", "--results",
                      str(tmp_path / "r"), *args)  # fmt: skip
    assert rc == 2 and expect in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_cifar_pickles_cannot_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    data = tmp_path / "cifar"
    data.mkdir()
    for stem in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (data / stem).write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    path = write_study(tmp_path, "pickled")
    rc, _, err = run_main(capsys, "study", "run", str(path), "--scale", "smoke", "--results",
                      str(tmp_path / "r"), "--set", f"dataset=cifar10:{data}")  # fmt: skip
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "data_batch_1: not a CIFAR-10 python batch: refusing to load global" in err
    assert "system" in err and not marker.exists()


# --- no unsafe loader anywhere in the package ----------------------------------------------------


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` of an attribute chain; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


UNSAFE_YAML = {"load", "load_all", "full_load", "full_load_all", "unsafe_load",
               "unsafe_load_all", "Loader", "FullLoader", "UnsafeLoader"}  # fmt: skip
CODE_LOADING_MODULES = {"marshal", "shelve", "dill", "cloudpickle", "joblib"}


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Unsafe deserialization in Python source: one entry per offending line."""
    found = []
    allowed_pickle = filename.endswith(os.path.join("archlab", "train", "sources.py"))
    for node in ast.walk(ast.parse(source)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("eval", "exec", "__import__"):
                found.append(f"{where}: {name}()")
            if name.endswith("torch.load"):
                safe = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                if not safe:
                    found.append(f"{where}: torch.load without weights_only=True")
            if name.endswith(("np.load", "numpy.load")) and any(
                k.arg == "allow_pickle" for k in node.keywords
            ):
                found.append(f"{where}: np.load with allow_pickle")
        elif isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name.startswith("yaml.") and node.attr in UNSAFE_YAML:
                found.append(f"{where}: {name}")
            if name in ("pickle.load", "pickle.loads", "pickle.Unpickler"):
                # only the CIFAR loader, and only by subclassing the unpickler it restricts
                if not (allowed_pickle and name == "pickle.Unpickler"):
                    found.append(f"{where}: {name}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules.append(node.module or "")
                if node.module in ("torch", "pickle", "yaml") and any(
                    a.name in ("load", "loads", "Unpickler", *UNSAFE_YAML) for a in node.names
                ):
                    found.append(f"{where}: from {node.module} import a loader")
            for m in modules:
                if m.split(".")[0] in CODE_LOADING_MODULES:
                    found.append(f"{where}: import {m}")
                if m == "pickle" and not allowed_pickle:
                    found.append(f"{where}: import pickle")
    return found


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import torch\nx = torch.load(f)\n", True),
        ("import torch\nx = torch.load(f, weights_only=False)\n", True),
        ("import torch\nx = torch.load(f, weights_only=True)\n", False),
        ("from torch import load\n", True),
        ("import pickle\npickle.loads(b)\n", True),
        ("import yaml\nyaml.load(s, Loader=yaml.Loader)\n", True),
        ("import yaml\nyaml.safe_load(s)\n", False),
        ("import numpy as np\nnp.load(f, allow_pickle=True)\n", True),
        ("import marshal\n", True),
        ("eval('1')\n", True),
    ],
)
def test_the_scanner_sees_unsafe_loading(source: str, bad: bool) -> None:
    assert bool(violations(source)) == bad


def test_package_loads_nothing_unsafely() -> None:
    assert len(SOURCES) > 20
    found = [v for f in SOURCES for v in violations(f.read_text(), str(f))]
    assert found == []
    # the one pickle user restricts its unpickler to an allow-list of globals
    data = (PACKAGE / "train" / "sources.py").read_text()
    assert "class _CifarUnpickler(pickle.Unpickler):" in data and "def find_class(" in data
    assert "yaml.safe_load(" in (PACKAGE / "study" / "studyfile.py").read_text()


# --- passwords -----------------------------------------------------------------------------------


def test_storage_password_never_shows_in_output_results_or_reports(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PASSWORD in postgres_url
    path = write_study(tmp_path / "studies", "secret", variants=(CONV5,))
    dirs = ["--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]
    logs = []
    run = ["study", "run", str(path), "--scale", "smoke", "--storage", postgres_url]
    for argv in (
        [*run, *dirs, "--no-report"],  # the report command below renders
        ["study", "status", str(path), "--storage", postgres_url, *dirs[:2]],
        ["study", "report", str(path), "--storage", postgres_url, *dirs],
    ):
        rc, out, err = run_cli(argv)
        assert rc == 0, err
        logs += [out, err]
    wrong = postgres_url.replace(PASSWORD, "wr0ng-pw")
    rc, out, err = run_main(capsys, "study", "status", str(path), "--storage", wrong)
    assert rc == 2 and "password authentication failed" in err
    logs += [out, err]

    text = "".join(logs)
    assert "archlab:***@127.0.0.1" in text  # the URL is shown, masked
    for secret in (PASSWORD, urllib.parse.quote(PASSWORD), "wr0ng-pw"):
        assert secret not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    names = {p.name for p in files}
    assert {"runs.csv", "curves.csv", "report.md", "report.html", "summary.csv"} <= names
    for p in files:
        assert PASSWORD.encode() not in p.read_bytes(), p


# --- reports escape what study files say ---------------------------------------------------------


def test_html_report_escapes_every_string_from_the_study_file(tmp_path: Path) -> None:
    variant = "    - {name: '<b onmouseover=alert(3)>v</b>', conv5x5: 5x5}"
    path = write_study(
        tmp_path / "studies",
        "xss",
        variants=(variant,),
        title=XSS,
        description="<img src=x onerror=alert(2)> & more",
    )
    outcome = run_study(
        path, scale="smoke", results_dir=tmp_path / "results", reports_dir=tmp_path / "reports"
    )
    assert outcome.ok
    page = outcome.files["report.html"].read_text()
    for raw in (XSS, "<img src=x", "<b onmouseover"):
        assert raw not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b onmouseover=alert(3)&gt;v&lt;/b&gt;" in page
    md = outcome.files["report.md"].read_text()
    assert XSS not in md and "<img" not in md and "<b onmouseover" not in md
    assert "&lt;script>alert(1)&lt;/script>" in md
    assert tree(tmp_path / "results")  # and the study really ran
