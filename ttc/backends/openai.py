"""The OpenAI-compatible backend: vLLM's server, SGLang, llama.cpp's server, or a hosted endpoint.

Chat prompts go to ``/v1/chat/completions`` (the server applies the model's chat template), raw string
prompts to ``/v1/completions``. Each problem is one request with ``n``, ``seed``, ``temperature``,
``top_p``, ``max_tokens``, ``stop`` and ``logprobs``; a server that returns fewer choices than ``n`` is
an error, not a silent shortfall.

Token counts: ``prompt_tokens`` from the response's ``usage``; each choice's generated tokens from its
per-token logprobs (always requested: ``usage`` only gives the sum over the n choices), checked against
``usage.completion_tokens``.

FLOPs: one request with ``n`` lets the server read the prompt once (vLLM and SGLang fan the n samples
out after one prefill and cache the prompt's prefix; hosted APIs bill the prompt once). A remote server
cannot prove it, so ``shares_prefill`` is true as the cost of a well-run server, which is what the sweep
measures; the model's shape for FLOPs comes from its Hugging Face config (``--model`` must resolve to a
local checkpoint, an embedded alias or a hub id whose config is cached).

Reliability: at most ``concurrency`` requests in flight; 408/409/425/429, any 5xx, timeouts and dropped
connections are retried with exponential backoff and jitter (honouring ``Retry-After``). A retried
request replaces the failed one whole, so no sample is counted twice; the runner stores each problem as
soon as its request succeeds, so a server that dies loses no finished work. Other 4xx are one-line
errors. The API key is read from the environment variable named by ``--api-key-env``; it is sent only in
the ``Authorization`` header and never logged or stored.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from ttc.backends.base import GenParams, ModelInfo, Prompt, Request, greedy_repeats
from ttc.errors import TTCError
from ttc.metrics.flops import ModelSpec
from ttc.store.records import Completion

log = logging.getLogger("ttc.openai")
RETRY_STATUS = frozenset({408, 409, 425, 429})
DEFAULT_CONCURRENCY = 16
BACKOFF_S = 0.5  # first retry delay; doubles each retry up to MAX_BACKOFF_S, with jitter
MAX_BACKOFF_S = 30.0


class Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_message(body: bytes) -> str:
    try:
        err = json.loads(body).get("error", body.decode(errors="replace"))
        return _one_line(err.get("message", err) if isinstance(err, dict) else err)
    except (ValueError, AttributeError):
        return _one_line(body.decode(errors="replace"))


class HTTPClient:
    """JSON over HTTP with retries; the key goes only into the ``Authorization`` header."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 600.0, retries: int = 8,
                 backoff: float | None = None, liveness=None):
        self.base_url = base_url.rstrip("/")
        self.liveness = liveness  # raises TTCError when a server we started has died: no point retrying
        self._api_key = api_key
        self.timeout, self.retries = timeout, retries
        self.backoff = BACKOFF_S if backoff is None else backoff
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0}

    def __repr__(self) -> str:  # never show the key
        return f"HTTPClient({self.base_url!r})"

    def _headers(self) -> dict:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def once(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            msg = _error_message(e.read() or b"")
            if e.code in RETRY_STATUS or e.code >= 500:
                after = e.headers.get("Retry-After") if e.headers else None
                raise Retryable(f"HTTP {e.code} {msg}", _seconds(after)) from None
            raise TTCError(f"{method} {url} answered HTTP {e.code}: {msg}") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise Retryable("timed out") from None
            raise Retryable(f"cannot connect ({_one_line(reason)})") from None
        except (TimeoutError, socket.timeout):
            raise Retryable("timed out") from None
        except (http.client.HTTPException, ConnectionError, OSError) as e:
            raise Retryable(f"connection dropped ({type(e).__name__})") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise Retryable("truncated or non-JSON response body") from None

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """``once`` with retries; ``TTCError`` when the retries are spent."""
        for attempt in range(self.retries + 1):
            with self.lock:
                self.stats["requests"] += 1
            try:
                return self.once(method, path, body)
            except Retryable as e:
                if self.liveness is not None:
                    self.liveness()
                if attempt == self.retries:
                    raise TTCError(f"{method} {self.base_url}{path} failed {attempt + 1} times, last: {e}; "
                                   f"finished problems are saved, re-run to resume") from None
                delay = min(MAX_BACKOFF_S, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
                if e.retry_after is not None:
                    delay = min(max(delay, e.retry_after), 60.0)
                with self.lock:
                    self.stats["retries"] += 1
                log.warning("%s %s: %s; retry %d/%d in %.1fs", method, path, e, attempt + 1, self.retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def request_body(model: str, prompt: Prompt, params: GenParams, n: int) -> tuple[str, dict]:
    """The endpoint and JSON body for ``n`` samples of one prompt."""
    body = {"model": model, "n": n, "seed": params.seed, "temperature": params.temperature,
            "top_p": params.top_p, "max_tokens": params.max_tokens}
    if params.stop:
        body["stop"] = list(params.stop)
    if isinstance(prompt, str):
        return "/completions", {**body, "prompt": prompt, "logprobs": 0}
    return "/chat/completions", {**body, "messages": prompt, "logprobs": True, "top_logprobs": 0}


def choice_logprobs(choice: dict) -> list[float] | None:
    """Per-token logprobs of one choice, from either endpoint's format; None if the server sent none."""
    lp = choice.get("logprobs")
    if not lp:
        return None
    if "content" in lp:  # chat
        return [float(t["logprob"]) for t in (lp["content"] or [])]
    if "token_logprobs" in lp:  # completions
        return [float(x) if x is not None else 0.0 for x in lp["token_logprobs"]]
    return None


def parse_response(resp: dict, n: int, want_logprobs: bool) -> list[Completion]:
    """The ``n`` choices of one response as completions; ``TTCError`` if the response cannot be costed."""
    choices = sorted(resp.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n:
        raise TTCError(f"the server returned {len(choices)} choices for n={n}; it does not support n "
                       f"(use a server that does, e.g. vLLM or SGLang)")
    usage = resp.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens")
    if prompt_tokens is None:
        raise TTCError("the server's response has no usage.prompt_tokens; its token counts are unknown")
    comps = []
    for c in choices:
        logps = choice_logprobs(c)
        if c.get("token_ids") is not None:
            generated = len(c["token_ids"])
        elif logps is not None:
            generated = len(logps)
        elif n == 1 and usage.get("completion_tokens") is not None:
            generated = int(usage["completion_tokens"])
        else:
            raise TTCError("the server returned no per-choice logprobs, so the tokens of each of the "
                           f"n={n} samples are unknown")
        text = c["message"].get("content") if "message" in c else c.get("text")
        stop = c.get("stop_reason") if isinstance(c.get("stop_reason"), str) else None  # vLLM's extra field
        comps.append(Completion(text or "", int(prompt_tokens), generated, c.get("finish_reason") or "unknown",
                                tuple(logps) if want_logprobs and logps is not None else None, stop))
    total = usage.get("completion_tokens")
    if total is not None and total != sum(c.generated_tokens for c in comps):
        log.warning("usage.completion_tokens=%s but the choices' tokens sum to %s", total,
                    sum(c.generated_tokens for c in comps))
    return comps


def model_spec(model: str) -> tuple[ModelSpec, dict]:
    """Shape of the served model for FLOPs, from its Hugging Face config, and how it was identified."""
    from transformers import AutoConfig

    from ttc.backends.models import resolve_model

    source = resolve_model(model)
    try:
        cfg = AutoConfig.from_pretrained(source.path, **source.pretrained_kwargs())
    except (OSError, ValueError) as e:
        raise TTCError(f"FLOPs need {model!r}'s config.json: pass --model as a local checkpoint directory, "
                       f"an embedded alias or a cached hub id ({_one_line(e, 120)})") from None
    return ModelSpec.from_hf_config(cfg), dict(source.identity)


def read_api_key(var: str) -> str:
    """The key in environment variable ``var``; ``TTCError`` if it is unset or empty."""
    key = os.environ.get(var)
    if not key:
        raise TTCError(f"--api-key-env {var}: that environment variable is not set")
    return key


class OpenAIBackend:
    shares_prefill = True

    def __init__(self, model: str, base_url: str, api_key_env: str | None = None, timeout: float = 600.0,
                 retries: int = 8, concurrency: int | None = None, served_name: str | None = None,
                 spec: ModelSpec | None = None, backoff: float | None = None, on_close=None, liveness=None):
        api_key = read_api_key(api_key_env) if api_key_env else None
        self.client = HTTPClient(base_url, api_key, timeout=timeout, retries=retries, backoff=backoff,
                                 liveness=liveness)
        self.served_name = served_name or model
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.lockstep = False  # the server batches concurrent requests itself
        self.engine = None
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self._on_close = on_close
        served = self._check_server()
        identity = {}
        if spec is None:
            spec, identity = model_spec(model)
        identity.update(backend="openai", base_url=self.client.base_url, served_model=self.served_name,
                        api_key_env=api_key_env, server=served)
        self.info = ModelInfo(name=model, source=self.client.base_url, spec=spec, identity=identity)

    def _check_server(self) -> dict:
        """Fail fast on a wrong URL or model name; return what the server says about the model."""
        try:
            listing = self.client.once("GET", "/models", timeout=min(self.client.timeout, 30))
        except Retryable as e:
            raise TTCError(f"cannot reach the server at {self.client.base_url}: {e}") from None
        except TTCError as e:
            if "HTTP 404" in str(e):  # a server without a model list
                return {}
            raise
        models = {m.get("id"): m for m in listing.get("data") or [] if isinstance(m, dict)}
        if models and self.served_name not in models:
            raise TTCError(f"the server at {self.client.base_url} serves {', '.join(sorted(map(str, models)))}, "
                           f"not {self.served_name!r}")
        info = {k: v for k, v in models.get(self.served_name, {}).items()
                if k in ("id", "owned_by", "max_model_len", "root")}
        try:
            root = self.client.base_url.rsplit("/v1", 1)[0]
            version = HTTPClient(root, self.client._api_key, timeout=5, retries=0).once("GET", "/version")
            info["version"] = version.get("version")
        except (Retryable, TTCError):
            pass
        return info

    def sample(self, prompt: Prompt, params: GenParams, n: int) -> list[Completion]:
        repeat = greedy_repeats(params.temperature, n)  # vLLM's server refuses n > 1 at temperature 0
        path, body = request_body(self.served_name, prompt, params, n // repeat)
        with self.slots:
            resp = self.client.request("POST", path, body)
        return parse_response(resp, n // repeat, params.logprobs) * repeat

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        return self.generate_requests([Request.of(p, params, n) for p in prompts])

    def generate_requests(self, requests: list[Request]) -> list[list[Completion]]:
        """One HTTP request per ``Request``, up to ``concurrency`` in flight at once. A continuation
        (``prefix``) needs a string prompt: the server, not ttc, holds a chat prompt's template."""
        for r in requests:
            if r.prefix and not isinstance(r.prompt, str):
                raise TTCError("the openai backend cannot continue an assistant turn of a chat prompt (the "
                               "server applies the chat template); use --backend hf or vllm for this strategy")
        calls = [(r.prompt + r.prefix if r.prefix else r.prompt, r.params, r.n) for r in requests]
        if len(calls) <= 1:
            return [self.sample(*c) for c in calls]
        with ThreadPoolExecutor(min(len(calls), self.concurrency)) as pool:
            return list(pool.map(lambda c: self.sample(*c), calls))

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
