"""Generation throughput of ttc's transformers backend against a plain ``model.generate`` loop.

Same model, problems and sampling settings (chain_sum prompts, n samples each, temperature 0.7,
top-p 1, no top-k). Tokens/s counts generated tokens up to and including the end-of-sequence token,
the tokens a user asked for; padding a batched ``generate`` computes after a row ends is not counted.

    python benchmarks/bench_generate.py [--problems 4] [--n 16] [--max-tokens 128] [--dtype float32]

Rows:
  plain generate      model.generate(num_return_sequences=n), the hand-written ceiling to compare with
  ttc shared prefill  HFBackend.generate: one prefill per problem, finished rows dropped from the cache
  ttc n separate      HFBackend called n times with n=1 per problem (no sharing, no batching)
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def plain_generate(model, tok, prompts_ids, n, max_tokens, temperature, eos_ids, seed):
    total, start = 0, time.perf_counter()
    for i, ids in enumerate(prompts_ids):
        torch.manual_seed(seed + i)
        x = torch.tensor([ids])
        with torch.inference_mode():
            out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=True, temperature=temperature,
                                 top_p=1.0, top_k=0, max_new_tokens=max_tokens, num_return_sequences=n,
                                 eos_token_id=eos_ids, pad_token_id=eos_ids[0])
        for row in out[:, len(ids):].tolist():
            end = next((j for j, t in enumerate(row) if t in eos_ids), None)
            total += len(row) if end is None else end + 1
    return total, time.perf_counter() - start


def ttc_generate(backend, prompts_ids, n, params, separate=False):
    from dataclasses import replace

    total, start = 0, time.perf_counter()
    for i, ids in enumerate(prompts_ids):
        p = replace(params, seed=params.seed + i)
        if separate:
            comps = [c for j in range(n) for c in backend.sample(ids, replace(p, seed=p.seed * 1000 + j), 1)]
        else:
            comps = backend.sample(ids, p, n)
        total += sum(c.generated_tokens for c in comps)
    return total, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--dtype", default="float32,bfloat16", help="comma-separated dtypes to measure")
    ap.add_argument("--skip-separate", action="store_true", help="skip the slow n-separate-calls row")
    args = ap.parse_args()

    from tasks import get_task
    from ttc.backends.base import GenParams
    from ttc.backends.hf import HFBackend

    task = get_task("chain_sum")
    problems = task.load(args.problems, seed=0)
    rows = []
    for dtype in args.dtype.split(","):
        backend = HFBackend("smollm2-135m", dtype=dtype)
        prompts = [backend.encode(task.prompt(p)) for p in problems]
        params = GenParams(temperature=args.temperature, top_p=1.0, max_tokens=args.max_tokens, seed=0)
        backend.sample(prompts[0], params, 2)  # warm-up
        plain = plain_generate(backend.model, backend.tokenizer, prompts, args.n, args.max_tokens,
                               args.temperature, backend.eos_ids, seed=0)
        shared = ttc_generate(backend, prompts, args.n, params)
        rows.append((dtype, "plain generate", *plain))
        rows.append((dtype, "ttc shared prefill", *shared))
        if not args.skip_separate:
            rows.append((dtype, "ttc n separate", *ttc_generate(backend, prompts, args.n, params, separate=True)))
        del backend

    load = os.getloadavg()[0]
    print(f"\nSmolLM2-135M-Instruct, {args.problems} chain_sum problems x n={args.n}, max_tokens={args.max_tokens}, "
          f"temperature={args.temperature}; torch threads={torch.get_num_threads()}, load avg {load:.1f}\n")
    print(f"{'dtype':<9} {'path':<20} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'vs plain':>9}")
    base = {d: t / s for d, name, t, s in rows if name == "plain generate"}
    for dtype, name, tokens, secs in rows:
        rate = tokens / secs
        print(f"{dtype:<9} {name:<20} {tokens:>7} {secs:>8.1f} {rate:>7.1f} {rate / base[dtype]:>8.2f}x")
    for dtype in base:
        shared = next(t / s for d, n, t, s in rows if d == dtype and n == "ttc shared prefill")
        sep = [t / s for d, n, t, s in rows if d == dtype and n == "ttc n separate"]
        if sep:
            print(f"{dtype}: shared prefill vs n separate calls: {shared / sep[0]:.2f}x")


if __name__ == "__main__":
    main()
