"""Inference FLOPs from token counts: pure functions of a model's shape.

Convention (recorded in every run header as ``FLOPS_CONVENTION``): Kaplan et al. (2020), Table 1, with
the output projection added.

* Every token that passes through the transformer trunk costs ``2 * N`` FLOPs, N the non-embedding
  parameter count (all matmul weights of the layers, norms included; not the token embedding nor the LM
  head), plus the attention term ``2 * n_layer * n_ctx * d_attn``, n_ctx the number of earlier tokens it
  attends to (causal: the i-th token, counting from 0, attends to i earlier ones) and d_attn the query
  width (heads x head_dim).
* Every token the model *produces* also costs the LM head, ``2 * d_model * vocab``. Kaplan's 2N omits it;
  for small models it is a large share (about a fifth of SmolLM2-135M's per-token cost).
* Prefill processes the ``p`` prompt tokens; decoding ``g`` tokens runs ``g`` trunk passes at contexts
  ``p .. p+g-1``, each with an LM head.

This is the forward-pass analogue of the ``6 N D`` used for pretraining compute (``2 N D`` forward), so
inference and pretraining FLOPs share one axis.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOPS_CONVENTION = "kaplan2020_2N_plus_attention_plus_lm_head_causal_context"


@dataclass(frozen=True)
class ModelSpec:
    """The shape numbers FLOPs accounting needs."""

    n_params_nonembed: int
    n_layer: int
    d_model: int
    d_attn: int
    vocab_size: int
    n_params_total: int | None = None

    @classmethod
    def from_hf_config(cls, config) -> "ModelSpec":
        """Derive the shape of a decoder-only Llama/Qwen2/Mistral-style model from its HF config."""
        c = getattr(config, "text_config", None) or config
        d = c.hidden_size
        n_layer = c.num_hidden_layers
        n_heads = c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or d // n_heads
        n_kv = getattr(c, "num_key_value_heads", None) or n_heads
        d_ff = c.intermediate_size
        d_attn = n_heads * head_dim
        attn = d * d_attn + 2 * d * n_kv * head_dim + d_attn * d
        if getattr(c, "attention_bias", False):  # Llama-style: q, k, v and o all biased
            attn += d_attn + 2 * n_kv * head_dim + d
        elif c.model_type == "qwen2":  # Qwen2: q, k, v biased, o not
            attn += d_attn + 2 * n_kv * head_dim
        mlp = 3 * d * d_ff
        norms = 2 * d
        nonembed = n_layer * (attn + mlp + norms) + d
        embed = c.vocab_size * d
        tied = getattr(c, "tie_word_embeddings", False)
        total = nonembed + embed + (0 if tied else embed)
        return cls(nonembed, n_layer, d, d_attn, c.vocab_size, total)


def trunk_flops(spec: ModelSpec, n_tokens: int, context_start: int) -> float:
    """FLOPs to run ``n_tokens`` consecutive tokens through the trunk, the first attending to
    ``context_start`` earlier tokens: ``sum_{i<n} 2N + 2 n_layer (context_start + i) d_attn``."""
    if n_tokens <= 0:
        return 0.0
    ctx_sum = n_tokens * context_start + n_tokens * (n_tokens - 1) / 2
    return 2.0 * spec.n_params_nonembed * n_tokens + 2.0 * spec.n_layer * spec.d_attn * ctx_sum


def lm_head_flops(spec: ModelSpec, n_tokens: int) -> float:
    return 2.0 * spec.d_model * spec.vocab_size * max(n_tokens, 0)


def prefill_flops(spec: ModelSpec, prompt_tokens: int) -> float:
    """Reading a prompt of ``prompt_tokens`` tokens (its logits come with the first decoded token)."""
    return trunk_flops(spec, prompt_tokens, 0)


def decode_flops(spec: ModelSpec, prompt_tokens: int, generated_tokens: int) -> float:
    """Producing ``generated_tokens`` tokens after a prompt of ``prompt_tokens``."""
    return trunk_flops(spec, generated_tokens, prompt_tokens) + lm_head_flops(spec, generated_tokens)


def problem_flops(spec: ModelSpec, prompt_tokens: int, generated: list[int], shared_prefill: bool) -> float:
    """All FLOPs spent on one problem: its samples' decodes plus one prefill if shared, else one each."""
    n_prefills = 1 if shared_prefill else len(generated)
    return n_prefills * prefill_flops(spec, prompt_tokens) + sum(
        decode_flops(spec, prompt_tokens, g) for g in generated)
