"""``ttc completion bash``: the script lists every verb and each verb's flags, and completes them in a real bash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    r = subprocess.run([sys.executable, "-m", "ttc", "completion", "bash"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    path = tmp_path_factory.mktemp("completion") / "ttc.bash"
    path.write_text(r.stdout)
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``ttc`` first) with the script loaded."""
    quoted = " ".join("'" + w + "'" for w in words)
    cmd = f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _ttc; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_verbs_flags_and_choices(script):
    from ttc.cli import VERBS

    assert set(VERBS) <= set(complete(script, "ttc", ""))
    assert complete(script, "ttc", "comp") == ["compare", "completion"]
    assert complete(script, "ttc", "run", "--max-t") == ["--max-tokens"]
    assert sorted(complete(script, "ttc", "run", "--con")) == ["--concurrency", "--config"]
    assert sorted(complete(script, "ttc", "compare", "--x", "")) == ["budget", "flops"]
    assert "--samples" in complete(script, "ttc", "compare", "--s")
    assert complete(script, "ttc", "serve", "--engine") == ["--engine-arg"]


def test_the_script_lists_every_flag_of_every_verb(script):
    from ttc.cli import VERBS
    from ttc.cli.completion import verb_parser

    text = script.read_text()
    for verb in VERBS:
        flags = [s for a in verb_parser(verb)._actions for s in a.option_strings if s.startswith("--")]
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{verb}) opts="))
        assert all(f in line.split("=", 1)[1].strip("' ;").split() for f in flags), verb


def test_other_shells_are_one_line(capsys):
    from ttc.cli.completion import main

    assert main(["fish"]) == 2
    assert capsys.readouterr().err == "error: ttc completion knows bash, not 'fish'\n"
