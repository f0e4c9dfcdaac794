"""
A LocalStack RuntimeExecutor that runs each Lambda execution environment as a local Node.js
process instead of a Docker container.

For every execution environment LocalStack creates, this executor
  * serves the Lambda Runtime API (2018-06-01: invocation/next, <id>/response, <id>/error,
    init/error) on a free loopback port,
  * starts `node runtime.mjs` (the short runtime loop next to this file) in the function's
    unzipped code directory with the function's environment, AWS_LAMBDA_RUNTIME_API pointing at
    that port and LAMBDA_TASK_ROOT at the code,
  * hands each invocation to the process and waits for its answer for at most the function's
    timeout; on timeout it kills the process (as Lambda does) and starts a fresh one for the next
    invocation, and a process that dies mid-invocation is reported as Runtime.ExitError.

So LocalStack's own event source mappings, function URLs and Invoke API run the exact deployed
code with the deployed configuration. Only Node.js runtimes are supported; the architecture
(arm64/x86_64) is ignored because the code runs on the host's Node binary.

Configuration (environment of the LocalStack process):
  LAMBDA_RUNTIME_EXECUTOR=calldata-local   selects this executor
  CALLDATA_LAMBDA_NODE                    Node binary (default: `node` on PATH)
  CALLDATA_LAMBDA_RUNTIME                 runtime loop (default: runtime.mjs beside this file)
  CALLDATA_LAMBDA_LOG_DIR                 optional folder for one log file per environment
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)

RUNTIME_API_PREFIX = "/2018-06-01/runtime"
MAX_LOG_BYTES = 4 * 1024 * 1024
KILL_GRACE_SECONDS = 0.5


def node_binary() -> str | None:
    configured = os.environ.get("CALLDATA_LAMBDA_NODE", "").strip()
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("node")


def runtime_script() -> Path:
    configured = os.environ.get("CALLDATA_LAMBDA_RUNTIME", "").strip()
    return Path(configured) if configured else Path(__file__).with_name("runtime.mjs")


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Invocation:
    def __init__(self, request_id: str, payload: str, function_arn: str, trace_id: str, deadline_ms: int):
        self.request_id = request_id
        self.payload = payload.encode("utf-8")
        self.function_arn = function_arn
        self.trace_id = trace_id
        self.deadline_ms = deadline_ms
        self.result: Future[tuple[bytes, bool]] = Future()


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, executor: "LocalProcessRuntimeExecutor"):
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.executor = executor


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    """The subset of the Lambda Runtime API a runtime loop needs."""

    protocol_version = "HTTP/1.1"
    server: _RuntimeApiServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        LOG.debug("runtime api %s: " + format, self.server.executor.id, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _accepted(self) -> None:
        self._send(HTTPStatus.ACCEPTED, b'{"status":"OK"}')

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path != f"{RUNTIME_API_PREFIX}/invocation/next":
            self._send(HTTPStatus.NOT_FOUND, b'{"errorType":"NotFound"}')
            return
        invocation = self.server.executor._next_invocation()
        if invocation is None:
            # The environment is shutting down; the process is killed right after.
            self._send(HTTPStatus.GONE, b'{"errorType":"Runtime.Shutdown"}')
            return
        self._send(
            HTTPStatus.OK,
            invocation.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self._body()
        path = self.path
        executor = self.server.executor
        if path == f"{RUNTIME_API_PREFIX}/init/error":
            executor._init_failed(body)
            self._accepted()
            return
        prefix = f"{RUNTIME_API_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, outcome = path[len(prefix) :].partition("/")
            if outcome in ("response", "error") and executor._complete(request_id, body, outcome == "error"):
                self._accepted()
                return
            self._send(HTTPStatus.BAD_REQUEST, b'{"errorType":"InvalidRequestID","errorMessage":"unknown or finished request id"}')
            return
        self._send(HTTPStatus.NOT_FOUND, b'{"errorType":"NotFound"}')


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one Runtime API server + one Node.js process."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:  # noqa: A002 - LocalStack's signature
        super().__init__(id=id, function_version=function_version)
        self._lock = threading.RLock()
        self._server: _RuntimeApiServer | None = None
        self._process: subprocess.Popen | None = None
        self._env: dict[str, str] = {}
        self._pending: queue.Queue[_Invocation | None] = queue.Queue()
        self._current: _Invocation | None = None
        self._ready = threading.Event()
        self._init_error: bytes | None = None
        self._stopped = threading.Event()
        self._logs = bytearray()
        self._log_file = None

    # --- Runtime API callbacks -------------------------------------------------------------

    def _next_invocation(self) -> _Invocation | None:
        self._ready.set()
        while not self._stopped.is_set():
            try:
                invocation = self._pending.get(timeout=1.0)
            except queue.Empty:
                continue
            return None if self._stopped.is_set() else invocation
        return None

    def _drain(self) -> None:
        while True:
            try:
                self._pending.get_nowait()
            except queue.Empty:
                return

    def _complete(self, request_id: str, body: bytes, is_error: bool) -> bool:
        with self._lock:
            current = self._current
            if current is None or current.request_id != request_id or current.result.done():
                return False
            current.result.set_result((body, is_error))
            return True

    def _init_failed(self, body: bytes) -> None:
        with self._lock:
            self._init_error = body or b'{"errorType":"Runtime.Unknown","errorMessage":"init failed"}'

    # --- process management ------------------------------------------------------------------

    def _append_log(self, data: bytes) -> None:
        with self._lock:
            self._logs.extend(data)
            if len(self._logs) > MAX_LOG_BYTES:
                del self._logs[: len(self._logs) - MAX_LOG_BYTES]
            if self._log_file:
                try:
                    self._log_file.write(data)
                    self._log_file.flush()
                except OSError:
                    pass

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, b""):
            self._append_log(line)
        stream.close()

    def _code_dir(self) -> Path:
        return Path(self.function_version.config.code.get_unzipped_code_location())

    def _spawn(self) -> None:
        node = node_binary()
        if not node:
            raise LambdaRuntimeException("Node.js binary not found: set CALLDATA_LAMBDA_NODE or put node on PATH")
        runtime = runtime_script()
        code_dir = self._code_dir()
        port = self._server.server_address[1]
        env = {key: str(value) for key, value in self._env.items() if value is not None}
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "LAMBDA_RUNTIME_DIR": str(runtime.parent),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.function_version.config.runtime}",
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            }
        )
        self._ready.clear()
        self._init_error = None
        self._process = subprocess.Popen(
            [node, str(runtime)],
            cwd=str(code_dir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, args=(self._process.stdout,), daemon=True, name=f"lambda-log-{self.id}").start()

    def _wait_ready(self, timeout: float) -> bytes | None:
        """Waits until the runtime asks for its first invocation. Returns an error payload on failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopped.is_set():
            if self._ready.wait(0.05):
                return None
            with self._lock:
                if self._init_error is not None:
                    return self._init_error
            process = self._process
            if process is not None and process.poll() is not None:
                time.sleep(0.1)  # let init/error arrive if the process posted it just before exiting
                with self._lock:
                    if self._init_error is not None:
                        return self._init_error
                return json.dumps(
                    {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: exit status {process.returncode}"}
                ).encode()
        if self._stopped.is_set():
            return b'{"errorType":"Runtime.Shutdown","errorMessage":"environment stopped during init"}'
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": f"init did not finish within {timeout:.0f} seconds"}).encode()

    def _kill(self) -> None:
        process = self._process
        self._process = None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(KILL_GRACE_SECONDS)
        except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                LOG.warning("Lambda process %s of %s did not exit", process.pid, self.id)

    def _start_process(self) -> bytes | None:
        self._spawn()
        error = self._wait_ready(float(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT))
        if error is not None:
            self._kill()
        return error

    # --- RuntimeExecutor --------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        self._env = dict(env_vars)
        self._server = _RuntimeApiServer(self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name=f"lambda-api-{self.id}").start()
        log_dir = os.environ.get("CALLDATA_LAMBDA_LOG_DIR", "").strip()
        if log_dir:
            try:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                self._log_file = open(Path(log_dir) / f"{self.function_version.id.function_name}-{self.id}.log", "ab")  # noqa: SIM115
            except OSError as e:
                LOG.warning("cannot open Lambda log file in %s: %s", log_dir, e)
        LOG.debug("starting local Node.js environment %s for %s", self.id, self.function_version.qualified_arn)
        error = self._start_process()
        if error is not None:
            raise StatusErrorException("Environment startup failed", payload=error)

    def stop(self) -> None:
        self._stopped.set()
        self._pending.put(None)
        with self._lock:
            current = self._current
            if current is not None and not current.result.done():
                current.result.set_result((b'{"errorType":"Runtime.Shutdown","errorMessage":"environment stopped"}', True))
        self._kill()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            if self._log_file:
                self._log_file.close()
                self._log_file = None

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout or 3)
        with self._lock:
            log_start = len(self._logs)
        self._append_log(f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}\n".encode())
        began = time.monotonic()

        if self._process is None or self._process.poll() is not None:
            # The previous process timed out or died: a fresh one initialises for this invocation.
            self._kill()
            error = self._start_process()
            if error is not None:
                return self._finish(request_id, error, True, log_start, began)

        invocation = _Invocation(
            request_id=request_id,
            payload=payload.get("payload") or "",
            function_arn=payload.get("invoked-function-arn") or self.function_version.qualified_arn,
            trace_id=payload.get("trace-id") or "",
            deadline_ms=int((time.time() + timeout) * 1000),
        )
        with self._lock:
            self._current = invocation
        self._pending.put(invocation)

        deadline = began + timeout
        result: tuple[bytes, bool] | None = None
        while result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                result = invocation.result.result(timeout=min(remaining, 0.25))
            except FutureTimeout:
                process = self._process
                if process is None or process.poll() is not None:
                    code = process.returncode if process is not None else "unknown"
                    result = (
                        json.dumps(
                            {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"}
                        ).encode(),
                        True,
                    )
        with self._lock:
            if result is None and invocation.result.done():
                result = invocation.result.result()
            self._current = None
        if result is None:
            # Lambda's timeout: the process is stopped; the next invocation starts a fresh one.
            self._kill()
            self._drain()
            message = f"{_now_iso()} {request_id} Task timed out after {timeout:.2f} seconds"
            self._append_log(f"{message}\n".encode())
            return self._finish(request_id, json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode(), True, log_start, began)
        body, is_error = result
        if is_error and (self._process is None or self._process.poll() is not None):
            self._kill()
        return self._finish(request_id, body, is_error, log_start, began)

    def _finish(self, request_id: str, body: bytes, is_error: bool, log_start: int, began: float) -> InvocationResult:
        duration_ms = (time.monotonic() - began) * 1000
        self._append_log(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\n".encode())
        with self._lock:
            logs = bytes(self._logs[log_start:]).decode("utf-8", errors="replace") if log_start <= len(self._logs) else ""
        return InvocationResult(request_id=request_id, payload=body, is_error=is_error, logs=logs)

    def get_logs(self) -> str:
        with self._lock:
            return bytes(self._logs).decode("utf-8", errors="replace")

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        runtime = function_version.config.runtime
        if not runtime or not str(runtime).startswith("nodejs"):
            raise LambdaRuntimeException(
                f"calldata-local runs Node.js functions only; {function_version.qualified_arn} uses {runtime or 'a container image'}"
            )
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        node = node_binary()
        if not node:
            LOG.warning("calldata-local: no Node.js binary; set CALLDATA_LAMBDA_NODE")
            return False
        if not runtime_script().is_file():
            LOG.warning("calldata-local: runtime loop %s is missing", runtime_script())
            return False
        LOG.info("calldata-local Lambda executor: %s %s", node, runtime_script())
        return True
