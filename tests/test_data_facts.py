"""The shipped data tables (ttc/data/*.csv): every row names its source, and the facts the docs state are
the numbers in the tables. Each fact below says where it was read."""

import pandas as pd
import pytest

from ttc.analysis.family import load_families
from ttc.analysis.reference import load_reference


@pytest.mark.parametrize("table", [load_families, load_reference])
def test_every_row_names_its_source(table):
    df = table()
    assert df["source"].astype(str).str.startswith("https://").all()
    notes = df["source_table"] if "source_table" in df.columns else df["note"]
    assert notes.notna().all() and notes.astype(str).str.len().gt(3).all()


def test_pythia_tokens_per_step():
    # EleutherAI/pythia README: 143,000 steps of 1,024 sequences of 2,048 tokens; 299,892,736,000 tokens in all
    py = load_families().query("family == 'Pythia'")
    assert len(py) == 8
    assert 1024 * 2048 == 2_097_152 and 143_000 * 2_097_152 == 299_892_736_000
    assert (py["tokens_per_step"] == 2_097_152).all() and (py["tokens"] == 299_892_736_000).all()


def test_olmo2_stage_offsets():
    # allenai/OLMo configs/official-1124: stage 2 starts from stage 1's last step (load_path step928646 for 7B,
    # step596057 for 13B); batch x sequence length 1,024 x 4,096 (7B) and 2,048 x 4,096 (13B). The Hub's last
    # stage-1 revisions name the same totals, rounded: stage1-step928646-tokens3896B, stage1-step596057-tokens5001B.
    fam = load_families().set_index("model")
    assert fam.loc["allenai/OLMo-2-1124-7B", "stage_tokens"] == f"stage2={928_646 * 1024 * 4096}"
    assert fam.loc["allenai/OLMo-2-1124-13B", "stage_tokens"] == f"stage2={596_057 * 2048 * 4096}"
    assert round(928_646 * 1024 * 4096 / 1e9) == 3895 and round(596_057 * 2048 * 4096 / 1e9) == 5000
    assert pd.isna(fam.loc["allenai/OLMo-2-0325-32B", "stage_tokens"])  # not checked: stage-2 revisions refused
    # model cards: Training Tokens 4 / 5 / 6 Trillion
    assert list(fam.loc[["allenai/OLMo-2-1124-7B", "allenai/OLMo-2-1124-13B", "allenai/OLMo-2-0325-32B"],
                        "tokens"]) == [4e12, 5e12, 6e12]


def test_smollm2_and_qwen25_tokens():
    fam = load_families().set_index("model")
    assert [fam.loc[f"HuggingFaceTB/SmolLM2-{s}", "tokens"] for s in ("135M", "360M", "1.7B")] == [2e12, 4e12, 11e12]
    assert (fam[fam["family"] == "Qwen2.5"]["tokens"] == 18e12).all()  # report abstract: 18 trillion tokens


# Qwen2.5 Technical Report (arXiv 2412.15115), base models, GSM8K 4-shot and MATH 4-shot: Table 2 (72B),
# Table 3 (14B, 32B), Table 4 (7B), Table 5 (0.5B, 1.5B, 3B; columns Qwen2-0.5B, Qwen2.5-0.5B, Qwen2-1.5B,
# Qwen2.5-1.5B, Gemma2-2.6B, Qwen2.5-3B). Read from the arXiv HTML rendering and a PDF text extraction,
# which agree; the report's prose repeats 7B MATH 49.8 and 32B MATH 57.7.
QWEN25 = {"0.5B": (41.6, 19.5), "1.5B": (68.5, 35.0), "3B": (79.1, 42.6), "7B": (85.4, 49.8), "14B": (90.2, 55.6),
          "32B": (92.9, 57.7), "72B": (91.5, 62.1)}


def test_qwen25_scores():
    ref = load_reference().query("family == 'Qwen2.5'")
    for size, (gsm8k, math) in QWEN25.items():
        rows = ref[ref["model"] == f"Qwen2.5-{size}"].set_index("benchmark")["score"]
        assert (rows["gsm8k"], rows["math"]) == (gsm8k, math), size
    assert len(ref) == 2 * len(QWEN25)
