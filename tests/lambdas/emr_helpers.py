"""Helpers for the Lambda handler tests: a Lambda context, moto's EMR, and clusters shaped like the workflow's.

A plain module rather than a conftest.py: another conftest module would clash with the other test folders' in mypy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws


@dataclass
class FakeLambdaContext:
    """The attributes of the runtime's context object that Powertools reads."""

    function_name: str = "datapipe-dev-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:datapipe-dev-test"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    log_group_name: str = "/aws/lambda/datapipe-dev-test"
    log_stream_name: str = "2026/11/21/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def powertools_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")  # no X-Ray daemon here
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "datapipe")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "test")


@contextmanager
def mocked_emr() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("emr", region_name="eu-west-1")


def make_cluster(emr: Any, *, name: str = "WorkflowCluster", tags: dict[str, str] | None = None) -> str:
    """A running cluster with instance fleets, as the workflow creates them."""
    response = emr.run_job_flow(
        Name=name,
        ReleaseLabel="emr-7.12.0",
        LogUri="s3://datapipe-dev-logs-123456789012-eu-west-1/emr/",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceFleets": [
                {"InstanceFleetType": "MASTER", "TargetOnDemandCapacity": 1,
                 "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge"}]},
            ],
        },
        JobFlowRole="datapipe-dev-emr-instance",
        ServiceRole="datapipe-dev-emr-service",
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )
    return str(response["JobFlowId"])


def add_step(emr: Any, cluster_id: str, name: str) -> str:
    response = emr.add_job_flow_steps(
        JobFlowId=cluster_id,
        Steps=[{"Name": name, "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}],
    )
    return str(response["StepIds"][0])
