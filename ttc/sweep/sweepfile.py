"""Sweep files: ``ttc run --config sweep.toml``, and the resolved ``sweep.toml`` every run writes.

A sweep file holds the flags of ``ttc run``, each under its own name without the dashes (``--max-tokens 256`` is
``max-tokens = 256``), as TOML (read with the standard library's ``tomllib``) or YAML (``.yaml``/``.yml``, read
with PyYAML where it is installed). Values are the flag's own text (``budget = "1,4,16"``) or typed TOML
(``budget = [1, 4, 16]``, ``engine-arg = {max_model_len = 8192}``, ``chat-template-kwargs = {enable_thinking =
true}``, ``replicas = {"org/a" = 2}``); escapes in ``step-delimiter`` and ``answer-prefix`` are TOML's own.
Relative paths (``data-file``, ``out``) are read from the current directory, as on the command line.

Several sweeps (a model family, say) are ``[[sweep]]`` tables over the keys at the top of the file, which every
sweep shares; they run one after another. Flags given on the command line override the file, in every sweep.
``--config``, ``--no-progress`` and ``--debug`` are about the command, not the run, and stay on the command line.
An unknown key or a value of the wrong type is refused with one line that names it, before anything is written.

``OPTIONS`` is the one table from flag to config field: ``ttc run`` builds its config through it, the files are
read through it and every run's resolved ``sweep.toml`` is written through it, so that
``ttc run --config runs/<id>/sweep.toml`` reproduces the run (same run id: it resumes it).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ttc.errors import TTCError
from ttc.sweep.config import (
    BackendConfig,
    ClusterConfig,
    RunConfig,
    SamplingConfig,
    StrategyConfig,
    SweepConfig,
    parse_budgets,
    parse_engine_args,
    parse_names,
    parse_replicas,
    parse_template_kwargs,
    unescape,
)

SWEEP_FILE = "sweep.toml"
SECTIONS = {"sweep": SweepConfig, "sampling": SamplingConfig, "strategy": StrategyConfig,
            "backend": BackendConfig, "cluster": ClusterConfig}
COMMAND_ONLY = ("config", "no-progress", "debug")  # flags of the command, not of the run
# Where a run ran, not what it is: left out of a run's resolved file (they are not in its header either).
PLACEMENT = ("ray", "replicas", "cpus-per-replica", "gpus-per-replica", "replica-timeout")


def _type(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


class Kind:
    """How one option's value is read from its flag's text and from a file, and written to a file."""

    want = ""  # what a file value must be, for the message

    def flag(self, text):  # the flag's value as argparse returns it -> the config field's value
        return text

    def file(self, value):  # a file's value -> the config field's value; TypeError when it has the wrong type
        return value

    def toml(self, value):  # the field's value -> what the resolved file holds (None: leave the key out)
        return value


class Names(Kind):
    want = "a list of names or one comma-separated string"

    def flag(self, text):
        return parse_names(text)

    def file(self, value):
        if isinstance(value, str):
            return parse_names(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError

    def toml(self, value):
        return list(value)


class Ints(Kind):
    want = "a list of positive integers or one comma-separated string"

    def flag(self, text):
        return parse_budgets(text)

    def file(self, value):
        if isinstance(value, str):
            return parse_budgets(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(sorted(set(value)))  # as parse_budgets reads the flag
        raise TypeError

    def toml(self, value):
        return list(value)


class Int(Kind):
    want = "an integer"

    def file(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError


class Float(Kind):
    want = "a number"

    def file(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError


class Text(Kind):
    want = "a string"

    def file(self, value):
        if isinstance(value, str):
            return value
        raise TypeError


class Escaped(Text):
    """A string whose flag reads escapes (``--step-delimiter '\\n'``); in a file, TOML's escapes are enough."""

    def flag(self, text):
        return unescape(text)


class Bool(Kind):
    want = "true or false"

    def file(self, value):
        if isinstance(value, bool):
            return value
        raise TypeError


class EngineArgs(Kind):
    want = "a table like {max_model_len = 8192} or a list of KEY=VALUE strings"

    def flag(self, items):
        return parse_engine_args(items)

    def file(self, value):
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return parse_engine_args(value)
        raise TypeError

    def toml(self, value):  # TOML has no null: such a table is written in the flag's KEY=JSON form
        return dict(value) if _tomlable(value) else [f"{k}={json.dumps(v, default=str)}" for k, v in value.items()]


class JSONObject(Kind):
    want = "a table like {enable_thinking = true} or a JSON object as a string"

    def flag(self, text):
        return parse_template_kwargs(text)

    def file(self, value):
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, str):
            return parse_template_kwargs(value)
        raise TypeError

    def toml(self, value):
        return dict(value) if _tomlable(value) else json.dumps(value, default=str)


class Replicas(Kind):
    want = "an integer, a table of MODEL = N, or the flag's N|MODEL=N,... text"

    def flag(self, text):
        return parse_replicas(text) if text is not None else ()

    def file(self, value):
        if isinstance(value, str):
            return parse_replicas(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return (("", value),)
        if isinstance(value, dict):
            return tuple((str(m), n) for m, n in value.items())
        raise TypeError

    def toml(self, value):
        if not value:
            return None
        return value[0][1] if len(value) == 1 and value[0][0] == "" else dict(value)


@dataclass(frozen=True)
class Option:
    """One flag of ``ttc run`` (``--<key>``, argparse's ``dest``) and the config field it sets."""

    key: str  # the flag without its dashes, also its key in a sweep file
    field: str  # "section.name", or "out"
    kind: Kind

    @property
    def dest(self) -> str:
        return self.key.replace("-", "_")


OPTIONS = (
    Option("task", "sweep.tasks", Names()),
    Option("model", "sweep.models", Names()),
    Option("sampler", "sweep.samplers", Names()),
    Option("budget", "sweep.budgets", Ints()),
    Option("limit", "sweep.limit", Int()),
    Option("data-file", "sweep.data_file", Text()),
    Option("seed", "sampling.seed", Int()),
    Option("temperature", "sampling.temperature", Float()),
    Option("top-p", "sampling.top_p", Float()),
    Option("max-tokens", "sampling.max_tokens", Int()),
    Option("backend", "backend.name", Text()),
    Option("dtype", "backend.dtype", Text()),
    Option("engine-arg", "backend.engine_args", EngineArgs()),
    Option("chat-template-kwargs", "backend.chat_template_kwargs", JSONObject()),
    Option("base-url", "backend.base_url", Text()),
    Option("api-key-env", "backend.api_key_env", Text()),
    Option("serve", "backend.serve", Bool()),
    Option("concurrency", "backend.concurrency", Int()),
    Option("request-timeout", "backend.request_timeout", Float()),
    Option("retries", "backend.retries", Int()),
    Option("verifier", "strategy.verifier", Text()),
    Option("prm-agg", "strategy.prm_agg", Text()),
    Option("step-delimiter", "strategy.step_delimiter", Escaped()),
    Option("beam-width", "strategy.beam_width", Int()),
    Option("lookahead", "strategy.lookahead", Int()),
    Option("max-steps", "strategy.max_steps", Int()),
    Option("think-budget", "strategy.think_budgets", Ints()),
    Option("think-end", "strategy.think_end", Text()),
    Option("answer-prefix", "strategy.answer_prefix", Escaped()),
    Option("answer-tokens", "strategy.answer_tokens", Int()),
    Option("num-wait", "strategy.num_wait", Int()),
    Option("chains", "strategy.chains", Int()),
    Option("out", "out", Text()),
    Option("ray", "cluster.address", Text()),
    Option("replicas", "cluster.replicas", Replicas()),
    Option("cpus-per-replica", "cluster.cpus_per_replica", Int()),
    Option("gpus-per-replica", "cluster.gpus_per_replica", Int()),
    Option("replica-timeout", "cluster.replica_timeout", Float()),
)
BY_KEY = {o.key: o for o in OPTIONS}


def values_from_flags(namespace) -> dict:
    """``{key: field value}`` of the options a parsed command line holds (``argparse.Namespace``)."""
    found = vars(namespace)
    return {o.key: o.kind.flag(found[o.dest]) for o in OPTIONS if o.dest in found}


def config_from_values(values: dict) -> RunConfig:
    """A ``RunConfig`` from ``{key: field value}``; a key left out keeps the config's default."""
    sections: dict[str, dict] = {name: {} for name in SECTIONS}
    top = {}
    for key, value in values.items():
        section, _, name = BY_KEY[key].field.rpartition(".")
        (sections[section] if section else top)[name] = value
    built = {name: cls(**sections[name]) for name, cls in SECTIONS.items()}
    return RunConfig(**built, **top)


def values_of(config: RunConfig) -> dict:
    """``{key: field value}`` of every option of ``config``: the inverse of ``config_from_values``."""
    out = {}
    for o in OPTIONS:
        section, _, name = o.field.rpartition(".")
        out[o.key] = getattr(getattr(config, section) if section else config, name)
    return out


def _tomlable(value) -> bool:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _tomlable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_tomlable(v) for v in value)
    return isinstance(value, (str, int, float, bool))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"no TOML form for {value!r}")


def sweep_toml(config: RunConfig) -> str:
    """The resolved sweep file of ``config``: every option but where the run ran, defaults included."""
    from ttc import __version__

    lines = [f"# The resolved settings of run {config.run_id}, written by ttc {__version__}.",
             f"# `ttc run --config {Path(config.out) / config.run_id / SWEEP_FILE}` reproduces it (same run id: it",
             "# resumes); flags given with --config override these values. Where it ran (ray, replicas,",
             "# cpus-, gpus-per-replica, replica-timeout) is not part of a run and is left out."]
    section = None
    for key, value in values_of(config).items():
        o = BY_KEY[key]
        if key in PLACEMENT:
            continue
        value = o.kind.toml(value)
        if value is None:  # an option left unset (TOML has no null): absent means the same
            continue
        if o.field.rpartition(".")[0] != section:
            section = o.field.rpartition(".")[0]
            lines.append("")
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_sweep_file(run_dir, config: RunConfig) -> Path:
    """Write ``run_dir/sweep.toml`` atomically; return its path."""
    from ttc.store.runstore import write_atomic  # here: reading a sweep file does not load pandas

    path = Path(run_dir) / SWEEP_FILE
    text = sweep_toml(config)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _load(path: Path) -> dict:
    """The file's top-level mapping, TOML (``tomllib``) or, for .yaml/.yml, YAML (PyYAML's ``safe_load``)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TTCError(f"--config {path}: no such file") from None
    except OSError as e:
        raise TTCError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise TTCError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml), or write the file "
                           f"as TOML") from None
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise TTCError(f"--config {path}: not valid YAML ({' '.join(str(e).split())})") from None
        if data is None:
            data = {}
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise TTCError(f"--config {path}: reading TOML needs Python 3.11 (tomllib) or pip install tomli") \
                    from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise TTCError(f"--config {path}: not valid TOML ({e})") from None
    if not isinstance(data, dict):
        raise TTCError(f"--config {path}: the file must hold a table of flags, not {_type(data)}")
    return data


def _read_values(table: dict, where: str) -> dict:
    """``{key: field value}`` of one table of a sweep file; ``TTCError`` naming the first bad key."""
    out = {}
    for key, value in table.items():
        o = BY_KEY.get(key)
        if o is None:
            if key in COMMAND_ONLY:
                raise TTCError(f"{where}: {key!r} is a flag of the command, not of the run; give --{key} on the "
                               f"command line")
            near = difflib.get_close_matches(str(key).replace("_", "-").removeprefix("--"), BY_KEY, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TTCError(f"{where}: unknown key {key!r}{hint}; the keys are the flags of ttc run without their "
                           f"dashes (ttc run --help)")
        try:
            out[key] = o.kind.file(value)
        except TypeError:
            raise TTCError(f"{where}: {key} must be {o.kind.want}, got {_type(value)} ({value!r})") from None
        except TTCError as e:
            raise TTCError(f"{where}: {key}: {e}") from None
    return out


def read_sweep_file(path) -> list[tuple[str, dict]]:
    """The sweeps of a file, each as ``(where, {key: field value})``: where it is in the file (for messages) and
    the options it sets (the shared keys at the top of the file, then its own ``[[sweep]]`` table's); one sweep
    when the file has no ``[[sweep]]`` table."""
    path = Path(path)
    data = _load(path)
    sweeps = data.pop("sweep", None)
    where = f"--config {path}"
    shared = _read_values(data, where)
    if sweeps is None:
        return [(where, shared)]
    if not isinstance(sweeps, list) or not sweeps or not all(isinstance(s, dict) for s in sweeps):
        raise TTCError(f"{where}: sweep must be one or more [[sweep]] tables of flags, got {_type(sweeps)}")
    out = []
    for i, s in enumerate(sweeps, 1):
        at = f"{where} [[sweep]] {i}"
        out.append((at, {**shared, **_read_values(s, at)}))
    return out


def configs_from_file(path, overrides: dict | None = None, prepare=None) -> list[RunConfig]:
    """Every sweep of the file as a ``RunConfig``, with ``overrides`` (``{key: field value}`` of the flags given
    on the command line) replacing the file's values in each; ``prepare(values) -> values`` is applied last (the
    command line resolves ``--dtype auto`` there). Every sweep is checked before any is returned; a value a
    config refuses is named with its sweep."""
    out = []
    for where, values in read_sweep_file(path):
        values = {**values, **(overrides or {})}
        try:
            out.append(config_from_values(prepare(values) if prepare else values))
        except TTCError as e:
            raise TTCError(f"{where}: {e}") from None
    return out
