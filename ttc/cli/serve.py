"""``ttc serve MODEL``: start vLLM's OpenAI-compatible server for a model on 127.0.0.1 and keep it up until Ctrl-C.

It prints the base URL to give ``ttc run --backend openai --base-url``, so that several sweeps (or other tools)
share one loaded model. MODEL is named as ``ttc run --model`` names it (an embedded alias, a local checkpoint, a
hub id, ``ID@REVISION``) and served under that name; ``--dtype`` and ``--engine-arg`` mean what they mean for
``ttc run --backend vllm``. The server's output goes to ``--log``. Exit codes: 0 stopped by Ctrl-C (or SIGTERM),
2 an error (one line on stderr: vLLM not importable, a bad flag, the server failing to start or exiting).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import signal
import sys
import time

from ttc.errors import HelpFormatter, OneLineParser, TTCError, cli_guard, debug_requested


def build_parser(prog: str = "ttc serve") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="an embedded alias (smollm2-135m), a local Hugging Face checkpoint directory, or a hub id "
                        "(optionally ID@REVISION); the server serves it under this name")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    p.add_argument("--dtype", default="auto",
                   help="weights dtype: auto (float32 on a CPU without native bfloat16, else vLLM's choice), "
                        "bfloat16, float16, float32")
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a vLLM engine argument, repeatable (max_model_len=8192, tensor_parallel_size=2, "
                        "gpu_memory_utilization=0.85), passed as the server's flag (--max-model-len 8192)")
    p.add_argument("--log", default=None, metavar="PATH",
                   help="where the server's output goes (default: runs/serve-<model>.log)")
    p.add_argument("--startup-timeout", type=float, default=900.0,
                   help="seconds to wait for the server to answer its health check")
    return p


def require_vllm() -> None:
    """``TTCError`` unless vLLM can be imported by this Python (the server runs as ``python -m vllm...``)."""
    if importlib.util.find_spec("vllm") is None:
        raise TTCError(f"ttc serve starts vLLM's server, and vllm is not importable by this Python "
                       f"({sys.executable}): pip install vllm (make setup-vllm installs the CPU build in "
                       f".venv-vllm), or start any OpenAI-compatible server and pass its URL to ttc run "
                       f"--backend openai --base-url")


def serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttc.sweep.config import BackendConfig, parse_engine_args

    require_vllm()
    if not 0 <= args.port < 65536:
        raise TTCError(f"--port must be in [0, 65535], got {args.port}")
    if not args.startup_timeout > 0:
        raise TTCError(f"--startup-timeout must be positive seconds, got {args.startup_timeout}")
    engine_args = parse_engine_args(args.engine_arg)
    BackendConfig(name="openai", serve=True, dtype=args.dtype, engine_args=engine_args)  # the run's own checks
    from ttc.backends.server import free_port, local_server

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.model.strip("/").rsplit("/", 1)[-1])[:80]
    log = Path(args.log) if args.log else Path("runs") / f"serve-{slug}.log"
    server = local_server(args.model, args.dtype, engine_args, log, port=args.port or free_port())
    server.startup_timeout = args.startup_timeout
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        print(f"starting vLLM's server for {args.model} on 127.0.0.1:{server.port} (log: {log}) ...", flush=True)
        server.start()
        print(f"serving {args.model} at {server.base_url}\n"
              f"  ttc run --backend openai --base-url {server.base_url} --model {args.model} ...\n"
              f"Ctrl-C stops the server", flush=True)
        while True:
            server.check()  # TTCError with the log's last error when the server exits
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
        print("server stopped", flush=True)
        return 0
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None, prog: str = "ttc serve") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: serve(args), debug=debug_requested(), sweep=False)


if __name__ == "__main__":
    sys.exit(main())
