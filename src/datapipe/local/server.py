"""The embedded emulator: moto's server in this process, with datapipe's extensions, on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from datapipe.errors import DatapipeError
from datapipe.local.deploy import Deployer, Deployment

DEFAULT_HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
FAKE_ACCESS_KEY_ID = "testing"
# moto accepts any credentials; fake ones only keep boto3 from looking for real ones.
FAKE_SECRET_ACCESS_KEY = "testing"
EXTENSIONS_MODULE = "datapipe.local.extensions"
# Variables that would send boto3 or the AWS CLI to a real account or make them fail before reaching the emulator.
CLEARED_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class EmulatorError(DatapipeError):
    """The emulator cannot start (port taken, another emulator running in this process)."""


# The sections of moto's process-wide configuration that _configure_moto changes (and stop() gives back).
MOTO_CONFIG_SECTIONS = ("stepfunctions", "iam")


def _configure_moto() -> dict[str, Any]:
    """Global moto settings the emulator relies on; moto reads them on every request. Returns what they were."""
    import copy

    from moto.core.config import default_user_config

    config: Any = default_user_config
    before = {section: copy.deepcopy(config.get(section)) for section in MOTO_CONFIG_SECTIONS}
    # Executing state machines is opt-in in moto; without it, executions never leave RUNNING.
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    # Roles attach AWS managed policies (AmazonEMRServicePolicy_v2, ...) by ARN; moto only knows them when loaded.
    default_user_config["iam"] = {"load_aws_managed_policies": True}
    return before


def _restore_moto_config(before: dict[str, Any]) -> None:
    """Put back what _configure_moto changed: loading every AWS managed policy makes each later IAM reset slow."""
    from moto.core.config import default_user_config

    config: Any = default_user_config
    for section, values in before.items():
        if values is None:
            config.pop(section, None)
        else:
            config[section] = values


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line if the port is taken; werkzeug would print to stderr and exit the process instead."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            raise EmulatorError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _quiet_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):
        """No access log line per request: the emulator shares its terminal with `datapipe`'s own output."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    return QuietRequestHandler


def _load_extensions(options: Any, endpoint_url: str) -> tuple[Any, Any, bool]:
    """Install the integrations moto lacks (datapipe.local.extensions), told where this server listens.

    The last item says whether this call installed them (False when someone else in the process already had).
    """
    try:
        module = importlib.import_module(EXTENSIONS_MODULE)
    except ModuleNotFoundError as error:
        if error.name != EXTENSIONS_MODULE:
            raise
        return None, options, False  # a checkout without the extensions runs on plain moto
    if options is None:
        options = module.EmulatorOptions(endpoint_url=endpoint_url)
    elif getattr(options, "endpoint_url", None) is None:
        options = dataclasses.replace(options, endpoint_url=endpoint_url)
    installed_here = module.installed() is None
    return module.install(options), options, installed_here


def _unload_extensions() -> None:
    importlib.import_module(EXTENSIONS_MODULE).uninstall()


class Emulator:
    """moto's server on a local port, with the whole datapipe app deployable into it.

    One emulator per process: moto keeps its state in process-wide backends, and the emulator points this
    process's environment at itself so that code run in-process (Lambda handlers) reaches it.

        with Emulator() as emulator:
            deployment = emulator.deploy("cdk.out")
            emulator.client("stepfunctions").list_state_machines()
    """

    _running: Emulator | None = None
    _running_lock = threading.Lock()

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = DEFAULT_HOST,
        region: str | None = None,
        options: Any = None,
        export_environment: bool = True,
    ) -> None:
        """`options`: a datapipe.local.extensions.EmulatorOptions (speeds of simulated EMR, Batch, ...).

        `export_environment`: point this process's AWS environment at the emulator while it runs, so that code
        run in-process (Lambda handlers, boto3 clients built without an endpoint) reaches it. Test sessions that
        also run moto's in-memory mocks turn it off and set the environment per test instead.
        """
        if not 0 <= port <= 65535:
            raise EmulatorError(f"port {port} is not a TCP port (0-65535)")
        self.host = host
        self.requested_port = port
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.options = options
        self.export_environment = export_environment
        self.extensions: Any = None
        self.deployment: Deployment | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._saved_environment: dict[str, str | None] = {}
        self._session: boto3.Session | None = None
        self._installed_extensions = False  # this emulator installed them, so it uninstalls them when it stops
        self._moto_config_before: dict[str, Any] | None = None
        self._server_was_started = False

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        with Emulator._running_lock:
            if Emulator._running is not None:
                raise EmulatorError(f"an emulator already runs in this process at {Emulator._running.endpoint_url}")
            Emulator._running = self
        try:
            self._moto_config_before = _configure_moto()
            # Backends that plain moto created earlier in this process were built without this configuration
            # (an IAM backend without the AWS managed policies cannot attach them): start from fresh ones.
            moto_api_backend.reset()
            application = DomainDispatcherApplication(create_backend_app)
            _check_can_listen(self.host, self.requested_port)
            try:
                # Binding here, not in the serving thread, so that a taken port is an error the caller sees.
                self._server = make_server(
                    self.host, self.requested_port, application, threaded=True, request_handler=_quiet_handler()
                )
            except SystemExit:  # werkzeug exits when it cannot bind (a race lost after the check above)
                raise EmulatorError(f"cannot listen on {self.host}:{self.requested_port}") from None
            self._server_was_started = True
            self._thread = threading.Thread(target=self._server.serve_forever, name="datapipe-emulator", daemon=True)
            self._thread.start()
            if self.export_environment:
                self._point_environment_here()
            self.extensions, self.options, self._installed_extensions = _load_extensions(
                self.options, self.endpoint_url
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, forget every emulated resource, give the process its environment and moto its code back."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        # moto goes back to what it was (code, then configuration, then state), so that plain-moto code run later in
        # this process sees no emulator patches and resets its backends as fast as before.
        if self._installed_extensions:
            _unload_extensions()
            self._installed_extensions = False
            self.extensions = None
        if self._moto_config_before is not None:
            _restore_moto_config(self._moto_config_before)
            self._moto_config_before = None
        if self._server_was_started:
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
            self._server_was_started = False
        self._clients.clear()
        self._restore_environment()
        with Emulator._running_lock:
            if Emulator._running is self:
                Emulator._running = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- where it is and how to reach it -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise EmulatorError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account(self) -> str:
        from moto.core import DEFAULT_ACCOUNT_ID

        return str(DEFAULT_ACCOUNT_ID)

    def env(self) -> dict[str, str]:
        """What boto3, the AWS CLI and `datapipe` need in their environment to use this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _point_environment_here(self) -> None:
        for name, value in self.env().items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        for name in CLEARED_VARIABLES:
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()

    def client(self, service: str) -> Any:
        """A boto3 client for `service` bound to this emulator (cached: clients are thread-safe and slow to build)."""
        if service not in self._clients:
            if self._session is None:
                self._session = boto3.Session(
                    aws_access_key_id=FAKE_ACCESS_KEY_ID,
                    aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
                    region_name=self.region,
                )
            self._clients[service] = self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[service]

    @property
    def faults(self) -> Any:
        """Fault injection of the extensions (None on plain moto)."""
        return getattr(self.extensions, "faults", None)

    # -- deploying ---------------------------------------------------------------------------------------------------
    def deploy(self, assembly_dir: Path | str) -> Deployment:
        """Deploy every stack of the cloud assembly at `assembly_dir` (what `cdk deploy --all` would deploy).

        Once per emulator: the deployer creates, it does not update (a new emulator starts from nothing).
        """
        if self.deployment is not None:
            raise EmulatorError("this emulator already holds a deployment; start a new one to deploy again")
        self.deployment = Deployer(self.client, account=self.account, region=self.region).deploy(assembly_dir)
        return self.deployment
