"""Fail fast when the Hugging Face hub is needed but cannot be reached.

Without this, an unknown or uncached hub id on a machine with no network waits through the client's
retries (about 50 s) and ends in a traceback. One TCP connect with a short timeout tells instead, and the
error says what to do: ``HF_HUB_OFFLINE=1`` to use the local cache, or a local path / ``--data-file``.
Skipped when the hub is declared offline or a proxy is configured (a direct connect says nothing then).
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from ttc.errors import TTCError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


@functools.cache
def _reachable(host: str, port: int, timeout: float) -> str | None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return None
    except OSError as e:
        return f"{type(e).__name__}: {e}"


def require_hub(what: str, alternative: str, timeout: float = 3.0) -> None:
    """``TTCError`` at once if ``what`` needs the hub and its host cannot be reached."""
    if hub_offline() or any(os.environ.get(v) for v in PROXY_VARS):
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    reason = _reachable(endpoint.hostname or "huggingface.co", port, timeout)
    if reason is not None:
        raise TTCError(f"{what} needs the Hugging Face hub, which cannot be reached ({reason}); if it is in "
                       f"your local cache run with HF_HUB_OFFLINE=1, else {alternative}")
