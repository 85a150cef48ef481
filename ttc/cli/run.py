"""``ttc run`` (also ``python -m ttc.run``): run (or resume) a test-time compute sweep and write ``runs/<run_id>/``.

Exit codes: 0 done; 2 an error (one line on stderr; everything already stored is kept, and re-running
the same command resumes); 130 interrupted (likewise resumable).
"""

from __future__ import annotations

import argparse
import os
import sys

from ttc.errors import HelpFormatter, OneLineParser, cli_guard, debug_requested
from ttc.sweep.config import RunConfig, parse_template_kwargs  # noqa: F401  (parse_template_kwargs: re-exported)

DEFAULTS = RunConfig()


def build_parser(prog: str = "ttc run") -> argparse.ArgumentParser:
    d, s = DEFAULTS.sweep, DEFAULTS.sampling
    p = OneLineParser(
        prog=prog,
        description="Sample every problem of each task once at the largest budget, grade and cost each "
                    "completion in FLOPs, and derive accuracy, pass@k and maj@k at every budget. "
                    "Re-running the same command resumes the run.",
        formatter_class=HelpFormatter)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a sweep file (TOML, or YAML): the flags below as keys without their dashes, and "
                        "[[sweep]] tables for several sweeps run one after another; flags given on the command "
                        "line override the file. Every run writes its resolved runs/<id>/sweep.toml, which "
                        "reproduces it (docs/sweep-files.md)")
    p.add_argument("--task", default=",".join(d.tasks),
                   help="comma-separated task names (see `ttc tasks`), or rg:<family>")
    p.add_argument("--model", default=",".join(d.models),
                   help="comma-separated models: an embedded alias (smollm2-135m), a local HF checkpoint "
                        "directory, or a Hugging Face hub id")
    p.add_argument("--sampler", default=",".join(d.samplers), help="comma-separated test-time strategies")
    p.add_argument("--budget", default=",".join(map(str, d.budgets)),
                   help="comma-separated sample budgets k; generation happens once at the largest")
    p.add_argument("--limit", type=int, default=d.limit, help="number of problems per task")
    p.add_argument("--data-file", default=None, metavar="PATH",
                   help="local .jsonl/.parquet copy of a hub benchmark (offline machines), or the JSONL "
                        "of a custom:<grader> task; same columns as the hub dataset")
    p.add_argument("--seed", type=int, default=s.seed, help="seed for problem generation and sampling")
    p.add_argument("--temperature", type=float, default=s.temperature, help="sampling temperature (0 = greedy)")
    p.add_argument("--top-p", type=float, default=s.top_p, help="nucleus sampling threshold")
    p.add_argument("--max-tokens", type=int, default=s.max_tokens,
                   help="maximum generated tokens of every record: a sample (sample, best_of_n), a final path "
                        "(beam, dvts), a chain's thought plus its answer (budget_forcing: each --think-budget "
                        "plus --answer-tokens must fit, else the run is refused)")
    p.add_argument("--backend", default=DEFAULTS.backend.name,
                   help="inference backend: hf (transformers), vllm (offline vLLM engine), or openai "
                        "(any OpenAI-compatible server: vLLM, SGLang, llama.cpp, a hosted endpoint)")
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="vllm: keyword argument for vllm.LLM, repeatable (tensor_parallel_size=2, "
                        "max_model_len=8192, gpu_memory_utilization=0.85, quantization=awq); values are "
                        "read as JSON where they parse. With openai --serve: flags of the started server")
    p.add_argument("--base-url", default=None, help="openai: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="openai: name of the environment variable that holds the API key (never logged)")
    p.add_argument("--serve", action="store_true",
                   help="openai: start a local vLLM server on 127.0.0.1 for the model and stop it at the end")
    p.add_argument("--chat-template-kwargs", default=None, metavar="JSON",
                   help="options for the chat template, as a JSON object, e.g. '{\"enable_thinking\": true}' "
                        "for thinking models (part of the run id)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="problems in flight at once (default: 8 for hf, whose problems share batches in "
                        "lock-step rounds; 256 for vllm, 16 for openai)")
    p.add_argument("--request-timeout", type=float, default=DEFAULTS.backend.request_timeout,
                   help="openai: seconds before a request is abandoned and retried")
    p.add_argument("--retries", type=int, default=DEFAULTS.backend.retries,
                   help="openai: retries of a request after 429/5xx, timeouts and dropped connections")
    add_strategy_args(p)
    add_cluster_args(p)
    p.add_argument("--dtype", default=DEFAULTS.backend.dtype,
                   help="weights dtype: auto (bfloat16 on GPUs and on CPUs with native bfloat16, else float32), "
                        "bfloat16, float16, float32")
    p.add_argument("--out", default=DEFAULTS.out, help="directory that holds run directories")
    p.add_argument("--no-progress", action="store_true",
                   help="hide the progress bar and the weight download/loading bars")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of any error (also TTC_DEBUG=1)")
    return p


def add_strategy_args(p: argparse.ArgumentParser) -> None:
    """Flags of the strategies beyond repeated sampling (see the README's Strategies section)."""
    t = DEFAULTS.strategy
    g = p.add_argument_group("strategies (best_of_n, budget_forcing, beam, dvts)")
    g.add_argument("--verifier", default=t.verifier,
                   help="scores candidates: self-logprob, self-judge, oracle, orm:<path-or-id>, prm:<path-or-id> "
                        "(token-classification PRM, Qwen2.5-Math-PRM style), prm-lm:<path-or-id> (RLHFlow style)")
    g.add_argument("--prm-agg", default=t.prm_agg, help="step scores to one score: last, min or prod")
    g.add_argument("--step-delimiter", default=t.step_delimiter.encode("unicode_escape").decode(),
                   help="text that ends a solution step (escapes such as \\n are read)")
    g.add_argument("--beam-width", type=int, default=t.beam_width,
                   help="beam, dvts: continuations per kept path (M); budget N keeps N/M paths or subtrees")
    g.add_argument("--lookahead", type=int, default=t.lookahead, help="beam: greedy steps rolled out before scoring")
    g.add_argument("--max-steps", type=int, default=t.max_steps, help="beam, dvts: steps per path at most")
    g.add_argument("--think-budget", default=",".join(map(str, t.think_budgets)),
                   help="budget_forcing: comma-separated caps on tokens of thought (its budget axis)")
    g.add_argument("--think-end", default=t.think_end,
                   help="budget_forcing: end-of-thinking delimiter such as </think> (empty: end of sequence)")
    g.add_argument("--answer-prefix", default=t.answer_prefix.encode("unicode_escape").decode(),
                   help="budget_forcing: text appended after the thinking to force the answer")
    g.add_argument("--answer-tokens", type=int, default=t.answer_tokens, help="budget_forcing: tokens of a forced answer")
    g.add_argument("--num-wait", type=int, default=t.num_wait,
                   help="budget_forcing: times the end of thinking is replaced by 'Wait'")
    g.add_argument("--chains", type=int, default=t.chains, help="budget_forcing: chains per problem")


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    """Flags of a sweep on a Ray cluster (see the README's Cluster section)."""
    g = p.add_argument_group("cluster (Ray)")
    g.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: no value or auto joins RAY_ADDRESS if set, else the running one "
                        "(ray start --head); local starts a private one on this machine (never RAY_ADDRESS's), "
                        "stopped at the end; else a Ray address (host:port, ray://host:port)")
    g.add_argument("--replicas", default=None, metavar="N|MODEL=N,...",
                   help="--ray: backend replicas (Ray actors) per model; default: as many as the cluster's GPUs "
                        "(vllm) or CPUs hold, shared between the models")
    g.add_argument("--cpus-per-replica", type=int, default=1,
                   help="--ray: CPUs reserved by each replica, also its torch threads (hf)")
    g.add_argument("--gpus-per-replica", type=int, default=None,
                   help="--ray: GPUs reserved by each replica; default: read from the cluster as each replica "
                        "starts (vllm: tensor x pipeline x data parallel sizes; hf: 1; none on a CPU cluster)")
    g.add_argument("--replica-timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="--ray: a replica that holds problems and returns none for this long is taken to be hung, "
                        "killed and replaced (0: no deadline)")


def resolve_dtype(values: dict) -> dict:
    """``--dtype auto`` resolved for this machine before the run id is hashed: ``--dtype auto`` and the dtype it
    stands for here are one run (a remote server's ``auto`` stays)."""
    from ttc.backends import resolve_auto_dtype

    backend, dtype = values.get("backend", DEFAULTS.backend.name), values.get("dtype", DEFAULTS.backend.dtype)
    if dtype == "auto" and (backend != "openai" or values.get("serve", False)):
        return {**values, "dtype": resolve_auto_dtype(backend, dtype)}
    return values


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The config of a parsed command line (without ``--config``), through the one table ``OPTIONS``."""
    from ttc.sweep.sweepfile import config_from_values, values_from_flags

    return config_from_values(resolve_dtype(values_from_flags(args)))


def given_flags(argv: list[str], prog: str) -> dict:
    """``{key: field value}`` of the options written on the command line (not their defaults)."""
    from ttc.sweep.sweepfile import values_from_flags

    p = build_parser(prog)
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return values_from_flags(p.parse_args(argv))


def configs_from_args(args: argparse.Namespace, argv: list[str], prog: str = "ttc run") -> list[RunConfig]:
    """The sweeps to run: the command line's one, or with ``--config`` every sweep of the file, the flags given
    on the command line overriding the file's values. Sweeps that come out as the same run are run once."""
    if args.config is None:
        return [config_from_args(args)]
    from ttc.sweep.sweepfile import configs_from_file

    configs, seen = [], set()
    for config in configs_from_file(args.config, given_flags(argv, prog), prepare=resolve_dtype):
        if config.run_id not in seen:
            seen.add(config.run_id)
            configs.append(config)
    return configs


def print_summary(summary_path) -> None:
    import pandas as pd

    s = pd.read_csv(summary_path)
    if "level" in s.columns:  # per-difficulty rows are in the file; the table shows the overall ones
        s = s[s["level"].astype(str) == "all"]
    if s.empty:
        return
    table = s.pivot_table(index=["task", "model", "sampler", "budget"], columns="metric", values="value")
    flops = s.groupby(["task", "model", "sampler", "budget"])["flops_per_problem"].first()
    table["GFLOPs/problem"] = flops / 1e9
    print(table.round(3).to_string())


def print_routes(run_dir) -> None:
    """The share of answers by extraction route (``ttc.metrics.routes``), read from the answer columns only."""
    from ttc.metrics.routes import extraction_routes, format_routes
    from ttc.report.browse import load_columns

    df = load_columns(run_dir, ["task", "model", "sampler", "answer", "answer_strict", "correct"])
    text = format_routes(extraction_routes(df))
    if text:
        print(text)


def main(argv: list[str] | None = None, prog: str = "ttc run") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: sweep(configs_from_args(args, argv, prog), args.no_progress),
                     debug=debug_requested("--debug" in argv))


def hide_loading_bars() -> None:
    """The weight download and loading bars of huggingface_hub and transformers."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when they are first imported
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def sweep(configs: list[RunConfig], no_progress: bool = False) -> int:
    """Run each sweep in turn (every one was checked before the first starts)."""
    if no_progress:
        hide_loading_bars()
    from ttc.sweep.runner import run_sweep, validate

    if len(configs) > 1:  # a later sweep's unknown name is found before the first sweep runs
        for config in configs:
            validate(config)
    for i, config in enumerate(configs, 1):
        if len(configs) > 1:
            print(f"sweep {i} of {len(configs)}: {config.run_id}", flush=True)
        store = run_sweep(config, progress=not no_progress)
        print_summary(store.root / "summary.csv")
        print_routes(store.root)
        print(f"run directory: {store.root}")
    return 0
