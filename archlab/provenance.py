"""Where a result came from: the archlab commit, the machine (CPU model and flags), versions."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from archlab import __version__

#: the CPU flags that decide training speed and numerics (bf16 support)
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def git_commit() -> str:
    """Short commit of the archlab checkout, or "unknown" outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _cpuinfo_field(name: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.partition(":")[2].strip()
    return ""


def cpu_model() -> str:
    """The CPU's model name."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """Which of SPEED_FLAGS this CPU has."""
    flags = set(_cpuinfo_field("flags").split())
    return [f for f in SPEED_FLAGS if f in flags]


def usable_cores() -> list[int]:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def versions() -> dict[str, str]:
    """archlab, Python and torch versions."""
    import torch  # the ground floor imports torch only when asked for its version

    return {"archlab": __version__, "python": platform.python_version(), "torch": torch.__version__}


def machine_info() -> dict[str, Any]:
    """CPU model and flags, cores, GPU and versions: the record kept with every timing."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cores": len(usable_cores()),
        "cuda": gpu,
        **versions(),
    }


def machine() -> str:
    """One line describing this machine for reports."""
    info = machine_info()
    flags = "/".join(info["cpu_flags"]) or "no AVX2"
    gpu = f", {info['cuda']}" if info["cuda"] else ""
    return (
        f"{info['cpu_model']} ({flags}), {info['usable_cores']} cores{gpu}, torch {info['torch']}"
    )
