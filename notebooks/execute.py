"""Make a small run, then execute every notebook here top to bottom against it (what CI does).

    python notebooks/execute.py [--out runs/notebook-ci] [--fake]

The run uses the embedded model (a few problems, small budgets; about a minute on two cores) unless
``--fake`` asks for the scripted fake backend. Executed copies are written beside the run, never over the
committed notebooks, which stay without outputs. Exit code 1 if a cell raises.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def make_run(out: Path, limit: int, budgets: str, max_tokens: int, fake: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if fake:
        sys.path.insert(0, str(ROOT))
        from ttc.backends.fake import FakeBackend
        from ttc.sweep.config import RunConfig, SweepConfig, parse_budgets
        from ttc.sweep.runner import run_sweep

        def script(prompt, rng):
            import re

            m = re.search(r"problem: ([-+\d\s]+)=", prompt)
            value = eval(m.group(1)) if m else 0  # digits, spaces, + and - only
            return f"\\boxed{{{value if rng.random() < 0.3 else value + rng.choice([-1, 1])}}}"

        cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",),
                                          budgets=parse_budgets(budgets), limit=limit), out=str(out))
        return run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(script), progress=False).root
    cmd = [sys.executable, "-m", "ttc.run", "--task", "chain_sum", "--limit", str(limit), "--budget", budgets,
           "--max-tokens", str(max_tokens), "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("run directory:")][-1]
    return Path(line.split(":", 1)[1].strip())


def execute(notebook: Path, run_dir: Path, n_boot: int) -> Path:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    env = {**os.environ, "TTC_RUN_DIR": str(run_dir.resolve()), "TTC_N_BOOT": str(n_boot), "MPLBACKEND": "Agg"}
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    dest = run_dir.parent / f"{notebook.stem}.executed.ipynb"
    nbformat.write(nb, dest)
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "notebook-ci"), help="where the small run goes")
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--budget", default="1,2,4,8,16")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--n-boot", type=int, default=50)
    p.add_argument("--fake", action="store_true", help="use the scripted fake backend instead of the model")
    args = p.parse_args(argv)
    run_dir = make_run(Path(args.out), args.limit, args.budget, args.max_tokens, args.fake)
    print(f"run: {run_dir}")
    for nb in sorted(HERE.glob("*.ipynb")):
        print(f"executed: {execute(nb, run_dir, args.n_boot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
