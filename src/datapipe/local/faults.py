"""Fault injection: make an EMR call, an EMR step, a Lambda function or a Batch job fail on purpose.

Tests in this process use `Extensions.faults`; another process (a test driving the CLI, `datapipe`) uses
`RemoteFaults(endpoint)`, which talks to the route `/datapipe-emulator/faults` served by the same moto server.
A fault stays until `clear()` unless it was given `times`.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from datapipe.local.seams import seam

ROUTE = "/datapipe-emulator/faults"

EMR_CALLS = (
    "createCluster",
    "addStep",
    "cancelStep",
    "terminateCluster",
    "setClusterTerminationProtection",
    "modifyInstanceFleetByName",
    "modifyInstanceGroupByName",
)
KINDS = ("emr_call", "emr_step", "lambda", "batch_job")

DEFAULT_EMR_ERROR = "EMR.AmazonElasticMapReduceException"


class FaultError(ValueError):
    """A fault request names an unknown kind or target."""


@dataclass
class Fault:
    kind: str
    target: str
    error: str
    cause: str
    times: int | None = None  # None: every time until cleared

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The registry the extensions consult; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    # -- setting -------------------------------------------------------------------------------------------------
    def fail_emr_call(
        self, call: str, *, error: str = DEFAULT_EMR_ERROR, cause: str | None = None, times: int | None = None
    ) -> Fault:
        if call not in EMR_CALLS:
            raise FaultError(f"fault 'call': unknown EMR integration {call!r}; expected one of {', '.join(EMR_CALLS)}")
        return self._add(Fault("emr_call", call, error, cause or f"Injected fault: {call} failed", times))

    def fail_emr_step(
        self, step_name: str, *, reason: str = "Injected step failure", times: int | None = None
    ) -> Fault:
        return self._add(Fault("emr_step", step_name, "StepFailed", reason, times))

    def fail_lambda(
        self,
        function_name: str,
        *,
        error: str = "Lambda.Unknown",
        cause: str = "Injected fault: the function failed",
        times: int | None = None,
    ) -> Fault:
        return self._add(Fault("lambda", function_name, error, cause, times))

    def fail_batch_job(
        self, job_name_or_definition: str, *, reason: str = "Injected fault: job failed", times: int | None = None
    ) -> Fault:
        return self._add(Fault("batch_job", job_name_or_definition, "JobFailed", reason, times))

    def add(self, kind: str, target: str, **options: Any) -> Fault:
        """Generic entry point used by the HTTP route: `kind` is one of KINDS."""
        setters: dict[str, Callable[..., Fault]] = {
            "emr_call": self.fail_emr_call,
            "emr_step": self.fail_emr_step,
            "lambda": self.fail_lambda,
            "batch_job": self.fail_batch_job,
        }
        if kind not in setters:
            raise FaultError(f"fault 'kind': unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not isinstance(target, str) or not target:
            raise FaultError("fault 'target': a non-empty name is required")
        allowed = {"error", "cause", "reason", "times"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise FaultError(f"fault {unknown[0]!r}: unknown option; allowed: {', '.join(sorted(allowed))}")
        if kind in ("emr_step", "batch_job"):
            options.pop("error", None)
            if "cause" in options:
                options["reason"] = options.pop("cause")
        else:
            options.pop("reason", None)
        return setters[kind](target, **options)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    # -- consulting ----------------------------------------------------------------------------------------------
    def take(self, kind: str, targets: Iterable[str | None]) -> Fault | None:
        """The fault for one of `targets` (consumed once when it has `times`), or None."""
        names = {t for t in targets if t}
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.target in names:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _add(self, fault: Fault) -> Fault:
        if fault.times is not None and fault.times < 1:
            raise FaultError("fault 'times': must be 1 or more")
        with self._lock:
            self._faults.append(fault)
        return fault


# -- HTTP route inside moto's server -------------------------------------------------------------------------------

DISPATCH = seam(
    DomainDispatcherApplication,
    "__call__",
    ("self", "environ", "start_response"),
    "serves /datapipe-emulator/faults from the same server as the AWS APIs",
)


def _respond(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def install_route(registry_of: Callable[[], Faults]) -> None:
    def dispatch(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").rstrip("/") != ROUTE:
            return DISPATCH.call_original(self, environ, start_response)
        faults = registry_of()
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            return _respond(start_response, "200 OK", {"faults": [f.to_json() for f in faults.list()]})
        if method == "DELETE":
            faults.clear()
            return _respond(start_response, "200 OK", {"faults": []})
        if method != "POST":
            return _respond(start_response, "405 Method Not Allowed", {"message": f"method {method} not allowed"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(request, dict):
                raise FaultError("fault request must be a JSON object")
            request = dict(request)
            fault = faults.add(str(request.pop("kind", "")), request.pop("target", ""), **request)
        except (FaultError, TypeError) as error:
            return _respond(start_response, "400 Bad Request", {"message": str(error)})
        except json.JSONDecodeError as error:
            return _respond(start_response, "400 Bad Request", {"message": f"fault request is not JSON: {error.msg}"})
        return _respond(start_response, "201 Created", fault.to_json())

    DISPATCH.patch(dispatch)


class RemoteFaults:
    """The same fault API, for a process that reaches the emulator only over HTTP."""

    def __init__(self, endpoint_url: str) -> None:
        self.url = endpoint_url.rstrip("/") + ROUTE

    def _call(self, method: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = json.loads(error.read() or b"{}").get("message", error.reason)
            raise FaultError(message) from None

    def add(self, kind: str, target: str, **options: Any) -> dict[str, Any]:
        return dict(self._call("POST", {"kind": kind, "target": target, **options}))

    def fail_emr_call(self, call: str, **options: Any) -> dict[str, Any]:
        return self.add("emr_call", call, **options)

    def fail_emr_step(self, step_name: str, **options: Any) -> dict[str, Any]:
        return self.add("emr_step", step_name, **options)

    def fail_lambda(self, function_name: str, **options: Any) -> dict[str, Any]:
        return self.add("lambda", function_name, **options)

    def fail_batch_job(self, job_name_or_definition: str, **options: Any) -> dict[str, Any]:
        return self.add("batch_job", job_name_or_definition, **options)

    def list(self) -> list[dict[str, Any]]:
        return list(self._call("GET")["faults"])

    def clear(self) -> None:
        self._call("DELETE")
