"""The package's layout: no import cycles, no library code importing the command line, and every documented
entry point (``ttc <verb>`` and the ``python -m ttc.<name>`` forms) answering ``--help``.

The import graph is read from the source (every ``import`` statement, at module level or inside a function, since
a lazy import still ties two modules together), over ``ttc``, ``tasks`` and ``samplers``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ttc", "tasks", "samplers")
# Entry points: they may import ttc.cli (they are command lines themselves).
ENTRY_POINTS = {"ttc.__main__", "ttc.run", "ttc.summary", "ttc.fit", "ttc.plot", "ttc.show", "ttc.import",
                "ttc.list_tasks", "ttc.report.__main__", "ttc.importers.__main__", "ttc.rescore"}


def module_names() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # ``from pkg import submodule`` depends on the submodule (a package's own ``__init__`` runs first
            # whatever is imported from it); ``from module import name`` on the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            if t in known:
                found.add(t)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    known = set(names)
    return {name: imports_of(name, path, known) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_read_from_every_statement(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import ttc.a\nfrom ttc.b import x\ndef f():\n    from ttc import c, d\n")
    assert imports_of("ttc.m", src, {"ttc.a", "ttc.b", "ttc.c", "ttc"}) == {"ttc.a", "ttc.b", "ttc.c", "ttc"}
    assert imports_of("ttc.m", src, {"ttc.a", "ttc.b", "ttc.c"}) == {"ttc.a", "ttc.b", "ttc.c"}


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_code_never_imports_the_command_line():
    bad = sorted(f"{name} imports {t}" for name, targets in import_graph().items()
                 if not name.startswith("ttc.cli") and name not in ENTRY_POINTS
                 for t in targets if t == "ttc.cli" or t.startswith("ttc.cli."))
    assert bad == []


def test_stages_are_subpackages():
    """The tree shows the pipeline: the stages are packages, and ttc/ itself holds only the package's
    entry points and the shared error type."""
    for stage in ("sweep", "backends", "store", "metrics", "analysis", "report", "importers", "cli"):
        assert (ROOT / "ttc" / stage / "__init__.py").is_file(), stage
    flat = sorted(p.stem for p in (ROOT / "ttc").glob("*.py"))
    assert set(flat) <= {"__init__", "__main__", "errors"} | {e.split(".")[1] for e in ENTRY_POINTS
                                                             if e.count(".") == 1}, flat


def test_public_names_import_from_ttc():
    import ttc

    for name in ttc.__all__:
        assert getattr(ttc, name) is not None, name


def _help(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ttc_help_lists_every_verb():
    from ttc.cli import VERBS

    r = subprocess.run([sys.executable, "-m", "ttc", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for verb, (_, _, text) in VERBS.items():
        assert f"  {verb}" in r.stdout and text in r.stdout


@pytest.mark.parametrize("verb", ["run", "tasks", "summary", "show", "report", "fit", "plot", "import", "compare",
                                  "serve", "completion", "rescore"])
def test_every_verb_has_complete_help(verb):
    """Every flag of a verb has a help text in ``ttc <verb> --help``."""
    import argparse
    import importlib

    from ttc.cli import VERBS

    r = _help(["-m", "ttc", verb])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: ttc {verb}")
    module, function, _ = VERBS[verb]
    parsers = []
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        parsers.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            getattr(importlib.import_module(module), function)([], prog=f"ttc {verb}")
    finally:
        argparse.ArgumentParser.parse_args = original
    undocumented = [a.dest for p in parsers for a in p._actions if not a.help]
    assert undocumented == [], f"ttc {verb}: flags without help: {undocumented}"
    # each default shown once, and only where there is one
    text = " ".join(r.stdout.split())
    assert "(default: None)" not in text and "(default: False)" not in text, text
    assert not re.search(r"default[^()]*\) \(default: ", text), text


@pytest.mark.parametrize("name", ["run", "summary", "fit", "plot", "show", "import", "list_tasks", "report",
                                  "importers", "rescore"])
def test_python_dash_m_forms_still_answer(name):
    r = _help(["-m", f"ttc.{name}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: python -m ttc.")
    assert r.stderr == ""  # no deprecation noise for one release


def test_unknown_verb_is_one_line_and_exit_2():
    r = subprocess.run([sys.executable, "-m", "ttc", "--budget", "4"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: ttc has no verb '--budget'; a sweep is `ttc run --budget 4` (see ttc --help)"
    r = subprocess.run([sys.executable, "-m", "ttc", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ttc ")
