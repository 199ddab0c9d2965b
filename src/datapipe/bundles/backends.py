"""Where `datapipe run` executes a transform: a fresh local process, or a Batch job through the state machine.

Both run the same entry point (entrypoint.py) with the same arguments, so a run behaves the same on either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid as uuid_module
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from datapipe import aws
from datapipe.aws import EMULATOR_CREDENTIALS, Target
from datapipe.bundles import entrypoint, names
from datapipe.bundles.jobdefs import JobSpec, ensure_job_definition
from datapipe.bundles.manifest import Manifest
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import DATA_DIR_ENV, LocalContext
from datapipe.errors import DatapipeError
from datapipe.naming import Naming

JOB_ID_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class RunPlan:
    """One run: which input version goes in, which output version must come out, and how it is named."""

    context: LocalContext
    remote: Remote
    transform: str
    input: Manifest
    output_name: str
    output_tags: dict[str, str]
    parameters: dict[str, str]
    output_version: str = field(default_factory=lambda: str(uuid_module.uuid4()))

    def command(self, *, backend: str, python: str) -> list[str]:
        return entrypoint.build_command(
            remote=str(self.remote.url),
            context=self.context.name,
            input_name=self.input.name,
            input_version=self.input.uuid,
            output_name=self.output_name,
            output_version=self.output_version,
            transform=self.transform,
            output_tags=self.output_tags,
            parameters=self.parameters,
            backend=backend,
            python=python,
        )


def last_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    reported = [line for line in lines if line.startswith("Error: ")]
    return (reported[-1] if reported else lines[-1] if lines else "no output").removeprefix("Error: ")


def run_local(plan: RunPlan, *, pipe_root: Path, target: Target) -> tuple[Manifest, Path]:
    """Run in a fresh process and working folder as the container would, then pull the output into the context.

    Returns the output manifest and the run's log (the process's stdout and stderr).
    """
    log_path = plan.context.root / "runs" / f"{plan.output_version}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="datapipe-run-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pipe_root.resolve()), env.get("PYTHONPATH")]))
    env[DATA_DIR_ENV] = str(workdir / ".datapipe")  # the container's throw-away storage, never the user's
    env.update(process_environment(target))
    try:
        result = subprocess.run(
            plan.command(backend="local", python=sys.executable), cwd=workdir, env=env, capture_output=True, text=True
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise DatapipeError(f"{last_error_line(result.stderr)} (log: {log_path})", exit_code=1)
    output = plan.remote.find(plan.output_name, version=plan.output_version)
    plan.remote.pull(plan.context, output)
    return output, log_path


def process_environment(target: Target) -> dict[str, str]:
    """What makes boto3 in the transform's process reach the same place as this CLI does."""
    env = {}
    if target.endpoint_url:
        env["AWS_ENDPOINT_URL"] = target.endpoint_url
    if target.region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = target.region
    if target.is_emulator:
        env.update({key.upper(): value for key, value in EMULATOR_CREDENTIALS.items()})
    return env


@dataclass(frozen=True)
class BatchOptions:
    naming: Naming
    image: str | None = None  # default: the transform's ECR repository, tag `latest`
    vcpus: float = 1
    memory_mib: int = 2048
    fargate: bool = False


@dataclass(frozen=True)
class Submission:
    execution_arn: str
    job_id: str | None
    job_definition_arn: str
    job_definition_registered: bool
    output_version: str


def _aws_call(doing: str, call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise DatapipeError(f"{doing}: {details.get('Code')}: {details.get('Message')}", exit_code=1) from None
    except BotoCoreError as error:
        raise DatapipeError(f"{doing}: {error}", exit_code=1) from None


def submit_batch(plan: RunPlan, options: BatchOptions, target: Target) -> Submission:
    """Create or reuse the job definition, start the transform state machine, and return without waiting."""
    if not target.region:
        raise DatapipeError("no region: pass --region or set AWS_REGION")
    region = target.region
    partition = boto3.session.Session().get_partition_for_region(region)
    account = _aws_call("cannot find the AWS account", aws.client("sts", target).get_caller_identity)["Account"]
    naming = options.naming

    image = options.image or (
        f"{account}.dkr.ecr.{region}.amazonaws.com/{names.repository_name(naming, plan.transform)}:latest"
    )
    role_arn = f"arn:{partition}:iam::{account}:role/{names.job_role_name(naming)}"
    execution_role = f"arn:{partition}:iam::{account}:role/{names.execution_role_name(naming)}"
    definition_name = names.job_definition_name(naming, plan.transform)
    definition_arn, registered = _aws_call(
        f"cannot prepare job definition {definition_name}",
        lambda: ensure_job_definition(
            aws.client("batch", target),
            definition_name,
            JobSpec(image=image, vcpus=float(options.vcpus), memory_mib=options.memory_mib, job_role_arn=role_arn),
            transform=plan.transform,
            execution_role_arn=execution_role if options.fargate else None,
        ),
    )

    state_machine = naming.state_machine_arn(
        names.TRANSFORM_STATE_MACHINE, account=account, region=region, partition=partition
    )
    job_name = f"{names.module_slug(plan.transform)}-{plan.output_version[:8]}"[-names.BATCH_NAME_LIMIT :]
    stepfunctions = aws.client("stepfunctions", target)
    try:
        execution = stepfunctions.start_execution(
            stateMachineArn=state_machine,
            name=plan.output_version,
            input=json.dumps(
                {
                    "jobName": job_name,
                    "jobDefinition": definition_arn,
                    "command": plan.command(backend="batch", python="python"),
                    "output": {"name": plan.output_name, "version": plan.output_version},
                }
            ),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "StateMachineDoesNotExist":
            raise DatapipeError(
                f"state machine {naming.state_machine(names.TRANSFORM_STATE_MACHINE)} is not deployed; "
                "deploy the batch stack first",
                exit_code=1,
            ) from None
        raise DatapipeError(f"cannot start the transform state machine: {error}", exit_code=1) from None
    execution_arn = execution["executionArn"]
    return Submission(
        execution_arn=execution_arn,
        job_id=wait_for_job_id(stepfunctions, execution_arn),
        job_definition_arn=definition_arn,
        job_definition_registered=registered,
        output_version=plan.output_version,
    )


def wait_for_job_id(stepfunctions: Any, execution_arn: str, timeout: float = JOB_ID_WAIT_SECONDS) -> str | None:
    """The Batch job id, read from the execution's TaskSubmitted event; None if the job is not submitted yet.

    This waits only for the submission (seconds), never for the job.
    """
    deadline = time.monotonic() + timeout
    while True:
        events = _aws_call(
            "cannot read the execution history", stepfunctions.get_execution_history, executionArn=execution_arn
        )["events"]
        for event in events:
            if event["type"] == "TaskSubmitted":
                output = json.loads(event["taskSubmittedEventDetails"].get("output") or "{}")
                job_id = output.get("JobId") or output.get("jobId")
                if job_id:
                    return str(job_id)
            if event["type"] in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
                details = event.get("executionFailedEventDetails", {})
                raise DatapipeError(
                    f"execution {execution_arn} ended before submitting the job: "
                    f"{details.get('error', event['type'])}: {details.get('cause', '')}".rstrip(": "),
                    exit_code=1,
                )
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
