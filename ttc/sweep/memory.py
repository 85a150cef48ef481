"""Will a sweep's records fit in memory? An estimate made before the run directory exists.

What grows with ``--budget`` is what a problem holds until its one durable write (``Shard.append_problem``):
every one of its records, as the backend's completions, the strategy's outputs, the stored records and the
Arrow table written. A problem is stored whole or not at all, so these cannot be streamed out early; the
problems in flight (``--concurrency``, or the backend's default) hold theirs at the same time. Per sample
that is ``RECORD_BYTES`` before the text (measured: Completion 194 B, Output 272 B, SampleRecord 402 B,
Arrow row 163 B), the text twice (the ``str`` shared by the completion and the record, and its copy in the
Arrow table), and what the backend keeps per generated token while the problem is in flight
(``TOKEN_BYTES``: vLLM's token ids, 36 B; an OpenAI-compatible server's response with its per-token
log-probabilities, which ttc always asks for: 83 B of JSON and 414 B parsed, while the response is read).

The transformers backend holds ``MAX_ROWS`` (256) rows of KV cache and logits at a time whatever the
budget (``ttc.backends.hf``), vLLM pages its KV cache within ``gpu_memory_utilization``, and a server's
memory is its own: none of these grows with the budget, and the model's weights are not counted either.

Two numbers come out. ``least``: the records without their texts, which any run of the sweep needs: above the
memory this machine has free, the sweep is refused before anything is written. ``most``: every text at
``--max-tokens`` (``CHARS_PER_TOKEN`` characters a token): above free memory, one warning line says that the
sweep may run out of memory. Time is not estimated: nothing before the first problem tells ttc how fast this
machine decodes (the progress bar does once problems finish).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from ttc.errors import TTCError

RECORD_BYTES = 1000  # one sample's objects from the backend to the durable write, its text left out
TEXT_COPIES = 2  # the text as a str (completion and record share it) and in the Arrow table
CHARS_PER_TOKEN = 4  # a BPE token of English text or code, on average
TOKEN_BYTES = {"hf": 0, "vllm": 40, "openai": 500}  # kept per generated token of a problem in flight
BACKEND_MODULES = {"hf": "ttc.backends.hf", "vllm": "ttc.backends.vllm", "openai": "ttc.backends.openai"}


@dataclass(frozen=True)
class Estimate:
    """The records a sweep holds in memory at once, at the least and at the most."""

    records: int  # records one problem holds until its write (the largest of the sweep's strategies)
    in_flight: int  # problems in flight at once
    least: int  # bytes: the records without their texts
    most: int  # bytes: every text at --max-tokens

    def describe(self) -> str:
        return f"{self.in_flight} problem{'s' * (self.in_flight != 1)} in flight x {self.records:,} records"


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What this process's cgroup (v2, else v1's memory controller) still allows, where it sets a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v2 = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
    v1 = next((line.split(":", 2)[2] for line in lines if "memory" in line.split(":", 2)[1].split(",")), None)
    places = []
    if v2 is not None:
        places += [(Path("/sys/fs/cgroup") / v2.lstrip("/"), "memory.max", "memory.current")]
    if v1 is not None:
        places += [(Path("/sys/fs/cgroup/memory") / v1.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for d, limit_file, used_file in places:
        try:
            limit, used = (d / limit_file).read_text().strip(), int((d / used_file).read_text())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # no limit set
            return None
        return max(0, int(limit) - used)
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the kernel's MemAvailable, less where a cgroup limit leaves
    less; None where neither can be read (not Linux)."""
    known = [x for x in (_meminfo_available(), _cgroup_room()) if x is not None]
    return min(known) if known else None


def in_flight(config, problems_per_model: int) -> int:
    """Problems a model has in flight at once: ``--concurrency`` or the backend's default, at most all of them."""
    width = config.backend.concurrency
    if width is None and config.backend.name in BACKEND_MODULES:  # the backend's own DEFAULT_CONCURRENCY
        width = importlib.import_module(BACKEND_MODULES[config.backend.name]).DEFAULT_CONCURRENCY
    return max(1, min(width or 1, problems_per_model))


def estimate(config, records_per_problem: int, problems_per_model: int) -> Estimate:
    """The memory the sweep's records take at once (see the module's docstring)."""
    width = in_flight(config, problems_per_model)
    held = width * records_per_problem
    per_token = TEXT_COPIES * CHARS_PER_TOKEN + TOKEN_BYTES.get(config.backend.name, 0)
    return Estimate(records_per_problem, width, held * RECORD_BYTES,
                    held * (RECORD_BYTES + config.sampling.max_tokens * per_token))


def check_memory(config, records_per_problem: int, problems_per_model: int, sampler: str,
                 available: int | None = None) -> Estimate:
    """``TTCError`` if the sweep's records cannot fit in ``available`` bytes (default: this machine's free
    memory); one warning line on stderr if they may not. ``sampler`` is the strategy that stores
    ``records_per_problem`` records per problem (named in the messages)."""
    est = estimate(config, records_per_problem, problems_per_model)
    free = available_memory() if available is None else available
    if free is None:
        return est
    what = (f"--sampler {sampler} stores {records_per_problem:,} records per problem and keeps a problem's "
            f"records in memory until it is written whole")
    fix = f"lower --budget, --concurrency (problems in flight, now {est.in_flight})"
    if est.least > free:
        raise TTCError(f"{what}: {est.describe()} need at least {gib(est.least)} ({RECORD_BYTES:,} bytes a "
                       f"record before its text), and this machine has {gib(free)} free; {fix} or --limit")
    if est.most > free:
        print(f"warning: {what}: {est.describe()} may need up to {gib(est.most)} with texts of --max-tokens "
              f"{config.sampling.max_tokens}, and this machine has {gib(free)} free; if it runs out the kernel "
              f"stops the run (finished problems are kept); {fix} or --max-tokens to be safe", file=sys.stderr)
    return est


__all__ = ["Estimate", "available_memory", "check_memory", "estimate", "in_flight"]
