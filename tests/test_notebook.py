"""The notebooks: committed without outputs, and executable top to bottom on a run made first.

``make notebook`` (in CI) runs them against a small run of the embedded model; this test uses the fake
backend so the suite stays fast, and exercises the same ``notebooks/execute.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} has outputs"


@pytest.mark.timeout(900)  # past the 600 s its subprocess is given, so that limit speaks first
def test_notebooks_execute_on_a_fresh_run(tmp_path):
    script = Path(__file__).parent.parent / "notebooks" / "execute.py"
    proc = subprocess.run([sys.executable, str(script), "--fake", "--out", str(tmp_path), "--n-boot", "20"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = list(tmp_path.glob("*.executed.ipynb"))
    assert len(executed) == len(NOTEBOOKS)
    nb = json.loads(executed[0].read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = json.dumps(outputs)
    assert "density" in text and "image/png" in text  # the exchange table and the figures came out
