"""Lambda without Docker: run a function's deployed code in this process.

The code zip moto stored at CreateFunction is extracted once per code hash into the emulator's cache directory;
the handler module is imported by file path under a unique module name (two functions may both ship a
`handler.py`), with the zip's root on `sys.path` while it imports so that its own packages resolve. Each call
applies the function's environment variables (POWERTOOLS_* included), passes a Lambda-like context and returns
the payload; an exception becomes a function error ("Unhandled", errorType/errorMessage) as AWS reports it.

One invocation runs at a time: environment variables belong to the whole process. What the handler prints
(Powertools' log and metric lines) goes, as on AWS, to the log group `/aws/lambda/<function>`, not to the
terminal of the process hosting the emulator: stdout and stderr route writes by thread (see `ThreadRoutedStream`).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.logs.models import logs_backends

from datapipe.local import clients
from datapipe.local.seams import seam

if TYPE_CHECKING:
    from datapipe.local.options import EmulatorContext as Extensions

FUNCTION_INVOKE = seam(
    LambdaFunction, "invoke", ("self", "body", "request_headers", "response_headers"), "runs the code in-process"
)
FUNCTION_INVOKE_LAMBDA = seam(
    LambdaFunction, "_invoke_lambda", ("self", "event"), "event sources (SQS, SNS, logs) run the code in-process"
)


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class ThreadRoutedStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: a thread that is running a handler writes into its capture buffer,
    every other thread writes through to the original stream. Installed once; loggers that captured the stream
    object at import time (Powertools' Logger does) are routed too."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self._local = threading.local()

    def capture_into(self, buffer: io.StringIO | None) -> None:
        self._local.buffer = buffer

    def _target(self) -> Any:
        return getattr(self._local, "buffer", None) or self.original

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self.original.isatty())

    def fileno(self) -> int:
        return int(self.original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it as a plain attribute
        return str(getattr(self.original, "encoding", "utf-8"))


def _routed(name: str) -> ThreadRoutedStream:
    stream = getattr(sys, name)
    if not isinstance(stream, ThreadRoutedStream):
        stream = ThreadRoutedStream(stream)
        setattr(sys, name, stream)
    return stream


@contextmanager
def _captured_output(function: LambdaFunction, context: LambdaContext) -> Iterator[None]:
    """The handler's stdout and stderr, on this thread only, into the function's CloudWatch log stream."""
    buffer = io.StringIO()
    streams = [_routed("stdout"), _routed("stderr")]
    for stream in streams:
        stream.capture_into(buffer)
    try:
        yield
    finally:
        for stream in streams:
            stream.capture_into(None)
        lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
        if lines:
            logs = logs_backends[function.account_id][function.region]
            logs.ensure_log_group(context.log_group_name)
            logs.ensure_log_stream(context.log_group_name, context.log_stream_name)
            now = int(time.time() * 1000)
            logs.put_log_events(
                context.log_group_name, context.log_stream_name, [{"timestamp": now, "message": m} for m in lines]
            )


@dataclass
class Invocation:
    payload: str
    function_error: str | None
    log: str


class LambdaRunner:
    def __init__(self, extensions: Extensions) -> None:
        self._extensions = extensions
        self._modules: dict[str, Callable[..., Any]] = {}
        self._call_lock = threading.RLock()
        self._import_lock = threading.Lock()

    def cache_dir(self) -> Path:
        return Path(self._extensions.cache_dir) / "lambda"

    def _handler(self, function: LambdaFunction) -> Callable[..., Any]:
        code: bytes = function.code_bytes or b""
        if not code:
            raise RuntimeError(f"function {function.function_name} has no code zip (only zip packages run locally)")
        handler_spec = function.handler or ""
        module_path, _, attribute = handler_spec.rpartition(".")
        if not module_path or not attribute:
            raise RuntimeError(f"function {function.function_name}: handler {handler_spec!r} is not module.function")
        digest = hashlib.sha256(code).hexdigest()[:20]
        key = f"{digest}:{handler_spec}"
        with self._import_lock:
            cached = self._modules.get(key)
            if cached is not None:
                return cached
            root = self.cache_dir() / digest
            if not root.exists():
                staging = root.with_name(f"{digest}.{uuid.uuid4().hex}")
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(staging)
                staging.rename(root)
            relative = Path(*module_path.split("."))
            source = root / relative.with_suffix(".py")
            if not source.exists():
                source = root / relative / "__init__.py"
            if not source.exists():
                raise RuntimeError(f"function {function.function_name}: handler module {module_path} not in its code")
            module = self._import(source, f"datapipe_lambda_{digest}_{module_path.replace('.', '_')}", root)
            handler = getattr(module, attribute, None)
            if not callable(handler):
                raise RuntimeError(f"function {function.function_name}: {handler_spec} is not a function")
            self._modules[key] = handler
            return handler

    @staticmethod
    def _import(source: Path, module_name: str, root: Path) -> ModuleType:
        spec = importlib.util.spec_from_file_location(module_name, source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(root))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        finally:
            sys.path.remove(str(root))
        return module

    def invoke(self, function: LambdaFunction, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        fault = self._extensions.faults.take("lambda", [function.function_name, function.function_arn])
        if fault is not None:
            return Invocation(_error_payload(fault.error, fault.cause, request_id, []), "Unhandled", "")
        context = LambdaContext(
            function_name=function.function_name,
            function_version=str(getattr(function, "version", "$LATEST")),
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size or 128),
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{function.function_name}",
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            deadline=time.monotonic() + float(function.timeout or 3),
        )
        with self._call_lock, self._environment(function, context), _captured_output(function, context):
            try:
                handler = self._handler(function)
                result = handler(event, context)
            except Exception as error:
                frames = traceback.format_tb(error.__traceback__)
                return Invocation(_error_payload(type(error).__name__, str(error), request_id, frames), "Unhandled", "")
        try:
            return Invocation(json.dumps(result), None, "")
        except (TypeError, ValueError) as error:
            return Invocation(
                _error_payload("Runtime.MarshalError", f"Unable to marshal response: {error}", request_id, []),
                "Unhandled",
                "",
            )

    @contextmanager
    def _environment(self, function: LambdaFunction, context: LambdaContext) -> Iterator[None]:
        values = {
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(context.memory_limit_in_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": context.function_version,
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
            "_HANDLER": function.handler or "",
            **{str(k): str(v) for k, v in (function.environment_vars or {}).items()},
        }
        endpoint = clients.endpoint_url()
        if endpoint and "AWS_ENDPOINT_URL" not in os.environ:
            values.setdefault("AWS_ENDPOINT_URL", endpoint)  # boto3 in the handler reaches the emulator
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def invoke_async(self, account: str, region: str, function_arn: str, payload: str) -> None:
        """An asynchronous invocation (EventBridge target): runs on its own thread."""

        def run() -> None:
            function = lambda_backends[account][region].get_function(function_arn)
            self.invoke(function, json.loads(payload) if payload else {})

        threading.Thread(target=run, name=f"lambda-async-{function_arn.rsplit(':', 1)[-1]}", daemon=True).start()


def _error_payload(error_type: str, message: str, request_id: str, frames: list[str]) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": frames})


def install(runner: LambdaRunner) -> None:
    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        event = json.loads(body) if body else {}
        result = runner.invoke(self, event)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse":
            response_headers["x-amz-log-result"] = base64.b64encode(result.log.encode()).decode()
            return result.payload.encode("utf-8")
        return result.payload

    def invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        parsed = json.loads(event) if isinstance(event, str) and event else (event or {})
        result = runner.invoke(self, parsed)
        return result.payload, result.function_error is not None, result.log

    FUNCTION_INVOKE.patch(invoke)
    FUNCTION_INVOKE_LAMBDA.patch(invoke_lambda)
