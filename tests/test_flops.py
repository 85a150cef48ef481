"""FLOPs accounting against hand calculations."""

import pytest

from ttc.metrics.flops import ModelSpec, decode_flops, lm_head_flops, prefill_flops, problem_flops, trunk_flops

SPEC = ModelSpec(n_params_nonembed=1000, n_layer=2, d_model=8, d_attn=4, vocab_size=10)


def test_trunk_flops_by_hand():
    # 3 tokens attending to 0, 1, 2 earlier tokens: 3*2*1000 + 2*2*4*(0+1+2) = 6000 + 48
    assert trunk_flops(SPEC, 3, 0) == 6048
    # 2 tokens after a context of 5: contexts 5 and 6 -> 2*2*1000 + 2*2*4*(5+6) = 4000 + 176
    assert trunk_flops(SPEC, 2, 5) == 4176
    assert trunk_flops(SPEC, 0, 7) == 0


def test_prefill_and_decode_by_hand():
    assert prefill_flops(SPEC, 3) == 6048
    # decode 2 tokens after a 3-token prompt: trunk at contexts 3, 4 plus 2 LM heads of 2*8*10
    assert decode_flops(SPEC, 3, 2) == 2 * 2000 + 2 * 2 * 4 * (3 + 4) + 2 * 160
    assert lm_head_flops(SPEC, 4) == 640


def test_problem_flops_shares_prefill_once():
    shared = problem_flops(SPEC, 3, [2, 1], shared_prefill=True)
    separate = problem_flops(SPEC, 3, [2, 1], shared_prefill=False)
    assert separate - shared == prefill_flops(SPEC, 3)
    assert shared == 6048 + decode_flops(SPEC, 3, 2) + decode_flops(SPEC, 3, 1)


def test_smollm2_shape_from_config():
    """SmolLM2-135M: the published shape gives ~134.5M params, of which 28.3M are the tied embedding."""
    from transformers import LlamaConfig

    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True)
    spec = ModelSpec.from_hf_config(cfg)
    per_layer = 576 * 576 + 2 * 576 * 192 + 576 * 576 + 3 * 576 * 1536 + 2 * 576
    assert spec.n_params_nonembed == 30 * per_layer + 576
    assert spec.n_params_total == spec.n_params_nonembed + 49152 * 576 == 134_515_008
    assert spec.d_attn == 576
    # the LM head is about a fifth of the per-token cost at short context
    head = lm_head_flops(spec, 1)
    assert head / (head + trunk_flops(spec, 1, 0)) == pytest.approx(0.21, abs=0.01)


def test_spec_matches_loaded_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from ttc.backends.hf import spec_from_model

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert spec_from_model(model) == ModelSpec.from_hf_config(model.config)
