"""The transformers backend: batched sampling on CPU or GPU with one shared prefill per prompt.

Each prompt is run through the model once into a ``DynamicCache``; the cache is repeated ``n`` times
along the batch and the ``n`` continuations are decoded together (``num_return_sequences`` would expand
the prompt before the prefill and read it ``n`` times). Rows that finish are dropped from the cache, so
the batch shrinks as samples end instead of decoding padding until the longest one stops. Greedy
decoding reproduces ``model.generate`` token for token (tested).
"""

from __future__ import annotations

import inspect

import torch

from ttc.backends.base import GenParams, ModelInfo, Prompt, cpu_has_bf16, encode_prompt, render_prompt
from ttc.errors import TTCError
from ttc.flops import ModelSpec
from ttc.models import resolve_model
from ttc.records import Completion


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto``: bfloat16 on GPUs and on CPUs with native bfloat16, float32 on other CPUs. Measured with
    benchmarks/bench_generate.py on 2 cores with AVX512-BF16: bfloat16 2.5x float32 at n=16; CPUs without it
    emulate bfloat16 and are slower in it."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_has_bf16() else torch.float32
    return getattr(torch, dtype)


def count_params(model) -> tuple[int, int]:
    """(non-embedding, total) parameter counts: the input embedding and an untied LM head excluded."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    excluded = embed.numel()
    if head is not None and head.weight.data_ptr() != embed.data_ptr():
        excluded += head.weight.numel()
    return total - excluded, total


def spec_from_model(model) -> ModelSpec:
    """Shape from the config, parameter counts from the weights actually loaded."""
    spec = ModelSpec.from_hf_config(model.config)
    nonembed, total = count_params(model)
    return ModelSpec(nonembed, spec.n_layer, spec.d_model, spec.d_attn, spec.vocab_size, total)


class HFBackend:
    shares_prefill = True

    def __init__(self, model: str, dtype: str = "auto", device: str | None = None,
                 chat_template_kwargs: dict | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.template_kwargs = dict(chat_template_kwargs or {})
        source = resolve_model(model)
        torch_dtype = resolve_dtype(dtype, self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source.path, **source.pretrained_kwargs())
            self.model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch_dtype,
                                                              **source.pretrained_kwargs())
        except (OSError, ValueError, KeyError) as e:  # missing files, no hub, unknown architecture
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TTCError(f"cannot load model {model!r} from {source.path}: {first}") from None
        self.model.to(self.device).eval()
        cfg = self.model.config
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        if not eos:
            raise TTCError(f"model {model!r} defines no end-of-sequence token")
        self.eos_ids = eos
        # transformers renamed forward's ``past_key_values`` to ``cache`` (5.24; the old name goes in 5.40)
        forward_args = inspect.signature(self.model.forward).parameters
        self.cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        identity = dict(source.identity)
        identity.update(backend="hf", dtype=str(torch_dtype).removeprefix("torch."), device=self.device,
                        model_type=cfg.model_type,
                        revision=getattr(cfg, "_commit_hash", None))
        self.info = ModelInfo(name=model, source=source.path, spec=spec_from_model(self.model),
                              identity=identity)

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, self.template_kwargs)

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        return [self.sample(self.encode(p), params, n) for p in prompts]

    def render(self, prompt: Prompt) -> str:
        """The prompt as the text ``encode`` reads: the chat template applied, generation prefix included."""
        return render_prompt(self.tokenizer, prompt, self.template_kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def continuation_logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        """Log-probabilities of each continuation's tokens after ``prefix`` (tokenized apart, then joined):
        one forward pass over the prefix, and one more over prefix + continuation for each continuation
        longer than one token."""
        ids = self.encode(prefix)
        if not ids:
            raise TTCError("empty prefix")
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        last = self.model(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1).logits[0, -1]
        last = last.float().log_softmax(-1)
        out = []
        for c in conts:
            if len(c) <= 1:
                out.append([float(last[c[0]])] if c else [])
                continue
            logits = self.model(input_ids=torch.tensor([ids + c], device=self.device)).logits[0].float()
            lp = logits[len(ids) - 1: len(ids) + len(c) - 1].log_softmax(-1)
            out.append(lp.gather(-1, torch.tensor(c, device=self.device)[:, None])[:, 0].tolist())
        return len(ids), out

    @torch.inference_mode()
    def sample(self, ids: list[int], params: GenParams, n: int) -> list[Completion]:
        """``n`` continuations of one tokenized prompt: one prefill, then a decode loop over a KV cache
        from which finished rows are dropped, so a long tail costs only its own tokens."""
        from transformers import DynamicCache

        if not ids:
            raise TTCError("empty prompt")
        gen = torch.Generator(device=self.device).manual_seed(params.seed)
        cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=torch.tensor([ids], device=self.device), **{self.cache_arg: cache},
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float().expand(n, -1)
        cache.batch_repeat_interleave(n)
        eos = torch.tensor(self.eos_ids, device=self.device)
        rows = list(range(n))  # rows[j]: which sample the j-th row of the cache belongs to
        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish = ["length"] * n
        texts: list[str | None] = [None] * n
        stops: list[str | None] = [None] * n  # the stop string that ended each sample
        for step in range(params.max_tokens):
            nxt = sample_next(logits, params.temperature, params.top_p, gen)
            if params.logprobs:
                chosen = logits.log_softmax(-1).gather(-1, nxt[:, None])[:, 0].tolist()
            done = torch.isin(nxt, eos).tolist()
            nxt_list = nxt.tolist()
            keep = []
            for j, r in enumerate(rows):
                tokens[r].append(nxt_list[j])
                if params.logprobs:
                    logps[r].append(chosen[j])
                if done[j]:
                    finish[r] = "stop"
                elif params.stop and self._hit_stop(tokens[r], params.stop, texts, r, stops):
                    finish[r] = "stop"
                else:
                    keep.append(j)
            if not keep or step == params.max_tokens - 1:
                break
            if len(keep) < len(rows):
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                nxt = nxt[idx]
                rows = [rows[j] for j in keep]
            logits = self.model(input_ids=nxt[:, None], **{self.cache_arg: cache},
                                use_cache=True).logits[:, -1, :].float()
        return [self._completion(tokens[r], len(ids), finish[r], texts[r], logps[r] if params.logprobs else None,
                                 stops[r])
                for r in range(n)]

    def _hit_stop(self, toks: list[int], stop: tuple[str, ...], texts: list, r: int, stops: list) -> bool:
        # A stop string that the newest token completes lies in the last few tokens: look there first
        # (4 tokens per character covers byte-level pieces), so a step costs the same however long the text.
        tail = 4 * max(map(len, stop)) + 4
        if len(toks) > tail:
            text = self.tokenizer.decode(toks[-tail:], skip_special_tokens=True)
            if not any(s in text for s in stop):
                return False
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        for s in stop:
            if s in text:
                texts[r] = text[: text.index(s)]
                stops[r] = s
                return True
        return False

    def _completion(self, toks: list[int], prompt_len: int, finish: str, text: str | None, logps,
                    stop_reason: str | None = None) -> Completion:
        if text is None:  # not cut at a stop string: the end-of-sequence token is counted, not shown
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
        return Completion(text, prompt_len, len(toks), finish, tuple(logps) if logps is not None else None,
                          stop_reason)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """One token per row: greedy at temperature 0, else temperature then nucleus (top-p) sampling."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = (logits / temperature).softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest prefix reaching top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=gen)[:, 0]
