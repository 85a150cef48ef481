"""Run configuration: small frozen dataclasses, validated on construction, mapped 1:1 onto CLI flags.

The run id is derived from a hash of everything that changes what gets generated, so running the same
command twice resumes the first run instead of duplicating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

from ttc.errors import TTCError

DTYPES = ("auto", "bfloat16", "float16", "float32")
# vLLM engine arguments that place the model on hardware without changing what it samples: left out of
# the run id, so a run that ran out of memory resumes with a smaller gpu_memory_utilization or more GPUs.
PLACEMENT_ENGINE_ARGS = frozenset({
    "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "gpu_memory_utilization",
    "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "swap_space", "cpu_offload_gb",
    "distributed_executor_backend", "disable_log_stats", "kv_cache_memory_bytes", "block_size",
    "enable_chunked_prefill",
})
ENGINE_ARG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SamplingConfig:
    """How each completion is sampled (the same meaning as vLLM's ``SamplingParams``)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0

    def __post_init__(self):
        if not (0 <= self.temperature < float("inf")):
            raise TTCError(f"--temperature must be a finite number >= 0, got {self.temperature}")
        if not (0 < self.top_p <= 1):
            raise TTCError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise TTCError(f"--max-tokens must be a positive integer, got {self.max_tokens}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise TTCError(f"--seed must be an integer in [0, 2**32), got {self.seed}")


@dataclass(frozen=True)
class SweepConfig:
    """What is swept: every task x model x sampler, each at every budget."""

    tasks: tuple[str, ...] = ("chain_sum",)
    models: tuple[str, ...] = ("smollm2-135m",)
    samplers: tuple[str, ...] = ("sample",)
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16)
    limit: int = 20
    data_file: str | None = None  # a local copy of a hub benchmark, or a custom task's JSONL

    def __post_init__(self):
        for name, values in (("--task", self.tasks), ("--model", self.models), ("--sampler", self.samplers)):
            if not values or any(not v for v in values):
                raise TTCError(f"{name} needs at least one non-empty name")
            if len(set(values)) != len(values):
                raise TTCError(f"{name} lists a name twice: {','.join(values)}")
        if not self.budgets:
            raise TTCError("--budget needs at least one positive integer")
        if any((not isinstance(b, int)) or isinstance(b, bool) or b < 1 for b in self.budgets):
            raise TTCError(f"--budget must be positive integers, got {self.budgets}")
        if list(self.budgets) != sorted(set(self.budgets)):
            raise TTCError(f"--budget must be strictly increasing with no repeats, got {self.budgets}")
        if self.limit < 1:
            raise TTCError(f"--limit must be a positive integer, got {self.limit}")
        if self.data_file is not None and not str(self.data_file).strip():
            raise TTCError("--data-file needs a path")


PRM_AGGREGATES = ("last", "min", "prod")


@dataclass(frozen=True)
class StrategyConfig:
    """Settings of the strategies beyond repeated sampling (``samplers/``): the verifier that scores
    completions, the step delimiter and search shape, and the thinking budgets of budget forcing."""

    verifier: str = "self-logprob"  # self-logprob | self-judge | oracle | orm:<path> | prm:<path>
    prm_agg: str = "last"  # how step scores become one score: last | min | prod
    step_delimiter: str = "\n\n"  # steps of a solution for search and process rewards
    beam_width: int = 2  # M: each kept beam is expanded into M continuations (beam, dvts)
    lookahead: int = 0  # greedy steps rolled out past a candidate step before scoring it (beam)
    max_steps: int = 12  # step limit of a search path
    think_budgets: tuple[int, ...] = (32, 64, 128)  # budget forcing caps, in tokens of thought
    think_end: str = ""  # end-of-thinking delimiter, e.g. "</think>"; empty: the chain ends at end of sequence
    answer_prefix: str = "\n\nFinal answer: "  # appended to force the answer when the cap is reached
    answer_tokens: int = 16  # tokens allowed for the forced answer
    num_wait: int = 0  # times the end of thinking is suppressed with "Wait" (s1 extension)
    chains: int = 4  # independent chains per problem for budget forcing

    def __post_init__(self):
        if self.prm_agg not in PRM_AGGREGATES:
            raise TTCError(f"--prm-agg must be one of {', '.join(PRM_AGGREGATES)}, got {self.prm_agg!r}")
        if not self.step_delimiter:
            raise TTCError("--step-delimiter must not be empty")
        for flag, v, lo in (("--beam-width", self.beam_width, 1), ("--lookahead", self.lookahead, 0),
                            ("--max-steps", self.max_steps, 1), ("--answer-tokens", self.answer_tokens, 1),
                            ("--num-wait", self.num_wait, 0), ("--chains", self.chains, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise TTCError(f"{flag} must be an integer >= {lo}, got {v!r}")
        b = self.think_budgets
        if not b or any(not isinstance(x, int) or x < 1 for x in b) or list(b) != sorted(set(b)):
            raise TTCError(f"--think-budget must be strictly increasing positive integers, got {b}")


BACKEND_FIELDS = ("name", "dtype", "engine_args", "base_url", "api_key_env", "serve", "request_timeout", "retries",
                  "concurrency")


@dataclass(frozen=True)
class BackendConfig:
    """Which engine generates (``--backend``, ``--dtype``, ``--engine-arg``) and how it is reached and driven
    (server URL, key, retries, requests in flight); only the first part changes what is generated."""

    name: str = "hf"  # hf (transformers) | vllm (offline engine) | openai (an OpenAI-compatible server)
    dtype: str = "auto"
    # vllm (and openai --serve): keyword arguments passed through to vllm.LLM / the vLLM server.
    engine_args: dict = field(default_factory=dict)
    # openai: where the server is, the environment variable holding its key (never the key itself).
    base_url: str | None = None
    api_key_env: str | None = None
    serve: bool = False
    request_timeout: float = 600.0
    retries: int = 8
    # How many problems are in flight at once; None: the backend's default (hf 8, in lock-step groups; vllm 256;
    # openai 16).
    concurrency: int | None = None
    # Passed to the chat template (``{"enable_thinking": true}`` for Qwen3-style thinking models).
    chat_template_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise TTCError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for key in self.engine_args:
            if not ENGINE_ARG_KEY.match(key):
                raise TTCError(f"--engine-arg name must be a Python identifier like max_model_len, got {key!r}")
        if self.engine_args and self.name not in ("vllm", "openai"):
            raise TTCError("--engine-arg applies to --backend vllm (or openai with --serve)")
        if self.engine_args and self.name == "openai" and not self.serve:
            raise TTCError("--engine-arg with --backend openai needs --serve (a remote server has its own)")
        if self.name == "openai":
            if self.serve and self.base_url:
                raise TTCError("give either --base-url or --serve, not both")
            if not self.serve and not self.base_url:
                raise TTCError("--backend openai needs --base-url http://HOST:PORT/v1 (or --serve)")
            if self.base_url and not re.match(r"^https?://[^/\s]+", self.base_url):
                raise TTCError(f"--base-url must be an http(s) URL like http://127.0.0.1:8000/v1, "
                               f"got {self.base_url!r}")
        elif self.base_url or self.serve:
            raise TTCError("--base-url and --serve apply to --backend openai")
        if self.api_key_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", self.api_key_env):
            raise TTCError(f"--api-key-env must name an environment variable, got {self.api_key_env!r}")
        if not self.request_timeout > 0:
            raise TTCError(f"--request-timeout must be positive seconds, got {self.request_timeout}")
        if self.retries < 0:
            raise TTCError(f"--retries must be >= 0, got {self.retries}")
        if not isinstance(self.chat_template_kwargs, dict):
            raise TTCError("--chat-template-kwargs must be a JSON object like '{\"enable_thinking\": true}'")
        if self.chat_template_kwargs and self.name == "openai":
            raise TTCError("--chat-template-kwargs applies to --backend hf and vllm; a server applies its own "
                           "template (start vLLM with --default-chat-template-kwargs)")
        if self.concurrency is not None and self.concurrency < 1:
            raise TTCError(f"--concurrency must be a positive integer, got {self.concurrency}")

    def identity(self) -> dict:
        """What changes the generated text: the engine, its dtype and the engine arguments that are not
        about placement. Empty engine arguments are left out, so ids stay the same as before they existed."""
        d = {"backend": self.name, "dtype": self.dtype}
        engine = {k: v for k, v in self.engine_args.items() if k not in PLACEMENT_ENGINE_ARGS}
        if engine:
            d["engine_args"] = engine
        if self.chat_template_kwargs:  # changes the prompt; absent when unset, so earlier ids hold
            d["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return d


@dataclass(frozen=True)
class ClusterConfig:
    """Where the sweep runs. ``address`` None: in this process. Otherwise a Ray cluster: ``auto`` joins the
    running one, ``local`` starts a private one, anything else is a Ray address. ``replicas`` holds
    ``(model, count)`` pairs, model ``""`` meaning every model (empty: fill the cluster). Not part of the
    run id: the same sweep resumes whether it ran in one process or on any number of workers."""

    address: str | None = None
    replicas: tuple[tuple[str, int], ...] = ()
    cpus_per_replica: int = 1
    gpus_per_replica: int | None = None  # None: read from the cluster when each replica starts
    replica_timeout: float = 3600.0  # a replica holding problems that returns none for this long is hung

    def __post_init__(self):
        if self.address is not None and not str(self.address).strip():
            raise TTCError("--ray needs an address, auto or local")
        if self.address is None and self.replicas:
            raise TTCError("--replicas applies with --ray")
        for model, n in self.replicas:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise TTCError(f"--replicas must be positive integers, got {model + '=' if model else ''}{n}")
        if self.cpus_per_replica < 1:
            raise TTCError(f"--cpus-per-replica must be a positive integer, got {self.cpus_per_replica}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise TTCError(f"--gpus-per-replica must be 0 or more, got {self.gpus_per_replica}")
        if not self.replica_timeout >= 0:
            raise TTCError(f"--replica-timeout must be seconds >= 0 (0: no deadline), got {self.replica_timeout}")

    def replicas_for(self, model: str) -> int | None:
        """The count named for ``model`` (or for every model); None when left to the cluster's size."""
        named = dict(self.replicas)
        return named.get(model, named.get(""))


def parse_replicas(text: str) -> tuple[tuple[str, int], ...]:
    """``"2"`` -> ``(("", 2),)``; ``"a=2,b=1"`` -> ``(("a", 2), ("b", 1))``; anything else is a ``TTCError``."""
    out = []
    for item in text.split(","):
        model, _, count = item.strip().rpartition("=")
        try:
            out.append((model.strip(), int(count)))
        except ValueError:
            raise TTCError(f"--replicas must be N or MODEL=N,..., got {text!r}") from None
    if len({m for m, _ in out}) != len(out):
        raise TTCError(f"--replicas names a model twice: {text!r}")
    return tuple(out)


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``python -m ttc.run`` invocation needs. ``cluster`` says where it runs; it is left
    out of ``to_dict`` (the header's config) and of the run id."""

    sweep: SweepConfig = field(default_factory=SweepConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    out: str = "runs"
    cluster: ClusterConfig = field(default_factory=ClusterConfig, compare=False)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("cluster")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """The inverse of ``to_dict``; also reads headers written before the backend settings were grouped."""
        def tuples(section: dict) -> dict:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}

        backend = d["backend"]
        if not isinstance(backend, dict):  # the flat layout: backend name, dtype and server settings at top level
            backend = {"name": backend, **{k: d[k] for k in BACKEND_FIELDS[1:] if k in d}}
        return cls(sweep=SweepConfig(**tuples(d["sweep"])), sampling=SamplingConfig(**d["sampling"]),
                   strategy=StrategyConfig(**tuples(d.get("strategy", {}))),
                   backend=BackendConfig(**backend), out=d["out"])

    def identity(self) -> dict:
        """The part of the config that determines what is generated (the output dir and how the engine is
        reached do not). Its layout is kept as it was first written, so run ids of earlier runs still hold."""
        d = {"sweep": dataclasses.asdict(self.sweep), "sampling": dataclasses.asdict(self.sampling)}
        if self.sweep.data_file is None:  # absent when unset, so earlier runs keep their ids
            d["sweep"].pop("data_file")
        if self.strategy != StrategyConfig():  # runs that set no strategy flag keep their earlier ids
            d["strategy"] = dataclasses.asdict(self.strategy)
        d.update(self.backend.identity())
        return d

    def config_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def run_id(self) -> str:
        s = self.sweep
        parts = [s.tasks[0] if len(s.tasks) == 1 else f"{len(s.tasks)}tasks",
                 s.models[0] if len(s.models) == 1 else f"{len(s.models)}models",
                 s.samplers[0] if len(s.samplers) == 1 else f"{len(s.samplers)}samplers"]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))[:80]
        return f"{slug}-{self.config_hash()[:10]}"


def parse_budgets(text: str) -> tuple[int, ...]:
    """Parse ``"1,2,4,8"`` into ``(1, 2, 4, 8)``; anything else is a ``TTCError``."""
    try:
        budgets = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise TTCError(f"--budget must be a comma-separated list of positive integers, got {text!r}") from None
    if any(b < 1 for b in budgets):
        raise TTCError(f"--budget must be a comma-separated list of positive integers, got {text!r}")
    return tuple(sorted(set(budgets)))


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(","))


def parse_engine_args(items: list[str] | None) -> dict:
    """``["tensor_parallel_size=2", "dtype=bfloat16"]`` -> ``{"tensor_parallel_size": 2, "dtype": "bfloat16"}``.

    Values are read as JSON where they parse (``2``, ``0.9``, ``true``, ``null``, ``{"a": 1}``), Python's
    ``True``/``False``/``None`` as well; anything else stays a string.
    """
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise TTCError(f"--engine-arg must look like KEY=VALUE, got {item!r}")
        if key in out:
            raise TTCError(f"--engine-arg {key} is given twice")
        raw = raw.strip()
        literals = {"True": True, "False": False, "None": None}
        if raw in literals:
            out[key] = literals[raw]
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def parse_template_kwargs(text: str | None) -> dict:
    """``--chat-template-kwargs`` JSON -> dict; anything but a JSON object is a ``TTCError``."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise TTCError(f"--chat-template-kwargs must be a JSON object like '{{\"enable_thinking\": true}}', "
                       f"got {text!r}")
    return value


def unescape(text: str) -> str:
    """A flag's text with its escapes read (``"\\n\\n"`` -> two newlines), as ``--step-delimiter`` takes it."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
