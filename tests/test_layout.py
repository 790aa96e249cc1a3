"""The package's shape: no private name crosses a module boundary, the layers contract holds,
modules stay small and say their one job."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "archlab"
MAX_MODULE_LINES = 560  # "about 500": a module past this has more than one job
ALLOWED_DUNDERS = {"__version__", "__all__", "__doc__"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module an ImportFrom reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_imports(path: Path) -> list[str]:
    """Lines that import a private name from another archlab module, or use one through it."""
    current = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node, current, path.name == "__init__.py")
            if not source.startswith("archlab") or source == current:
                continue
            for a in node.names:
                if a.name.startswith("_") and a.name not in ALLOWED_DUNDERS:
                    found.append(f"{path.name}:{node.lineno}: {a.name} from {source}")
                elif a.name[:1].islower():
                    aliases[a.asname or a.name] = f"{source}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("archlab"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_imported_from_another_archlab_module() -> None:
    bad = [line for p in _modules() for line in private_imports(p)]
    assert not bad, "private names cross module boundaries:\n" + "\n".join(bad)


def test_the_private_import_check_catches_one(tmp_path: Path) -> None:
    pkg = tmp_path / "archlab" / "report"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text(
        "from archlab.report.doc import _Doc\nfrom archlab.train import trainer\ntrainer._Trainer\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "archlab"
    try:
        bad = private_imports(pkg / "x.py")
    finally:
        PACKAGE = saved
    assert len(bad) == 2 and "_Doc" in bad[0] and "_Trainer" in bad[1]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_small_and_says_its_job(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip(), f"{path} has no module docstring"


def test_no_comment_points_outside_the_repository() -> None:
    hits = [str(p) for p in _modules() if "DESIGN.md" in p.read_text()]
    assert not hits


def test_imports_only_point_down() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    out = subprocess.run(
        cmd, cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "KEPT" in out.stdout and "BROKEN" not in out.stdout
