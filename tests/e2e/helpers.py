"""Helpers of the end-to-end tests: waiting on the emulator, and running an execution to its end."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datapipe.naming import Naming

FIRST_PAUSE = 0.01  # seconds before the second probe of `wait_for`


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """What `probe` returns once it is truthy; fails the test, naming `what`, after `timeout` seconds.

    The first probes follow each other quickly (10 ms, then each pause half again as long, up to `interval`): an
    outcome is seen soon after it happens, and a long wait does not keep the emulator busy answering probes.
    """
    deadline = time.monotonic() + timeout
    pause = min(FIRST_PAUSE, interval)
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, interval)
    return found


def finished_statement(data: Any, statement: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The description of a Redshift Data API statement once it has ended, polled as a boto3 user polls it; it must
    have FINISHED."""

    def ended() -> dict[str, Any] | None:
        described: dict[str, Any] = data.describe_statement(Id=statement["Id"])
        return described if described["Status"] in ("FINISHED", "FAILED", "ABORTED") else None

    described: dict[str, Any] = wait_for(what, ended, timeout=60)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


def execution_name() -> str:
    """A fresh execution name, so that runs of the same workflow never collide."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


def start_execution(sfn: Any, state_machine_arn: str, payload: Mapping[str, Any]) -> str:
    return str(
        sfn.start_execution(stateMachineArn=state_machine_arn, name=execution_name(), input=json.dumps(payload))[
            "executionArn"
        ]
    )


def ended_execution(sfn: Any, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
    """DescribeExecution once the execution is no longer RUNNING."""

    def ended() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return described if described["status"] != "RUNNING" else None

    return dict(wait_for(f"execution {execution_arn} to end", ended, timeout))


EXECUTION_TAG = "datapipe:execution"  # the tag a workflow puts on each cluster it creates (stacks.emr_workflow)


def clusters_of(emr: Any, execution_arn: str) -> dict[str, str]:
    """Every cluster (in any state) tagged with the execution, by id, with its state; every page of ListClusters."""
    found = {}
    for page in emr.get_paginator("list_clusters").paginate():
        for summary in page["Clusters"]:
            tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get("Tags", [])
            if {"Key": EXECUTION_TAG, "Value": execution_arn} in tags:
                found[summary["Id"]] = summary["Status"]["State"]
    return found


def cluster_of(emr: Any, execution_arn: str) -> str | None:
    """The id of a cluster the execution created, once there is one."""
    return next(iter(clusters_of(emr, execution_arn)), None)


def synth_pipelines(
    emulator: Any,
    cdk_json_context: dict[str, object],
    definitions_dir: Path,
    out_dir: Path,
    *,
    naming: Naming,
    worker_groups: Sequence[str] = (),
    nag: bool = False,
) -> Path:
    """The imported pipelines of `definitions_dir` grouped as app.py groups them (`add_pipeline_stacks`), under
    `naming`'s stage so that the session's app is not touched, synthesized into `out_dir` (with cdk-nag: clean or
    this raises). Deploy it with `Deployer(...).deploy(out_dir)`."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from app import cdk_app
    from stacks.common import encrypt_log_groups
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import add_pipeline_stacks

    app = cdk_app(cdk_json_context, outdir=str(out_dir))  # synthesized as `cdk synth` and the emulator's deploy do
    env = cdk.Environment(account=emulator.account, region=emulator.region)

    def stack_props(unit: str, description: str) -> dict[str, Any]:
        return {"stack_name": naming.stack(unit), "description": description, "env": env, "naming": naming,
                "removal_policy": cdk.RemovalPolicy.DESTROY}

    groups = WorkerGroupSettings(names=tuple(worker_groups)) if worker_groups else WorkerGroupSettings()
    add_pipeline_stacks(app, stack_props=stack_props, naming=naming, settings=PipelineSettings(),
                        worker_groups=groups, definitions_dir=definitions_dir)
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.DESTROY)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return out_dir


def imported_state_machine(emulator: Any, folder: Path, name: str, definition: Mapping[str, Any]) -> str:
    """A Data Pipeline definition through `datapipe import --asl`, created as a state machine in the emulator (no
    stack: only its states); its ARN."""
    from click.testing import CliRunner

    from datapipe.cli import cli

    source, asl = folder / f"{name}.json", folder / f"{name}.asl.json"
    source.write_text(json.dumps(definition))
    result = CliRunner().invoke(cli, ["import", str(source), "--asl", str(asl), "--account", emulator.account,
                                      "--region", emulator.region])
    assert result.exit_code == 0, result.output
    return str(emulator.client("stepfunctions").create_state_machine(
        name=f"{name}-{uuid.uuid4().hex[:8]}", definition=asl.read_text(),
        roleArn=f"arn:aws:iam::{emulator.account}:role/{name}")["stateMachineArn"])
