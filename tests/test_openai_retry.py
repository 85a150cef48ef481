"""The OpenAI-compatible backend against a fake server on 127.0.0.1 that injects 500s, 429s, timeouts,
dropped connections and truncated bodies: retries, resume after a dead server, no sample counted twice,
the concurrency limit, and that the API key never leaks."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run_records

from ttc.backends.base import GenParams
from ttc.backends.openai import OpenAIBackend, parse_response
from ttc.cli.run import main
from ttc.errors import TTCError
from ttc.metrics.flops import ModelSpec

SPEC = ModelSpec(n_params_nonembed=1000, n_layer=2, d_model=8, d_attn=8, vocab_size=50, n_params_total=1800)
SECRET = "sk-test-0123456789abcdef"
# Long enough that a good answer never times out on a busy machine; a "timeout" fault costs this much.
TIMEOUT_S = 3.0


def reply(seed: int, prompt: str, i: int) -> str:
    h = int(hashlib.sha256(f"{seed}|{prompt}|{i}".encode()).hexdigest(), 16)
    return f"step one step two so the answer is \\boxed{{{h % 4}}}"


class FakeOpenAI(ThreadingHTTPServer):
    """Answers /v1/models, /v1/chat/completions and /v1/completions like vLLM does (prompt tokens once per
    request, per-token logprobs with the end-of-sequence token, usage), and fails on demand.

    ``faults`` is consumed one entry per POST: "500", "429", "timeout", "drop", "truncate", "400" or
    "ok"; when it is empty every POST succeeds, unless ``dead`` is set (then every POST is a 503)."""

    daemon_threads = True

    def __init__(self, model: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.model = model
        self.faults: list[str] = []
        self.dead = False
        self.lock = threading.Lock()
        self.posts = 0
        self.answered: Counter = Counter()  # prompt -> successful responses
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.auth: list[str | None] = []
        self.release = threading.Event()  # a "timeout" fault hangs until the client gives up and the test ends
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_fault(self) -> str:
        with self.lock:
            self.posts += 1
            if self.faults:
                return self.faults.pop(0)
            return "503" if self.dead else "ok"


class Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args):
        pass

    def _send(self, code: int, obj: dict, headers: dict | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.auth.append(self.headers.get("Authorization"))
        fault = srv.next_fault()
        if fault in ("500", "503"):
            return self._send(int(fault), {"error": {"message": "engine overloaded"}})
        if fault == "429":
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if fault == "400":
            return self._send(400, {"error": {"message": "max_tokens is too large\nfor this model"}})
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "timeout":
            srv.release.wait(60)
            return
        with srv.lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            time.sleep(srv.delay)
            obj = self._completion(body)
        finally:
            with srv.lock:
                srv.in_flight -= 1
        if fault == "truncate":
            raw = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 2])
            self.close_connection = True
            return
        prompt = self._prompt(body)
        with srv.lock:
            srv.answered[prompt] += 1
        self._send(200, obj)

    @staticmethod
    def _prompt(body: dict) -> str:
        if "messages" in body:
            return "\n".join(m["content"] for m in body["messages"])
        return body["prompt"]

    def _completion(self, body: dict) -> dict:
        if body["model"] != self.server.model:
            return {"error": {"message": "no such model"}}
        prompt = self._prompt(body)
        chat = "messages" in body
        choices, total = [], 0
        for i in range(body["n"]):
            text = reply(body["seed"], prompt, i)
            words = text.split()[: body["max_tokens"]]
            finish = "stop" if len(words) < body["max_tokens"] else "length"
            tokens = [w + " " for w in words] + (["</s>"] if finish == "stop" else [])
            text = " ".join(words)
            total += len(tokens)
            lps = [{"token": t, "logprob": -0.5, "top_logprobs": []} for t in tokens]
            if chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": text},
                                "logprobs": {"content": lps}, "finish_reason": finish})
            else:
                choices.append({"index": i, "text": text, "finish_reason": finish,
                                "logprobs": {"tokens": tokens, "token_logprobs": [-0.5] * len(tokens)}})
        choices.reverse()  # servers may list choices in any order; the index is what counts
        n_prompt = len(prompt.split())
        return {"object": "chat.completion" if chat else "text_completion", "choices": choices,
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": total, "total_tokens": n_prompt + total}}


@pytest.fixture
def server(tiny_model_dir):
    srv = FakeOpenAI(tiny_model_dir)
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def backend(srv, **kw) -> OpenAIBackend:
    kw.setdefault("backoff", 0.001)
    kw.setdefault("timeout", TIMEOUT_S)
    return OpenAIBackend(srv.model, srv.url, spec=SPEC, **kw)


CHAT = [{"role": "user", "content": "What is 1 + 2?"}]
PARAMS = GenParams(temperature=0.7, max_tokens=64, seed=3, logprobs=True)


def test_chat_and_completions_are_parsed_with_per_sample_token_counts(server):
    b = backend(server)
    chat, text = b.generate([CHAT, "What is 1 + 2?"], PARAMS, 3)
    for comps in (chat, text):
        assert [c.text for c in comps] == [reply(3, "What is 1 + 2?", i) for i in range(3)]  # index order
        assert all(c.prompt_tokens == 5 for c in comps)
        assert all(c.generated_tokens == len(c.text.split()) + 1 for c in comps)  # end-of-sequence counted
        assert all(c.finish_reason == "stop" and c.logprobs == (-0.5,) * c.generated_tokens for c in comps)
    short = b.generate([CHAT], GenParams(max_tokens=2, seed=3), 2)[0]
    assert [(c.generated_tokens, c.finish_reason, c.logprobs) for c in short] == [(2, "length", None)] * 2


def test_transient_failures_are_retried_and_the_result_is_counted_once(server):
    b = backend(server)
    clean = b.generate([CHAT], PARAMS, 4)[0]
    server.faults = ["500", "429", "drop", "timeout", "truncate"]
    server.answered.clear()
    posts = server.posts
    assert b.generate([CHAT], PARAMS, 4)[0] == clean
    assert server.posts - posts == 6  # five failures, then the answer
    assert b.client.stats["retries"] == 5
    assert sum(server.answered.values()) == 1  # the truncated answer was counted by nobody


def test_client_errors_fail_at_once_in_one_line(server):
    b = backend(server)
    server.faults = ["400"]
    posts = server.posts
    with pytest.raises(TTCError) as e:
        b.generate([CHAT], PARAMS, 2)
    assert server.posts - posts == 1
    assert "HTTP 400" in str(e.value) and "\n" not in str(e.value)


def test_spent_retries_name_the_last_failure(server):
    b = backend(server, retries=2)
    server.dead = True
    with pytest.raises(TTCError, match=r"failed 3 times, last: HTTP 503 engine overloaded"):
        b.generate([CHAT], PARAMS, 2)


def test_fewer_choices_than_n_is_an_error():
    resp = {"choices": [{"index": 0, "text": "a", "finish_reason": "stop"}], "usage": {"prompt_tokens": 3}}
    with pytest.raises(TTCError, match="1 choices for n=2"):
        parse_response(resp, 2, False)
    with pytest.raises(TTCError, match="per-choice logprobs"):
        parse_response({**resp, "choices": resp["choices"] * 2}, 2, False)
    one = parse_response({**resp, "usage": {"prompt_tokens": 3, "completion_tokens": 7}}, 1, False)
    assert one[0].generated_tokens == 7


def test_bad_url_and_wrong_model_are_one_line_errors(server):
    with pytest.raises(TTCError, match="cannot reach the server at http://127.0.0.1:1/v1"):
        OpenAIBackend("m", "http://127.0.0.1:1/v1", spec=SPEC)
    with pytest.raises(TTCError, match="serves .* not 'other-model'"):
        OpenAIBackend("x", server.url, spec=SPEC, served_name="other-model")


def test_api_key_is_sent_but_never_shown(server, monkeypatch):
    monkeypatch.setenv("TTC_TEST_KEY", SECRET)
    b = backend(server, api_key_env="TTC_TEST_KEY", retries=1)
    b.generate([CHAT], PARAMS, 1)
    assert server.auth[-1] == f"Bearer {SECRET}"
    assert SECRET not in repr(b.client) and SECRET not in json.dumps(b.info.identity)
    server.dead = True
    with pytest.raises(TTCError) as e:
        b.generate([CHAT], PARAMS, 1)
    assert SECRET not in str(e.value)
    monkeypatch.delenv("TTC_TEST_KEY")
    with pytest.raises(TTCError, match="TTC_TEST_KEY: that environment variable is not set"):
        backend(server, api_key_env="TTC_TEST_KEY")


def test_concurrency_limit_holds(server):
    server.delay = 0.05
    b = backend(server, concurrency=3)
    out = b.generate([f"question {i}" for i in range(12)], PARAMS, 2)
    assert len(out) == 12 and all(len(c) == 2 for c in out)
    assert 1 < server.max_in_flight <= 3


def sweep_args(srv, out, *extra):
    return ["--backend", "openai", "--base-url", srv.url, "--model", srv.model, "--task", "chain_sum",
            "--limit", "8", "--budget", "1,2,4", "--out", str(out), "--no-progress", "--retries", "3",
            "--request-timeout", str(TIMEOUT_S), *extra]


def shard_records(out: Path) -> list[dict]:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run_records(run)


def test_sweep_survives_a_flaky_server(server, tmp_path, monkeypatch):
    monkeypatch.setattr("ttc.backends.openai.BACKOFF_S", 0.001)
    server.faults = ["500", "drop", "ok", "timeout", "429", "ok", "truncate"]
    assert main(sweep_args(server, tmp_path, "--concurrency", "4")) == 0
    recs = shard_records(tmp_path)
    per_problem = Counter(r["problem_id"] for r in recs)
    assert len(per_problem) == 8 and set(per_problem.values()) == {4}
    assert sum(server.answered.values()) == 8  # one successful request per problem
    assert all(r["prefill_shared"] and r["generated_tokens"] > 0 for r in recs)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert {p.name for p in run.iterdir()} >= {"header.json", "records", "summary.csv", "curve.png"}
    header = json.loads((run / "header.json").read_text())
    identity = header["models"][server.model]["identity"]
    assert identity["backend"] == "openai" and identity["base_url"] == server.url
    assert header["config"]["backend"]["base_url"] == server.url


def test_a_dead_server_loses_no_finished_work_and_the_rerun_resumes(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("ttc.backends.openai.BACKOFF_S", 0.001)
    server.faults = ["ok"] * 3
    server.dead = True  # after three answers every request is a 503
    assert main(sweep_args(server, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "re-run to resume" in err and len(err.splitlines()) == 1
    first = shard_records(tmp_path)
    assert len(Counter(r["problem_id"] for r in first)) == 3
    done_prompts = set(server.answered)
    server.dead = False
    server.answered.clear()
    assert main(sweep_args(server, tmp_path)) == 0
    recs = shard_records(tmp_path)
    per_problem = Counter(r["problem_id"] for r in recs)
    assert len(per_problem) == 8 and set(per_problem.values()) == {4}  # nothing twice
    assert not done_prompts & set(server.answered)  # finished problems were not asked again
    kept = {r["problem_id"] for r in first}
    assert [r for r in recs if r["problem_id"] in kept] == first  # the finished problems' records, unchanged


def test_cli_rejects_bad_backend_options(tmp_path, capsys, tiny_model_dir):
    for argv, msg in ((["--backend", "openai"], "needs --base-url"),
                      (["--backend", "openai", "--base-url", "localhost:8000"], "must be an http(s) URL"),
                      (["--base-url", "http://127.0.0.1:1/v1"], "apply to --backend openai"),
                      (["--engine-arg", "tensor_parallel_size=2"], "applies to --backend vllm"),
                      (["--backend", "vllm", "--engine-arg", "oops"], "KEY=VALUE"),
                      (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--api-key-env", "a-b"],
                       "must name an environment variable"),
                      (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--concurrency", "0"],
                       "--concurrency must be a positive integer"),
                      (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--model", tiny_model_dir],
                       "cannot reach the server at http://127.0.0.1:1/v1")):
        assert main([*argv, "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and len(err.strip().splitlines()) == 1
