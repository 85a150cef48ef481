"""``ttc serve MODEL``: the one-line error where vLLM is not importable; the verb's life (starts the server, prints
the base URL, keeps it up, stops it on Ctrl-C or SIGTERM, reports a server that dies) with a stand-in for vLLM's
server process; and, where vLLM is installed (``make test-vllm``), a sweep through the real server it starts."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_VLLM = importlib.util.find_spec("vllm") is not None

# A stand-in for `python -m vllm.entrypoints.openai.api_server`: answers /health and /v1/models on the port it is
# given, writes its argv to its log (stdout), and with STANDIN_DIE_AFTER set exits with an error after that long.
STANDIN = '''
import http.server, json, os, sys, threading, time
args = sys.argv[1:]
port, name = int(args[args.index("--port") + 1]), args[args.index("--served-model-name") + 1]
print("argv " + json.dumps(args), flush=True)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"" if self.path == "/health" else json.dumps({"data": [{"id": name}]}).encode()
        self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
die = os.environ.get("STANDIN_DIE_AFTER")
time.sleep(float(die) if die else 3600)
print("RuntimeError: the stand-in engine died", flush=True)
sys.exit(1)
'''


@pytest.mark.skipif(HAS_VLLM, reason="vllm is importable here")
def test_without_vllm_it_is_one_line_and_exit_2(capsys, tmp_path):
    from ttc.cli.serve import main

    assert main(["smollm2-135m", "--log", str(tmp_path / "s.log")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ttc serve starts vLLM's server, and vllm is not importable by this Python")
    assert "--backend openai --base-url" in err and err.count("\n") == 1
    assert not (tmp_path / "s.log").exists()


@pytest.fixture
def standin(tmp_path):
    """A directory holding a package named vllm whose server module is the stand-in, and a model directory."""
    pkg = tmp_path / "standin" / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for d in (pkg, pkg.parent, pkg.parent.parent):
        (d / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(textwrap.dedent(STANDIN))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return tmp_path / "standin", model


def start_serve(standin_dir, model, log, env=None, extra=()):
    env = {**os.environ, "PYTHONPATH": f"{standin_dir}{os.pathsep}{ROOT}", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "ttc", "serve", str(model), "--port", "0", "--log", str(log),
                             "--engine-arg", "max_model_len=64", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(proc, marker: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    proc.kill()
    raise AssertionError(f"no {marker!r} from ttc serve: {lines} {proc.stderr.read()}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_the_url_blocks_and_stops_on_ctrl_c(standin, tmp_path, stop):
    standin_dir, model = standin
    log = tmp_path / "server.log"
    proc = start_serve(standin_dir, model, log)
    try:
        lines = read_until(proc, "serving ", timeout=120)
        url = lines[-1].split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        hint = proc.stdout.readline()
        assert hint.strip() == f"ttc run --backend openai --base-url {url} --model {model} ..."
        with urllib.request.urlopen(url + "/models", timeout=10) as r:  # the server it started answers
            assert json.load(r)["data"][0]["id"] == str(model)
        argv = json.loads(next(ln for ln in log.read_text().splitlines() if ln.startswith("argv "))[5:])
        assert argv[argv.index("--max-model-len") + 1] == "64" and "--enable-prefix-caching" in argv
        time.sleep(1.5)
        assert proc.poll() is None  # it blocks
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "server stopped" in out and err == ""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert not port_open(port)  # the server went with it


def test_a_server_that_dies_is_one_line_and_exit_2(standin, tmp_path):
    standin_dir, model = standin
    log = tmp_path / "server.log"
    proc = start_serve(standin_dir, model, log, env={"STANDIN_DIE_AFTER": "3"})
    try:
        read_until(proc, "serving ", timeout=120)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert err.startswith("error: the vLLM server exited with code 1: RuntimeError: the stand-in engine died")
    assert err.count("\n") == 1 and str(log) in err


def test_bad_flags_are_one_line(standin, tmp_path):
    standin_dir, model = standin
    proc = start_serve(standin_dir, model, tmp_path / "s.log", extra=["--engine-arg", "not a key=1"])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.startswith("error: --engine-arg name must be a Python identifier")
    assert not (tmp_path / "s.log").exists()


@pytest.mark.vllm
def test_a_sweep_through_the_server_ttc_serve_started(vllm_tiny_dir, tmp_path):
    """The real vLLM server (CPU build in .venv-vllm): ttc serve, then ttc run --backend openai against it."""
    from test_openai_vllm import SERVER_ENV, SWEEP

    from ttc import load_run
    from ttc.cli.run import main as run_main

    env = {**os.environ, "PYTHONPATH": str(ROOT), **SERVER_ENV}
    log = tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "ttc", "serve", vllm_tiny_dir, "--port", "0", "--log", str(log),
                             "--dtype", "float32", "--engine-arg", "enforce_eager=true", "--engine-arg",
                             "max_model_len=512", "--engine-arg", "enable_chunked_prefill=false"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = read_until(proc, "serving ", timeout=900)
        url = lines[-1].split(" at ", 1)[1].strip()
        assert run_main(["--backend", "openai", "--base-url", url, "--model", vllm_tiny_dir, *SWEEP,
                         "--out", str(tmp_path / "runs")]) == 0
        (run,) = (tmp_path / "runs").iterdir()
        df = load_run(run)
        assert len(df) == 24 and (df["generated_tokens"] >= 1).all()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "server stopped" in out
    assert not port_open(int(url.rsplit(":", 1)[1].split("/")[0]))
