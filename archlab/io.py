"""One way to write files: atomically (temp file + os.replace), so no reader sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Report tables keep 12 significant digits: enough for any figure shown, and stable when BLAS
# summation order moves the last bits between runs.
CSV_FLOAT = "%.12g"


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write via a temporary file in the same folder and os.replace: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; results and reports are read by all
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (trailing newline) atomically."""
    return write_atomic(path, json.dumps(obj, indent=2) + "\n")


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> Path:
    """Write numpy arrays as a compressed ``.npz`` atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return write_atomic(path, buf.getvalue())


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value stored in ``path``."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
