"""An HTTP proxy on 127.0.0.1 that forwards to an OpenAI-compatible server and breaks some POSTs on purpose.

Faults, drawn for each POST from a seeded generator at ``rate`` (or taken in order from ``script``):
``500`` (a 500 reply, nothing forwarded), ``reset`` (the connection closed without a reply), ``stall``
(no reply until the client gives up), ``truncate`` (forwarded, then half the reply body and a close).
GETs (``/v1/models``) always pass, so a backend can start.
"""

from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

FAULTS = ("500", "reset", "stall", "truncate")


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, rate: float = 0.3, seed: int = 0, script: list[str] | None = None,
                 stall_s: float = 30.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        u = urlparse(upstream)
        self.up_host, self.up_port, self.up_prefix = u.hostname, u.port or 80, u.path.rstrip("/")
        self.rate, self.rng, self.script = rate, random.Random(seed), list(script or [])
        self.stall_s = stall_s
        self.lock = threading.Lock()
        self.injected: list[str] = []  # the faults given, in order
        self.forwarded = 0  # POSTs answered in full
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()

    def next_fault(self) -> str:
        with self.lock:
            if self.script:
                fault = self.script.pop(0)
            elif self.rng.random() < self.rate:
                fault = self.rng.choice(FAULTS)
            else:
                fault = "ok"
            if fault != "ok":
                self.injected.append(fault)
            return fault


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self, method: str, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
        srv = self.server
        conn = http.client.HTTPConnection(srv.up_host, srv.up_port, timeout=600)
        try:
            path = srv.up_prefix + self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes, cut: bool = False) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.close_connection = True

    def do_GET(self):
        self._reply(*self._forward("GET", None))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.server.next_fault()
        if fault == "500":
            return self._reply(500, [("Content-Type", "application/json")],
                               b'{"error": {"message": "injected fault"}}')
        if fault == "reset":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "stall":
            self.server.release.wait(self.server.stall_s)
            self.close_connection = True
            return
        status, headers, data = self._forward("POST", body)
        self._reply(status, headers, data, cut=fault == "truncate")
        if fault == "ok":
            with self.server.lock:
                self.server.forwarded += 1
