"""The README's demo table: what ``make demo`` (``python -m ttc.run``, the default sweep) prints on this machine,
with the dtype it ran in, the CPU flags that chose that dtype, how long it took and the load average.

    python benchmarks/demo_table.py                      # run the default sweep afresh (in a temporary --out)
    python benchmarks/demo_table.py --run runs/<id>      # the same output for a run already made
    python benchmarks/demo_table.py --readme README.md   # also put it in the README, between its demo-table marks
    make demo-table                                      # the last line, after installing

A fresh run is ``python -m ttc.run --out <temporary directory>`` in a subprocess: its standard output is
printed as it came, except the temporary directory, shown as ``runs/`` (the default ``--out`` a newcomer
gets). The sampled texts, and so the scores, depend on the dtype (``--dtype auto``: bfloat16 on a CPU with
native bfloat16, float32 on others), which is why the caption names it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- demo-table: written by benchmarks/demo_table.py; do not edit by hand -->"
END = "<!-- /demo-table -->"
DTYPE_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")  # what --dtype auto reads, and context


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of ``DTYPE_FLAGS`` it has (Linux; elsewhere unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", []
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    have = set(flags.group(1).split()) if flags else set()
    return (name.group(1).strip() if name else "unknown CPU"), [f for f in DTYPE_FLAGS if f in have]


def run_output(run_dir: Path) -> str:
    """What ``python -m ttc.run`` prints at the end of a sweep, for a run that is on disk."""
    import contextlib
    import io

    from ttc.cli.run import print_routes, print_summary

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_summary(run_dir / "summary.csv")
        print_routes(run_dir)
        print(f"run directory: {run_dir}")
    return out.getvalue()


def fresh_run() -> tuple[Path, str, float]:
    """Run the default sweep in a temporary --out; its directory (kept), its standard output, its wall time."""
    out = Path(tempfile.mkdtemp(prefix="ttc-demo-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ttc.run", "--out", str(out)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True, timeout=7200)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: python -m ttc.run exited {proc.returncode}")
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir, proc.stdout.replace(str(out), "runs"), seconds


def caption(header: dict, seconds: float | None, load: tuple[float, ...]) -> str:
    name, flags = cpu()
    dtype = header["config"]["backend"]["dtype"]
    how = f"the command took {seconds:.0f} s, model load included, " if seconds is not None else ""
    git = header.get("git") or {}
    commit = f"{str(git.get('commit'))[:7]}{' with uncommitted changes' if git.get('dirty') else ''}"
    return (f"{dtype} (`--dtype auto` on {os.cpu_count()} cores of an {name}, CPU flags "
            f"{' '.join(flags) or 'none of ' + ' '.join(DTYPE_FLAGS)}); {how}load average {load[0]:.1f} "
            f"at the start; ttc {commit}")


def block(text: str, note: str) -> str:
    lines = "\n".join(line.rstrip() for line in text.rstrip().splitlines())  # pandas pads lines with spaces
    return f"{BEGIN}\nPrinted by `python -m ttc.run` in {note}:\n\n```\n{lines}\n```\n{END}"


def write_readme(path: Path, text: str) -> None:
    readme = path.read_text()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"error: {path} has no demo-table marks ({BEGIN} ... {END}) to write between")
    head, rest = readme.split(BEGIN, 1)
    path.write_text(head + text + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a run of the default sweep already made (default: run it afresh)")
    p.add_argument("--readme", type=Path, help="write the block into this README, between its demo-table marks")
    args = p.parse_args(argv)
    load = os.getloadavg()
    if args.run is not None:
        run_dir, seconds = args.run, None
        text = run_output(run_dir)
    else:
        run_dir, text, seconds = fresh_run()
    header = json.loads((run_dir / "header.json").read_text())
    out = block(text, caption(header, seconds, load))
    print(out)
    if args.readme is not None:
        write_readme(args.readme, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
