"""The emulator's service extensions: what moto lacks for our state machines to run offline.

`install(options)` patches moto in this process, once (moto's server runs in-process on a thread, so the patched
backends answer HTTP requests too):

- the Step Functions interpreter executes (`stepfunctions.execute_state_machine`), its integrations reach this
  server, and `.sync` polls at `poll_interval` (clients, executions);
- EMR clusters and steps have lifecycles, and `arn:aws:states:::elasticmapreduce:*` tasks work (emr);
- activities can be polled and answered by a worker in another process (activities);
- Lambda functions run their deployed code in-process, no Docker (lambda_runner);
- Batch jobs run their container command as a local process (batch_runner);
- the Redshift Data API runs statements on a PostgreSQL server started on first use (redshift_data);
- EventBridge gets the execution, EMR cluster and EMR step events, and delivers to Lambda, SNS and Step Functions
  targets (events, executions);
- faults can be injected, in this process or over HTTP (faults);
- Wait states can run faster than real time (`wait_scale`, waits).

Every patch goes through a declared seam (datapipe.local.seams), checked by a test against the installed moto.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from typing import Any

from moto.core.config import default_user_config

from datapipe.errors import DatapipeError
from datapipe.local.activities import ActivityBoard
from datapipe.local.emr import EmrSimulator
from datapipe.local.faults import Faults
from datapipe.local.lambda_runner import LambdaRunner
from datapipe.local.options import EmulatorOptions
from datapipe.local.schedules import ScheduleRunner


class Extensions:
    """What `install` returns: the live options and the handles tests and part B use."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.cache_dir = options.cache_dir or tempfile.mkdtemp(prefix="datapipe-emulator-")
        self.faults = Faults()
        self.emr = EmrSimulator(self)
        self.activities = ActivityBoard(self)
        self.lambdas = LambdaRunner(self)
        self.schedules: ScheduleRunner | None = None  # started by install()
        self.redshift_data: Any = None  # datapipe.local.redshift_data.EmulatedRedshiftData, set by install()

    def configure(self, options: EmulatorOptions) -> None:
        """Apply new options to the installed extensions (lifecycles read them on every use)."""
        from datapipe.local import clients, executions

        self.options = dataclasses.replace(options, cache_dir=self.cache_dir)
        clients.configure_endpoint(options.endpoint_url)
        executions.set_poll_interval(options.poll_interval)


_installed: Extensions | None = None
_install_lock = threading.Lock()
_saved_config: dict[str, dict[str, object]] = {}
_CONFIG_SECTIONS = ("stepfunctions", "lambda", "batch")  # the moto settings install() changes


def installed() -> Extensions | None:
    """The installed extensions, or None when moto runs unextended in this process."""
    return _installed


def current() -> Extensions:
    if _installed is None:
        raise DatapipeError("the emulator's extensions are not installed: call datapipe.local.extensions.install()")
    return _installed


def install(options: EmulatorOptions | None = None) -> Extensions:
    """Patch moto for the emulator; calling it again only applies the new options."""
    global _installed
    options = options or EmulatorOptions()
    with _install_lock:
        if _installed is not None:
            _installed.configure(options)
            return _installed
        from datapipe.local import (
            activities,
            batch_api,
            batch_runner,
            clients,
            emr,
            events,
            executions,
            faults,
            integration_casing,
            lambda_runner,
            redrive,
            redshift_data,
            s3_checksums,
            schedules,
            waits,
        )

        extensions = Extensions(options)
        config: Any = default_user_config
        _saved_config.clear()
        for section in _CONFIG_SECTIONS:
            _saved_config[section] = dict(config.get(section, {}))
        config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        # Lambda and Batch keep moto's full backends (use_docker stays True); their Docker parts are replaced below.
        config.setdefault("lambda", {})["use_docker"] = True
        config.setdefault("batch", {})["use_docker"] = True
        clients.install()
        clients.configure_endpoint(options.endpoint_url)
        executions.install(options.poll_interval)
        redrive.install()
        s3_checksums.install()
        emr.install(extensions.emr, extensions)
        activities.install(extensions.activities, extensions)
        lambda_runner.install(extensions.lambdas)
        batch_runner.install(extensions)
        batch_api.install()
        integration_casing.install()
        extensions.redshift_data = redshift_data.EmulatedRedshiftData(clients.client)
        redshift_data.install(extensions.redshift_data)
        events.install(extensions.lambdas.invoke_async)
        faults.install_route(lambda: current().faults)
        waits.install(lambda: extensions.options.wait_scale)
        extensions.schedules = schedules.ScheduleRunner(extensions.lambdas.invoke_async)
        extensions.schedules.start()
        _installed = extensions
        return extensions


def uninstall() -> None:
    """Give this process moto back as it was (tests that share the process with other moto users call it)."""
    global _installed
    with _install_lock:
        if _installed is None:
            return
        from datapipe.local import clients, events, redrive, seams

        if _installed.schedules is not None:
            _installed.schedules.stop()
        if _installed.redshift_data is not None:
            _installed.redshift_data.stop()
        events.drain()
        clients.uninstall()
        seams.restore_all()
        redrive.forget()
        config: Any = default_user_config
        for section, values in _saved_config.items():
            config[section] = values
        _installed = None
