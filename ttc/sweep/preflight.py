"""What a sweep checks before its run directory exists, so that a run directory that exists means work was done.

``run_sweep`` calls ``preflight`` after the names are validated and the problems loaded, before it takes the
run's lock (which creates the directory). Each check is cheap (no weights are loaded) and ends in one ``error:``
line naming the input, the reason and the fix:

* memory: the records a problem holds until its one durable write, times the problems in flight, against the
  memory this machine has free (``ttc.sweep.memory``);
* options that would change the run id and not one record: a strategy's flags (``--think-budget``, ``--num-wait``,
  ``--verifier``, ``--beam-width``, ... : each strategy names the settings it reads in ``strategy_fields``) when no
  strategy of the sweep reads them, and ``--chat-template-kwargs`` that the chat template renders the same as without them
  (the prompt of each task is rendered both ways; a model whose template reads them and one whose does not in
  one sweep gives a warning line for the other);
* the backend can start: an OpenAI-compatible server answers (``GET /models``), its key variable is set, its
  model's config is readable (ttc costs FLOPs from it); a model's ``config.json`` is a JSON object with a
  ``model_type`` that transformers knows (vLLM: a ``model_type``; it registers types of its own).

With a ``backend_factory`` (tests, embedding code) the backend is the caller's, so only the first two run.
Only settings that differ from their defaults count: a flag left at its default never triggers a refusal.
"""

from __future__ import annotations

import json
import sys

from samplers import SAMPLERS, configure_sampler, get_sampler
from ttc.errors import TTCError, first_line
from ttc.sweep.config import RunConfig, StrategyConfig
from ttc.sweep.memory import check_memory
from ttc.sweep.problem import THINK_END


def preflight(config: RunConfig, tasks: dict, problems: dict, backend_factory=None) -> None:
    """Refuse (``TTCError``) a sweep that cannot give a meaningful result, before anything is written."""
    check_sweep_memory(config, problems)
    check_strategy_flags(config)
    if backend_factory is not None:
        return
    for model in config.sweep.models:
        check_backend(config, model)
    if config.backend.chat_template_kwargs:
        check_template_kwargs(config, tasks, problems)


def check_sweep_memory(config: RunConfig, problems: dict) -> None:
    """``ttc.sweep.memory.check_memory`` for the strategy of the sweep that stores the most records per problem."""
    counts = {s: configure_sampler(get_sampler(s), config).n_generations(config.sweep.budgets)
              for s in config.sweep.samplers}
    sampler = max(counts, key=counts.get)
    per_model = len(config.sweep.samplers) * sum(len(p) for p in problems.values())
    check_memory(config, counts[sampler], per_model, sampler)


def strategy_flags() -> dict[str, str]:
    """``StrategyConfig`` field -> its flag, from the one table of the run's options (``ttc.sweep.sweepfile``)."""
    from ttc.sweep.sweepfile import OPTIONS

    return {o.field.split(".", 1)[1]: f"--{o.key}" for o in OPTIONS if o.field.startswith("strategy.")}


def readers_of(field: str) -> tuple[str, ...]:
    """The strategies (``--sampler`` names) whose ``strategy_fields`` name ``field``."""
    return tuple(name for name, s in SAMPLERS.items() if field in getattr(s, "strategy_fields", ()))


def unread_strategy_flags(config: RunConfig) -> dict[str, tuple[str, ...]]:
    """The strategy flags set to other than their defaults that no strategy of the sweep reads, each with the
    strategies that would read it. The end-of-thinking delimiter is also what every strategy's records count
    tokens of thought by (``thinking_tokens``, THINK_END when none is given): only ``--think-end THINK_END``
    is a no-op without budget forcing."""
    readers = set()
    for s in config.sweep.samplers:
        readers |= set(getattr(get_sampler(s), "strategy_fields", ()))
    default = StrategyConfig()
    unread = {}
    for field, flag in strategy_flags().items():
        value = getattr(config.strategy, field)
        if value == getattr(default, field) or field in readers:
            continue
        if field == "think_end" and value != THINK_END:  # every record's thinking_tokens are counted by it
            continue
        unread[flag] = readers_of(field)
    return unread


def check_strategy_flags(config: RunConfig) -> None:
    """Refuse strategy flags that would change the run id and not one record (``unread_strategy_flags``)."""
    unread = unread_strategy_flags(config)
    if not unread:
        return
    one = len(unread) == 1
    note = f"; every record's tokens of thought are counted by {THINK_END} already" if "--think-end" in unread else ""
    groups = set(unread.values())
    if len(groups) == 1:
        (who,) = groups
        what = f"{', '.join(unread)} {'is' if one else 'are'} read only by --sampler {' or '.join(who)}"
        fix = f"add {' or '.join(who)} to --sampler"
    else:
        what = (", ".join(f"{flag} (read by {', '.join(who)})" for flag, who in unread.items())
                + " are read only by other strategies")
        fix = "add the strategies that read them to --sampler"
    raise TTCError(f"{what}, which this sweep ({', '.join(config.sweep.samplers)}) does not run{note}: "
                   f"{'it' if one else 'they'} would change the run id and not one record; drop "
                   f"{'it' if one else 'them'} or {fix}")


def check_backend(config: RunConfig, model: str) -> None:
    """What the backend needs to start, checked without loading weights (see the module's docstring)."""
    from ttc.backends.models import check_checkpoint

    b = config.backend
    if b.name == "openai" and not b.serve:
        from ttc.backends import make_backend

        make_backend("openai", model, config).close()  # key, server, model list and config: nothing loads
        return
    if b.name == "openai" and b.api_key_env:  # --serve: the key is still read from the environment
        from ttc.backends.openai import read_api_key

        read_api_key(b.api_key_env)
    check_checkpoint(model, known_type=b.name != "vllm")


def check_template_kwargs(config: RunConfig, tasks: dict, problems: dict) -> None:
    """Render each task's first prompt with each model's chat template, with and without
    ``--chat-template-kwargs``: refuse when no model renders any prompt differently, warn for the models
    that render every prompt the same while another does not."""
    kwargs = config.backend.chat_template_kwargs
    text = json.dumps(kwargs)
    ignored = []
    for model in config.sweep.models:
        tokenizer = load_tokenizer(model)
        same = True
        for name, task in tasks.items():
            prompt = task.prompt(problems[name][0])
            if isinstance(prompt, str) or not tokenizer.chat_template:
                continue  # a raw prompt, or a model without a chat template: no template reads the kwargs
            from ttc.backends.base import render_prompt

            try:
                with_kwargs = render_prompt(tokenizer, prompt, kwargs)
            except Exception as e:  # noqa: BLE001 -- a template that raises on them: what generation would meet
                raise TTCError(f"--chat-template-kwargs {text}: the chat template of {model} fails with them "
                               f"({first_line(e, 200)})") from None
            same &= with_kwargs == render_prompt(tokenizer, prompt, {})
        if same:
            ignored.append(model)
    if len(ignored) == len(config.sweep.models):
        raise TTCError(f"--chat-template-kwargs {text}: the chat template of {', '.join(ignored)} renders the "
                       f"prompts of {', '.join(tasks)} the same without them, so they would change the run id and "
                       f"not one prompt; drop the flag, or use a model whose template reads them (e.g. Qwen3's "
                       f"enable_thinking)")
    for model in ignored:
        print(f"warning: --chat-template-kwargs {text}: the chat template of {model} renders the prompts the "
              f"same without them; its records are what a run without them would give", file=sys.stderr)


def load_tokenizer(model: str):
    """The tokenizer (and chat template) of ``model``, without its weights."""
    from transformers import AutoTokenizer

    from ttc.backends.models import resolve_model

    source = resolve_model(model)
    try:
        return AutoTokenizer.from_pretrained(source.path, **source.pretrained_kwargs())
    except (OSError, ValueError, KeyError) as e:
        raise TTCError(f"cannot load the tokenizer of {model!r} from {source.path}: {first_line(e, 200)}") from None
