"""Where `datapipe run` executes a transform: a fresh local process, or a Batch job through the state machine.

Both run the same entry point (entrypoint.py) with the same values (names.JOB_PARAMETERS): locally on its command
line, on Batch as the job's parameters, which fill the placeholders of the command the job definition fixes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from datapipe import aws
from datapipe.aws import EMULATOR_CREDENTIALS, Target
from datapipe.bundles import names
from datapipe.bundles.jobdefs import ensure_job_definition, transform_spec
from datapipe.bundles.manifest import Manifest
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import DATA_DIR_ENV, LocalContext
from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json
from datapipe.naming import Naming

JOB_ID_WAIT_SECONDS = 20.0
WAIT_POLL_SECONDS = 1.0  # between reads of a waited-for run's execution
JOB_LOG_EVENTS_READ = 200  # the newest lines of a failed job's log searched for its error
DEFAULT_JOB_LOG_GROUP = "/aws/batch/job"  # where Batch logs a job whose definition names no awslogs group


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

    def job_parameters(self) -> dict[str, str]:
        """The run's value of each of names.JOB_PARAMETERS, as text."""
        return {
            "remote": str(self.remote.url),
            "context": self.context.name,
            "input": self.input.name,
            "inputVersion": self.input.uuid,
            "output": self.output_name,
            "outputVersion": self.output_version,
            **encoded_values(self.output_tags, self.parameters),
        }


def encoded_values(output_tags: Mapping[str, str], parameters: Mapping[str, str]) -> dict[str, str]:
    """Tags and parameters, any number of them, each as one argument: a JSON object the entry point checks."""
    return {"outputTags": json.dumps(dict(output_tags)), "parameters": json.dumps(dict(parameters))}


def check_values_fit(output_tags: Mapping[str, str], parameters: Mapping[str, str]) -> None:
    """Refuse, before anything runs, tags and parameters too large for an AWS Batch job (and for a command line)."""
    size = sum(len(text.encode()) for text in encoded_values(output_tags, parameters).values())
    if size > names.JOB_PARAMETERS_LIMIT:
        raise DatapipeError(
            f"the transform's parameters and output tags take {size} bytes as JSON, more than the "
            f"{names.JOB_PARAMETERS_LIMIT} a run may pass (AWS Batch takes at most 30 KiB per job): put large values "
            "in the input bundle"
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
        command = names.entrypoint_command(
            plan.transform, plan.job_parameters(), backend="local", python=sys.executable
        )
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
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
    except (ClientError, BotoCoreError) as error:
        explained = aws.explain(error, doing=doing)
        raise (explained or DatapipeError(f"{doing}: {error}", exit_code=1)) from None


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
            transform_spec(
                plan.transform,
                image=image,
                vcpus=float(options.vcpus),
                memory_mib=options.memory_mib,
                job_role_arn=role_arn,
            ),
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
                    "remote": str(plan.remote.url),
                    "context": plan.context.name,
                    "input": {"name": plan.input.name, "version": plan.input.uuid},
                    "output": {"name": plan.output_name, "version": plan.output_version, "tags": plan.output_tags},
                    "parameters": plan.parameters,
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


# ---------------------------------------------------------------------------------------------------------------------
# What became of a Batch run: waiting for it, and saying why it failed


def run_record_path(context: LocalContext, output_version: str) -> Path:
    """Where `datapipe run --backend batch` notes a submission, so that a later pull can say what became of it."""
    return context.root / "runs" / f"{output_version}.json"


def record_submission(context: LocalContext, output_name: str, submission: Submission) -> None:
    path = run_record_path(context, submission.output_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"output": output_name, "uuid": submission.output_version, "executionArn": submission.execution_arn}
    path.write_text(json.dumps({**record, "jobId": submission.job_id}, indent=2) + "\n")


def wait_for_run(submission: Submission, target: Target, poll_seconds: float = WAIT_POLL_SECONDS) -> None:
    """Follow the run's execution until it ends; raise a one-line error saying why when it did not succeed."""
    from datapipe.workflows import follow_execution

    stepfunctions = aws.client("stepfunctions", target)
    result = _aws_call(
        f"cannot follow execution {submission.execution_arn}",
        lambda: follow_execution(stepfunctions, submission.execution_arn, poll_seconds=poll_seconds),
    )
    if not result.succeeded:
        why = failure_reason(target, {"status": result.status, "error": result.error, "cause": result.cause})
        raise DatapipeError(f"the transform's Batch run {result.status}: {why}", exit_code=1)


def unfinished_run(context: LocalContext, name: str, version: str, target: Target | None) -> DatapipeError | None:
    """Why version `version` of bundle `name` is not on the remote, when a Batch run of this context was to make it."""
    path = run_record_path(context, version)
    if not path.is_file():
        return None
    try:
        record = parse_json(path.read_bytes(), what=str(path))
        execution_arn = str(record["executionArn"])
    except (OSError, KeyError, TypeError, DatapipeError):
        return None  # a record we cannot read tells nothing: the plain "no such version" stands
    stepfunctions = aws.client("stepfunctions", target)
    description = _aws_call(
        f"cannot read execution {execution_arn}", stepfunctions.describe_execution, executionArn=execution_arn
    )
    status = description["status"]
    if status == "RUNNING":
        return DatapipeError(
            f"bundle '{name}' version {version} is not made yet: its Batch run is still running (execution "
            f"{execution_arn}); pull it when the run has ended",
            exit_code=1,
        )
    if status == "SUCCEEDED":
        return None
    return DatapipeError(
        f"bundle '{name}' version {version} was never made: its Batch run {status} "
        f"(execution {execution_arn}): {failure_reason(target, description)}",
        exit_code=1,
    )


def failure_reason(target: Target | None, execution: dict[str, Any]) -> str:
    """The execution's error and cause, and the last error line of the job's log when the cause names its stream."""
    error, cause = str(execution.get("error") or ""), str(execution.get("cause") or "")
    reason = f"{error}: {cause}" if error and cause else error or cause or str(execution.get("status", "unknown"))
    match = re.search(r"Batch job (\S+) failed: .*\(log stream (\S+)\)", cause)
    if match is None:
        return reason
    job_id, stream = match.groups()
    with contextlib.suppress(DatapipeError):  # the cause says enough without the log
        logged = job_error_line(target, job_id, stream)
        if logged:
            return f"{reason}; the job's log ends with: {logged}"
    return reason


def job_error_line(target: Target | None, job_id: str, stream: str) -> str | None:
    """The transform's own error line (`Error: ...`, or the last line) from the newest lines of the job's log."""
    batch = aws.client("batch", target)
    jobs = _aws_call(f"cannot describe job {job_id}", batch.describe_jobs, jobs=[job_id])["jobs"]
    group = DEFAULT_JOB_LOG_GROUP
    if jobs:
        definitions = _aws_call(
            "cannot read the job definition", batch.describe_job_definitions, jobDefinitions=[jobs[0]["jobDefinition"]]
        )["jobDefinitions"]
        logging = (definitions[0].get("containerProperties") or {}).get("logConfiguration") if definitions else None
        group = ((logging or {}).get("options") or {}).get("awslogs-group") or group
    events = _aws_call(
        f"cannot read log stream {stream} of {group}",
        aws.client("logs", target).get_log_events,
        logGroupName=group,
        logStreamName=stream,
        startFromHead=False,
        limit=JOB_LOG_EVENTS_READ,
    )["events"]
    lines = [str(event.get("message", "")) for event in events]
    return last_error_line("\n".join(lines)) if lines else None
