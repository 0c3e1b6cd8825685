"""Runs the real Rust Lambda binaries behind a local Lambda Runtime API.

Each function gets its own Runtime API server (the protocol AWS Lambda speaks to a custom
runtime: GET .../invocation/next, POST .../response or .../error) and one or more copies of its
binary polling it, so `invoke()` exercises the binary exactly as Lambda would, including its
cold start (SDK clients built once in main).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class InvokeError(Exception):
    pass


@dataclass
class Invocation:
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: threading.Event = field(default_factory=threading.Event)
    result: bytes = b""
    error: bool = False


class _RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: "FunctionHost"):
        self.host = host
        super().__init__(("127.0.0.1", 0), _RuntimeHandler)


class _RuntimeHandler(BaseHTTPRequestHandler):
    server: _RuntimeApi

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        host = self.server.host
        if not self.path.endswith("/runtime/invocation/next"):
            return self._reply(404)
        generation = host.generation
        while True:
            if host.closed or host.generation != generation:
                return  # the process polling here was stopped: leave the work to its successor
            try:
                inv = host.pending.get(timeout=0.2)
                break
            except queue.Empty:
                pass
        host.in_flight[inv.request_id] = inv
        deadline = int((time.time() + host.timeout_s) * 1000)
        try:
            self._reply(200, inv.payload, {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": host.arn,
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
            })
        except OSError:
            host.in_flight.pop(inv.request_id, None)
            host.pending.put(inv)

    def do_POST(self):
        host = self.server.host
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.split("/")
        if self.path.endswith("/init/error"):
            host.init_errors.append(body.decode(errors="replace"))
            return self._reply(202, b"{}")
        if len(parts) >= 6 and parts[-1] in ("response", "error"):
            inv = host.in_flight.pop(parts[-2], None)
            if inv is None:
                return self._reply(404)
            inv.result, inv.error = body, parts[-1] == "error"
            inv.done.set()
            return self._reply(202, b"{}")
        self._reply(404)


class FunctionHost:
    """One function: its Runtime API and `concurrency` copies of its binary."""

    def __init__(self, name: str, binary: Path, env: dict[str, str], log_dir: Path,
                 concurrency: int = 1, timeout_s: float = 30.0, region: str = "us-east-1",
                 account: str = "123456789012"):
        self.name, self.binary, self.env = name, binary, dict(env)
        self.log_dir, self.concurrency, self.timeout_s = log_dir, concurrency, timeout_s
        self.arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors: list[str] = []
        self.invocations: list[tuple[bytes, bytes, bool]] = []
        self.closed = False
        self.generation = 0
        self.procs: list[subprocess.Popen] = []
        self.api = _RuntimeApi(self)
        threading.Thread(target=self.api.serve_forever, daemon=True).start()
        self._spawn()

    def _spawn(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            **self.env,
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.concurrency):
            log = open(self.log_dir / f"{self.name}.{i}.log", "ab")
            self.procs.append(subprocess.Popen([str(self.binary)], env=env, stdout=log, stderr=subprocess.STDOUT))

    def restart(self, **env_overrides: str):
        """New environment, new processes (a cold start), same Runtime API."""
        self._stop_procs()
        self.env.update(env_overrides)
        self._spawn()

    def _stop_procs(self):
        self.generation += 1
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []

    def invoke(self, payload: bytes) -> tuple[bytes, bool]:
        """Returns (body, is_function_error). Raises InvokeError if no answer in time."""
        for p in self.procs:
            if p.poll() is not None and not self.init_errors:
                self.init_errors.append(f"process exited with {p.returncode}")
        inv = Invocation(payload)
        self.pending.put(inv)
        if not inv.done.wait(self.timeout_s):
            raise InvokeError(f"{self.name}: no response within {self.timeout_s}s; init errors: {self.init_errors}")
        self.invocations.append((payload, inv.result, inv.error))
        return inv.result, inv.error

    def logs(self) -> str:
        return "\n".join((self.log_dir / f"{self.name}.{i}.log").read_text(errors="replace")
                         for i in range(self.concurrency) if (self.log_dir / f"{self.name}.{i}.log").exists())

    def close(self):
        self.closed = True
        self._stop_procs()
        self.api.shutdown()
        self.api.server_close()


def invoke_json(host: FunctionHost, event) -> dict:
    """Invoke and decode; a function error raises InvokeError with its errorType."""
    body, is_error = host.invoke(json.dumps(event).encode())
    out = json.loads(body or b"null")
    if is_error:
        raise InvokeError(f"{out.get('errorType')}: {out.get('errorMessage')}")
    return out
