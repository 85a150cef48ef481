"""``--dtype auto`` is resolved before the run id is hashed: naming the dtype it stands for is the same run."""

import pytest

from ttc.backends import resolve_auto_dtype
from ttc.cli.run import build_parser, config_from_args


def run_id(*argv):
    return config_from_args(build_parser().parse_args(list(argv))).run_id


def test_auto_and_its_explicit_dtype_are_one_run():
    resolved = resolve_auto_dtype("hf", "auto")
    assert resolved in ("bfloat16", "float32")
    assert run_id("--dtype", "auto") == run_id("--dtype", resolved)
    other = "float32" if resolved == "bfloat16" else "bfloat16"
    assert run_id("--dtype", "auto") != run_id("--dtype", other)


@pytest.mark.parametrize("bf16,cuda,want", [(True, False, "bfloat16"), (False, False, "float32"), (False, True, "bfloat16")])
def test_hf_auto_rule(monkeypatch, bf16, cuda, want):
    import torch

    import ttc.backends.base as base

    monkeypatch.setattr(base, "cpu_has_bf16", lambda: bf16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_auto_dtype("hf", "auto") == want
    assert resolve_auto_dtype("hf", "float16") == "float16"


def test_remote_server_keeps_auto():
    cfg = config_from_args(build_parser().parse_args(["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1"]))
    assert cfg.backend.dtype == "auto"
