"""Faults over HTTP (for a test or CLI in another process), bad fault requests, and every seam into moto."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from datapipe.errors import DatapipeError
from datapipe.local import clients, seams
from datapipe.local.extensions import EmulatorOptions, Extensions, install
from datapipe.local.faults import FaultError, RemoteFaults


def test_faults_set_over_http_apply_in_the_server(endpoint: str, emulator: Extensions) -> None:
    remote = RemoteFaults(endpoint)
    remote.fail_emr_call("addStep", cause="remote fault")
    remote.fail_lambda("fn-x", times=1)
    listed = remote.list()
    assert [(f["kind"], f["target"]) for f in listed] == [("emr_call", "addStep"), ("lambda", "fn-x")]
    assert emulator.faults.take("emr_call", ["addStep"]) is not None
    assert emulator.faults.take("lambda", ["fn-x"]) is not None
    assert emulator.faults.take("lambda", ["fn-x"]) is None  # `times=1` was used up
    remote.clear()
    assert remote.list() == [] and emulator.faults.list() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "emr_call", "target": "createClusterr"}, "unknown EMR integration 'createClusterr'"),
        ({"kind": "disk", "target": "x"}, "fault 'kind': unknown kind 'disk'"),
        ({"kind": "lambda", "target": ""}, "fault 'target'"),
        ({"kind": "lambda", "target": "f", "colour": "red"}, "fault 'colour': unknown option"),
        ({"kind": "lambda", "target": "f", "times": 0}, "fault 'times'"),
    ],
)
def test_bad_fault_requests_are_refused_with_the_field_named(endpoint: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultError, match=message.replace("(", r"\(")):
        RemoteFaults(endpoint).add(body.pop("kind"), body.pop("target"), **body)


def test_a_fault_request_that_is_not_json_is_a_400(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/datapipe-emulator/faults", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 400
    assert "not JSON" in json.loads(raised.value.read())["message"]


def test_the_aws_apis_are_still_served_next_to_the_fault_route(aws: Callable[[str], Any]) -> None:
    assert "Buckets" in aws("s3").list_buckets()


def test_every_seam_still_fits_the_installed_moto(emulator: Extensions) -> None:
    """Fails when a moto upgrade removes or re-signs something the emulator patches."""
    assert seams.check_all() == []
    declared = seams.all_seams()
    assert len(declared) >= 20
    assert [
        s.label for s in declared if not s.patched and s.parameters is not None and "used, not patched" not in s.why
    ] == []
    assert clients.unpatched_importers() == []


def test_install_is_idempotent_and_applies_new_options(endpoint: str, emulator: Extensions) -> None:
    again = install(EmulatorOptions(endpoint_url=endpoint, time_scale=0.5))
    assert again is emulator
    assert again.options.time_scale == 0.5


@pytest.mark.parametrize(
    ("field", "value"),
    [("time_scale", -1.0), ("emr_step_duration", -2.0), ("poll_interval", 0.0), ("wait_scale", -0.5)],
)
def test_bad_options_name_the_option(field: str, value: float) -> None:
    with pytest.raises(DatapipeError, match=f"emulator option '{field}'"):
        EmulatorOptions(**{field: value})  # type: ignore[arg-type]


def test_uninstall_gives_moto_back_and_install_works_again() -> None:
    """In a fresh interpreter: every seam is restored, moto's config too, and a second install patches again."""
    script = textwrap.dedent(
        """
        from moto.core.config import default_user_config
        from moto.emr.models import ElasticMapReduceBackend
        from moto.stepfunctions.responses import StepFunctionResponse
        from datapipe.local import clients, seams
        from datapipe.local.extensions import install, uninstall

        before = ElasticMapReduceBackend.run_job_flow
        install()
        assert ElasticMapReduceBackend.run_job_flow is not before
        uninstall()
        assert ElasticMapReduceBackend.run_job_flow is before
        assert not any(s.patched for s in seams.all_seams())
        assert not hasattr(StepFunctionResponse, "get_activity_task")
        assert default_user_config["stepfunctions"]["execute_state_machine"] is False
        assert len(clients.unpatched_importers()) == 12
        install()
        assert clients.unpatched_importers() == [] and seams.check_all() == []
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_a_stopped_emulator_gives_moto_back_as_it_found_it() -> None:
    """In a fresh interpreter: the Emulator that installed the extensions uninstalls them and restores moto's config
    (a later plain-moto test would otherwise see patched EMR terminations and slow IAM resets)."""
    script = textwrap.dedent(
        """
        import copy
        from moto.core.config import default_user_config
        from moto.emr.models import ElasticMapReduceBackend
        from datapipe.local.extensions import installed
        from datapipe.local.server import Emulator

        config_before = copy.deepcopy(dict(default_user_config))
        terminate_before = ElasticMapReduceBackend.terminate_job_flows
        with Emulator(export_environment=False):
            assert installed() is not None
            assert ElasticMapReduceBackend.terminate_job_flows is not terminate_before
            assert default_user_config["iam"]["load_aws_managed_policies"] is True
        assert installed() is None
        assert ElasticMapReduceBackend.terminate_job_flows is terminate_before
        assert dict(default_user_config) == config_before, dict(default_user_config)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_an_emulator_started_after_plain_moto_still_has_the_aws_managed_policies() -> None:
    """In a fresh interpreter: a plain moto server used first builds an IAM backend without AWS's managed policies; the
    emulator starts from fresh backends, so a deployed role can still attach one (as the CDK's Lambda roles do)."""
    script = textwrap.dedent(
        """
        import boto3
        from moto.server import ThreadedMotoServer
        from datapipe.local.server import Emulator

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        boto3.client("iam", region_name="eu-west-1", endpoint_url=f"http://{host}:{port}").list_roles()
        server.stop()
        with Emulator(region="eu-west-1", export_environment=False) as emulator:
            arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            print(emulator.client("iam").get_policy(PolicyArn=arn)["Policy"]["PolicyName"])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "AWSLambdaBasicExecutionRole", result.stderr[-2000:]
