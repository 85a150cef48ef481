"""The transformers backend: batched sampling on CPU or GPU with one shared prefill per prompt.

Each prompt is run through the model once into a ``DynamicCache``; its row is copied for each of the ``n``
samples that goes on past its first token and the ``n`` continuations are decoded together
(``num_return_sequences`` would expand the prompt before the prefill and read it ``n`` times). Rows that
finish are dropped from the cache, so the batch shrinks as samples end instead of decoding padding until the
longest one stops. Greedy decoding reproduces ``model.generate`` token for token (tested). At most
``MAX_ROWS`` samples are decoded at once: a call with more decodes them in consecutive chunks from the one
prefill, so its memory does not grow with ``n`` (a 10,000-sample budget holds 256 rows, not 10,000).

``generate_requests`` decodes several requests (different prompts or continuations, each with its own
``n``, seed, ``max_tokens``, stop strings and temperature) in one batch: the prompts are prefilled together,
left-padded with an attention mask when their lengths differ, and each request's rows draw from its own
``torch.Generator``. A lone request takes exactly the one-prompt path above.

The backend decodes one batch at a time (``lockstep``): a sweep runs ``concurrency`` problems in lock-step
rounds whose calls it merges into one ``generate_requests`` call each (``ttc.sweep.rounds``), so short batches of
one problem (a long chain's tail, a search's last paths) share the decoding with other problems'.
"""

from __future__ import annotations

import copy
import inspect

import torch

from ttc.backends.base import GenParams, LocalTokenizer, ModelInfo, Prompt, Request, cpu_has_bf16
from ttc.backends.models import resolve_model
from ttc.errors import TTCError, first_line
from ttc.metrics.flops import ModelSpec
from ttc.store.records import Completion

# Problems whose rounds share one batch (--concurrency); 8 halves the default sweep's time on 2 cores (README).
DEFAULT_CONCURRENCY = 8
# Samples decoded at once (the rows of cache and logits a call holds); more are decoded in consecutive chunks.
# The same bound as a merged round's (ttc.sweep.rounds), so a sweep's batches are never cut differently.
MAX_ROWS = 256


def torch_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype of ``--dtype`` (the vLLM backend's string is ``vllm.engine_dtype``). ``auto``: bfloat16
    on GPUs and on CPUs with native bfloat16, float32 on other CPUs. Measured with
    benchmarks/bench_generate.py on 2 cores with AVX512-BF16: bfloat16 2.5x float32 at n=16; CPUs without it
    emulate bfloat16 and are slower in it."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") or cpu_has_bf16() else torch.float32
    return getattr(torch, dtype)


def count_params(model) -> tuple[int, int]:
    """(non-embedding, total) parameter counts: the input embedding and an untied output head (an LM head,
    or a reward model's score or classifier head) excluded."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        head = getattr(model, "score", None) or getattr(model, "classifier", None)
    excluded = embed.numel()
    if head is not None and hasattr(head, "weight") and head.weight.data_ptr() != embed.data_ptr():
        excluded += sum(p.numel() for p in head.parameters())
    return total - excluded, total


def spec_from_model(model) -> ModelSpec:
    """Shape from the config, parameter counts from the weights actually loaded."""
    spec = ModelSpec.from_hf_config(model.config)
    nonembed, total = count_params(model)
    return ModelSpec(nonembed, spec.n_layer, spec.d_model, spec.d_attn, spec.vocab_size, total)


class HFBackend(LocalTokenizer):
    shares_prefill = True
    lockstep = True  # one batch at a time: the runner merges its problems' rounds (ttc.sweep.rounds)
    engine = None

    def __init__(self, model: str, dtype: str = "auto", device: str | None = None,
                 chat_template_kwargs: dict | None = None, concurrency: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.template_kwargs = dict(chat_template_kwargs or {})
        source = resolve_model(model)
        dtype_ = torch_dtype(dtype, self.device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source.path, **source.pretrained_kwargs())
            self.model = AutoModelForCausalLM.from_pretrained(source.path, dtype=dtype_,
                                                              **source.pretrained_kwargs())
        except (OSError, ValueError, KeyError) as e:  # missing files, no hub, unknown architecture
            first = first_line(e)
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
        identity.update(backend="hf", dtype=str(dtype_).removeprefix("torch."), device=self.device,
                        model_type=cfg.model_type,
                        revision=getattr(cfg, "_commit_hash", None))
        self.info = ModelInfo(name=model, source=source.path, spec=spec_from_model(self.model),
                              identity=identity)

    def close(self) -> None:
        pass

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        return [self.sample(self.encode(p), params, n) for p in prompts]

    def generate_requests(self, requests: list[Request]) -> list[list[Completion]]:
        """All requests in one padded batch: per-request seeds, limits, stop strings and temperatures."""
        if not requests:
            return []
        return self.sample_batch([(self.encode(r.text(self.render)), r) for r in requests])

    def sample(self, ids: list[int], params: GenParams, n: int) -> list[Completion]:
        """``n`` continuations of one tokenized prompt (one prefill, the cache repeated ``n`` times)."""
        return self.sample_batch([(ids, Request("", n=n, params=params))])[0]

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

    def _prefill(self, prompts: list[list[int]], cache):
        """Logits at the last prompt position of each prompt, and the attention mask and next positions
        of the left-padded batch (None when the prompts are equally long: no padding, no mask)."""
        lens = [len(ids) for ids in prompts]
        width = max(lens)
        if len(set(lens)) == 1:
            out = self.model(input_ids=torch.tensor(prompts, device=self.device), **{self.cache_arg: cache},
                             use_cache=True, logits_to_keep=1)
            return out.logits[:, -1, :], None, None
        pad = self.eos_ids[0]
        ids = torch.tensor([[pad] * (width - n) + p for n, p in zip(lens, prompts)], device=self.device)
        mask = torch.tensor([[0] * (width - n) + [1] * n for n in lens], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **{self.cache_arg: cache},
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :], mask, torch.tensor(lens, device=self.device)

    @torch.inference_mode()
    def sample_batch(self, batch: list[tuple[list[int], Request]]) -> list[list[Completion]]:
        """Each request's ``n`` continuations of its tokenized prompt, decoded in batches of at most
        ``MAX_ROWS`` samples.

        The prompts are prefilled together, once (left-padded when their lengths differ), and each prompt's
        cache row is copied for each of its samples that goes on past its first token; a request's rows draw
        from its own ``torch.Generator``, so
        one request's samples depend only on its seed, never on what shares the batch. Rows leave the cache
        when they finish (end of sequence, a stop string of their request, or their request's ``max_tokens``),
        so a long tail costs only its own tokens. A lone request runs exactly as ``sample`` always has: one
        unpadded prefill, the cache repeated ``n`` times.

        More than ``MAX_ROWS`` samples are decoded one chunk after the other (``row_chunks``: whole requests
        together, a larger request in chunks of its own), each from a copy of the one prefilled cache, so the
        memory of a call is bounded whatever ``n`` is (a 10,000-sample request holds 256 rows of cache and
        logits, not 10,000), the prompt is still read once, and a request's samples still depend only on its
        seed and ``n``."""
        from transformers import DynamicCache

        if any(not ids for ids, _ in batch):
            raise TTCError("empty prompt")
        reqs = [r for _, r in batch]
        cache = DynamicCache(config=self.model.config)
        logits, mask, positions = self._prefill([ids for ids, _ in batch], cache)
        owner = [k for k, r in enumerate(reqs) for _ in range(r.n)]  # owner[s]: the request of sample s
        gens = [torch.Generator(device=self.device).manual_seed(r.params.seed) for r in reqs]
        prompt_lens = [len(ids) for ids, _ in batch]
        chunks = row_chunks([r.n for r in reqs], MAX_ROWS)
        out: list[Completion | None] = [None] * len(owner)
        for i, samples in enumerate(chunks):
            if not samples:  # requests of n=0
                continue
            own = cache if i == len(chunks) - 1 else copy.deepcopy(cache)  # the last chunk takes the cache itself
            self._decode(own, logits, mask, positions, samples, owner, reqs, gens, prompt_lens, out)
        return [[out[s] for s in range(len(owner)) if owner[s] == k] for k in range(len(reqs))]

    def _decode(self, cache, logits, mask, positions, samples: list[int], owner: list[int], reqs: list[Request],
                gens: list, prompt_lens: list[int], out: list) -> None:
        """Decode ``samples`` (consecutive sample indices) from the prefilled ``cache`` (one row per request,
        changed in place) and its last ``logits``; each sample's completion goes to ``out[sample]``. The cache
        is expanded to one row per sample only for the samples that go on after their first token."""
        first, total = samples[0], len(samples)
        source = [owner[s] for s in samples]  # the prefill row (request) of each sample
        if len(reqs) == 1:
            logits = logits.float().expand(total, -1)
        else:
            logits = logits[torch.tensor(source, device=self.device)].float()
        eos = torch.tensor(self.eos_ids, device=self.device)
        tokens: list[list[int]] = [[] for _ in range(total)]  # by position in ``samples``
        logps: list[list[float]] = [[] for _ in range(total)]
        finish = ["length"] * total
        texts: list[str | None] = [None] * total
        stops: list[str | None] = [None] * total  # the stop string that ended each sample
        rows = [j for j in range(total) if reqs[source[j]].params.max_tokens > 0]  # rows[i]: sample of row i
        if len(rows) < total:
            logits = logits[rows]
        want_logprobs = any(r.params.logprobs for r in reqs)
        expanded = False  # the cache holds one row per request until a sample needs its own
        while rows:
            nxt = self._draw(logits, [source[j] for j in rows], reqs, gens)
            chosen = logits.log_softmax(-1).gather(-1, nxt[:, None])[:, 0].tolist() if want_logprobs else None
            done = torch.isin(nxt, eos).tolist()
            nxt_list = nxt.tolist()
            keep = []
            for i, j in enumerate(rows):
                params = reqs[source[j]].params
                tokens[j].append(nxt_list[i])
                if params.logprobs:
                    logps[j].append(chosen[i])
                if done[i]:
                    finish[j] = "stop"
                elif params.stop and self._hit_stop(tokens[j], params.stop, texts, j, stops):
                    finish[j] = "stop"
                elif len(tokens[j]) < params.max_tokens:
                    keep.append(i)
            if not keep:
                break
            if not expanded:  # each sample that goes on gets its prompt's row of the cache (and mask)
                idx = torch.tensor([source[rows[i]] for i in keep], device=self.device)
                expanded = True
            elif len(keep) < len(rows):  # finished samples leave the cache
                idx = torch.tensor(keep, device=self.device)
            else:
                idx = None
            if idx is not None:
                cache.batch_select_indices(idx)
                if mask is not None:
                    mask, positions = mask[idx], positions[idx]
            if len(keep) < len(rows):
                nxt = nxt[torch.tensor(keep, device=self.device)]
                rows = [rows[i] for i in keep]
            step = {}
            if mask is not None:  # padded prompts: the mask grows by the new token, positions count real ones
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                step = dict(attention_mask=mask, position_ids=positions[:, None])
                positions = positions + 1
            logits = self.model(input_ids=nxt[:, None], **{self.cache_arg: cache}, use_cache=True,
                                **step).logits[:, -1, :].float()
        for j in range(total):
            k = source[j]
            out[first + j] = self._completion(tokens[j], prompt_lens[k], finish[j], texts[j],
                                              logps[j] if reqs[k].params.logprobs else None, stops[j])

    @staticmethod
    def _draw(logits: torch.Tensor, owners: list[int], reqs: list[Request], gens: list) -> torch.Tensor:
        """One token per row, each request's rows sampled together with its own generator."""
        if len(set(owners)) == 1:
            r = owners[0]
            return sample_next(logits, reqs[r].params.temperature, reqs[r].params.top_p, gens[r])
        nxt = torch.empty(len(owners), dtype=torch.long, device=logits.device)
        for r in dict.fromkeys(owners):
            idx = torch.tensor([j for j, o in enumerate(owners) if o == r], device=logits.device)
            nxt[idx] = sample_next(logits[idx], reqs[r].params.temperature, reqs[r].params.top_p,
                                   gens[r])
        return nxt

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


def row_chunks(sizes: list[int], max_rows: int) -> list[list[int]]:
    """The samples of requests with ``sizes`` samples each (numbered in request order) in chunks of at most
    ``max_rows``: whole requests together in order, a request larger than ``max_rows`` in chunks of its own."""
    chunks: list[list[int]] = []
    current: list[int] = []
    start = 0
    for n in sizes:
        if n > max_rows:
            if current:
                chunks.append(current)
                current = []
            chunks += [list(range(a, min(a + max_rows, start + n))) for a in range(start, start + n, max_rows)]
        else:
            if len(current) + n > max_rows:
                chunks.append(current)
                current = []
            current += range(start, start + n)
        start += n
    if current or not chunks:
        chunks.append(current)
    return chunks


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
