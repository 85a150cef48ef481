"""``--model ID@REVISION``: parsing, errors, the run id, and the revision reaching the loaders."""

import pytest

from ttc.backends.models import check_model_name, resolve_model, split_revision
from ttc.backends.vllm import engine_kwargs
from ttc.errors import TTCError
from ttc.sweep.config import RunConfig, SweepConfig


def test_split_revision():
    assert split_revision("EleutherAI/pythia-160m@step3000") == ("EleutherAI/pythia-160m", "step3000")
    assert split_revision("EleutherAI/pythia-160m") == ("EleutherAI/pythia-160m", None)
    assert split_revision("allenai/OLMo-2-0425-1B@stage1-step10000-tokens21B")[1] == "stage1-step10000-tokens21B"
    for bad in ("EleutherAI/pythia-160m@", "@step3"):
        with pytest.raises(TTCError, match="ID@REVISION"):
            split_revision(bad)


def test_a_local_directory_or_embedded_alias_has_no_revision(tiny_model_dir):
    with pytest.raises(TTCError, match="local directory has no @revision"):
        check_model_name(f"{tiny_model_dir}@step3")
    with pytest.raises(TTCError, match="no revisions"):
        split_revision("smollm2-135m@main")
    # the directory itself still resolves, without a revision
    assert resolve_model(tiny_model_dir).revision is None


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # hub ids are checked against the hub unless offline


def test_hub_revision_is_in_the_identity_and_the_run_id():
    src = resolve_model("EleutherAI/pythia-160m@step3000")
    assert (src.path, src.revision) == ("EleutherAI/pythia-160m", "step3000")
    assert src.identity == {"hub_id": "EleutherAI/pythia-160m", "hub_revision": "step3000"}
    assert src.pretrained_kwargs() == {"revision": "step3000"}
    ids = {m: RunConfig(sweep=SweepConfig(models=(m,))).run_id
           for m in ("EleutherAI/pythia-160m", "EleutherAI/pythia-160m@step3000", "EleutherAI/pythia-160m@step143000")}
    assert len(set(ids.values())) == 3
    assert "step3000" in ids["EleutherAI/pythia-160m@step3000"]


def test_vllm_gets_the_revision_for_weights_and_tokenizer():
    kw = engine_kwargs("EleutherAI/pythia-160m", "auto", {}, "step3000")
    assert kw["revision"] == kw["tokenizer_revision"] == "step3000"
    assert "revision" not in engine_kwargs("EleutherAI/pythia-160m", "auto", {})


def test_hf_backend_passes_the_revision_to_from_pretrained(monkeypatch):
    import transformers

    from ttc.backends.hf import HFBackend

    seen = []

    def fake(path, **kw):
        seen.append((path, kw.get("revision")))
        raise OSError("offline")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    with pytest.raises(TTCError, match="cannot load"):
        HFBackend("EleutherAI/pythia-160m@step3000", device="cpu")
    assert seen == [("EleutherAI/pythia-160m", "step3000")]
