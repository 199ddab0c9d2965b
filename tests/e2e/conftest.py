"""End-to-end fixtures: one embedded emulator for all e2e tests, with the whole app (the session's assembly) deployed.

    @pytest.mark.e2e
    def test_something(emulator):
        emulator.client("stepfunctions")...   # boto3 clients bound to the emulator
        emulator.deployment                   # what was deployed (stacks, resources, outputs)
        emulator.faults                       # fault injection, cleared after every test
        emulator.endpoint_url, emulator.env() # for subprocesses and the AWS CLI

The emulator's environment (AWS_ENDPOINT_URL, fake credentials, region) is set for each test that uses it and
removed afterwards, so tests that use moto's in-memory mocks later in the session are not sent to the server. The
emulator is package-scoped: started by the first e2e test that asks for it, stopped (moto's process-wide state reset
and its extensions uninstalled) after the last test of tests/e2e, so the test areas that run later do not share
moto with a live server. Wait states run at E2E_OPTIONS.wait_scale of their time.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from datapipe.local.assembly import read_assembly
from datapipe.local.extensions import EmulatorOptions
from datapipe.local.server import CLEARED_VARIABLES, Emulator

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# Wait states at 1/20 of their time: the seed's two 10-second waits take 0.5 s each. A simulated cluster boots in
# 0.5 s and terminates in 0.2 s (no test depends on how long: most runs create one, and the suite has many runs);
# steps and Batch keep their default durations. EMR's .sync tasks check every 0.3 s (Step Functions' 60 s at 1/200).
E2E_OPTIONS = EmulatorOptions(wait_scale=0.05, sync_check_scale=0.005, emr_boot_seconds=0.5,
                              emr_termination_seconds=0.2)


@pytest.fixture(scope="package")
def emulator(assembly_dir: Path) -> Iterator[Emulator]:
    region = read_assembly(assembly_dir).region
    # The in-process Lambda runner sets a function's environment around each invocation, and asynchronous ones (rule
    # targets such as the reaper) may still run while a test's monkeypatch restores the environment: monkeypatch can
    # then keep a Lambda's AWS_ENDPOINT_URL. The test areas after this one must not be sent to a stopped emulator.
    environment = dict(os.environ)
    try:
        with Emulator(region=region, options=E2E_OPTIONS, export_environment=False) as running:
            running.deploy(assembly_dir)
            yield running
    finally:
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture(autouse=True)
def _emulator_for_this_test(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point this test's process environment at the emulator and leave no injected fault behind."""
    if "emulator" not in request.fixturenames:
        yield
        return
    running: Emulator = request.getfixturevalue("emulator")
    for name, value in running.env().items():
        monkeypatch.setenv(name, value)
    for name in CLEARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if running.extensions is not None:
        running.extensions.configure(running.options)  # other test areas may have reconfigured the singleton
        running.faults.clear()
    yield
    if running.faults is not None:
        running.faults.clear()


@pytest.fixture()
def subprocess_env() -> dict[str, str]:
    """The environment for a `datapipe` or `aws` subprocess: this process's, with no emulator endpoint in it."""
    return {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL" and k not in CLEARED_VARIABLES}


@pytest.fixture()
def project_copy(tmp_path: Path) -> Path:
    """A folder that `datapipe` recognizes as the project (cdk.json and app.py), so state files land there."""
    for name in ("cdk.json", "app.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path
