"""Where the logs of a task state are, and reading them, error output first.

- a worker group's task (Step Functions activity): the attempt's `stderr` and `stdout` that the task runner uploads
  to `<log URI><group>/<runner principal>/attempts/<workflow>/<activity>/<execution>/Attempt=N/` (the runner's
  result or failure names them; for a runner that never reported, each runner principal's folder is looked in);
- an EMR step: `stderr.gz` and `controller.gz` (then `stdout.gz`, `syslog.gz`) in
  `<cluster LogUri>/<cluster id>/steps/<step id>/`, gzipped as EMR writes them;
- a Batch job: its CloudWatch log stream (`/aws/batch/job` unless the job definition says otherwise);
- a Lambda function: its log group `/aws/lambda/<function>`, for the time the task ran.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from datapipe.errors import DatapipeError
from datapipe.naming import TASK_RUNNER_LOG_PREFIX, Naming
from datapipe.operate.history import TaskRecord

EMR_STEP_LOGS = ("stderr.gz", "controller.gz", "stdout.gz", "syslog.gz")
BATCH_LOG_GROUP = "/aws/batch/job"
_RUNNER_LOGS = re.compile(r"\(logs: (s3://\S+?/)(stderr|stdout)\)")
_ACTIVITY_NAME = re.compile(r":activity:(?P<name>[\w-]+)$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.*)$")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogSource:
    """One log: in S3 (`s3://...`) or a CloudWatch log stream or group (`group`, optional `stream`, time window)."""

    label: str  # e.g. "stderr", "EMR step s-123 controller", "Batch job 1234 log stream"
    location: str  # what the user reads: an S3 URI or `cloudwatch:<group>[/<stream>]`
    log_group: str = ""
    log_stream: str = ""
    start_ms: int | None = None
    end_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "location": self.location}


def log_sources(
    record: TaskRecord, *, naming: Naming, account: str, region: str, emr: Any, batch: Any, s3: Any
) -> list[LogSource]:
    """The logs behind one task attempt, error output first."""
    if record.kind == "activity":
        return _runner_sources(record, naming=naming, account=account, region=region, s3=s3)
    if record.kind == "emr" and record.resource.startswith("addStep"):
        return _emr_step_sources(record, emr)
    if record.kind == "batch":
        return _batch_sources(record, batch)
    if record.kind == "lambda":
        return _lambda_sources(record)
    return []


def _runner_sources(record: TaskRecord, *, naming: Naming, account: str, region: str, s3: Any) -> list[LogSource]:
    folder = None
    if isinstance(record.output.get("stderr"), str) and record.output["stderr"].startswith("s3://"):
        folder = record.output["stderr"].rpartition("/")[0] + "/"
    elif (match := _RUNNER_LOGS.search(record.cause)) is not None:
        folder = match[1]
    else:  # the runner reported nothing (it was killed, or timed out): look where the default log URI puts it
        folder = _unreported_attempt_folder(record, naming=naming, bucket=naming.log_bucket(account, region), s3=s3)
        if folder is None:
            return []
    return [LogSource("stderr", folder + "stderr"), LogSource("stdout", folder + "stdout")]


def _unreported_attempt_folder(record: TaskRecord, *, naming: Naming, bucket: str, s3: Any) -> str | None:
    """The folder of an attempt under the default log URI: `<group>/<principal>/attempts/<attempt path>/`, where the
    principal is whichever runner took the task; each runner principal of the group has one folder (a few)."""
    from datapipe.taskrunner.contract import InvalidTask, parse_task, safe_path_part

    activity = _ACTIVITY_NAME.search(record.resource)
    group = activity["name"].removeprefix(naming.name("activity-")) if activity else ""
    try:
        attempt_path = parse_task(json.dumps(record.parameters)).attempt_path  # of any task type
    except InvalidTask:
        return None
    group_prefix = f"{TASK_RUNNER_LOG_PREFIX}{safe_path_part(group)}/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=group_prefix, Delimiter="/")
    for principal in (common["Prefix"] for page in pages for common in page.get("CommonPrefixes", [])):
        key = f"{principal}attempts/{attempt_path}/"
        if s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0):
            return f"s3://{bucket}/{key}"
    return None


def _emr_step_sources(record: TaskRecord, emr: Any) -> list[LogSource]:
    cluster_id = str(record.parameters.get("ClusterId", ""))
    cause = _json_object(record.cause)
    found = (record.submitted.get("StepId"), record.output.get("StepId"), record.output.get("Id"), cause.get("Id"))
    step_id = str(next((value for value in found if value), ""))
    if not cluster_id or not step_id:
        return []
    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    log_file = str(step.get("Status", {}).get("FailureDetails", {}).get("LogFile") or "")
    if log_file:
        folder = log_file if log_file.endswith("/") else log_file.rpartition("/")[0] + "/"
    else:
        log_uri = str(emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri") or "")
        if not log_uri:
            return []
        folder = log_uri.rstrip("/") + f"/{cluster_id}/steps/{step_id}/"
    folder = folder.replace("s3n://", "s3://", 1)
    return [LogSource(f"EMR step {step_id} {name.removesuffix('.gz')}", folder + name) for name in EMR_STEP_LOGS]


def _batch_sources(record: TaskRecord, batch: Any) -> list[LogSource]:
    described = record.output or _json_object(record.cause)
    job_id = str(record.submitted.get("JobId") or described.get("JobId") or "")
    container = described.get("Container") if isinstance(described.get("Container"), Mapping) else None
    if container is None and job_id:
        jobs = batch.describe_jobs(jobs=[job_id]).get("jobs", [])
        container = _pascal(jobs[0].get("container", {})) if jobs else None
    if not container or not container.get("LogStreamName"):
        return []
    options = container.get("LogConfiguration", {}).get("Options", {}) if isinstance(container, Mapping) else {}
    group = str(options.get("awslogs-group") or BATCH_LOG_GROUP)
    stream = str(container["LogStreamName"])
    return [LogSource(f"Batch job {job_id} log stream", f"cloudwatch:{group}/{stream}", group, stream)]


def _lambda_sources(record: TaskRecord) -> list[LogSource]:
    function = str(record.parameters.get("FunctionName") or record.resource)
    name = function.split(":function:")[-1].split(":")[0]
    if not name:
        return []
    group = f"/aws/lambda/{name}"
    start = record.scheduled - timedelta(seconds=1) if record.scheduled else None
    end = record.ended + timedelta(seconds=1) if record.ended else None
    return [
        LogSource(
            f"Lambda {name}",
            f"cloudwatch:{group}",
            group,
            start_ms=int(start.timestamp() * 1000) if start else None,
            end_ms=int(end.timestamp() * 1000) if end else None,
        )
    ]


def _pascal(value: Any) -> Any:
    """DescribeJobs' camelCase as the PascalCase Step Functions gives in a Batch task's output."""
    if isinstance(value, Mapping):
        return {str(k)[:1].upper() + str(k)[1:]: v if str(k) == "options" else _pascal(v) for k, v in value.items()}
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


# -- reading --------------------------------------------------------------------------------------------------------


def read_log(source: LogSource, *, s3: Any, logs: Any, write: Callable[[str], None]) -> bool:
    """Write the log's text through `write`, piece by piece; False when the log does not exist (yet)."""
    if source.location.startswith("s3://"):
        return _read_s3(source.location, s3, write)
    return _read_cloudwatch(source, logs, write)


def _read_s3(uri: str, s3: Any, write: Callable[[str], None]) -> bool:
    from botocore.exceptions import ClientError

    match = _S3_URI.match(uri)
    if match is None:
        raise DatapipeError(f"log location {uri!r} is not an s3:// URI")
    try:
        body = s3.get_object(Bucket=match["bucket"], Key=match["key"])["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return False
        raise
    for text in _decoded_chunks(body, gzipped=uri.endswith(".gz")):
        write(text)
    return True


def _decoded_chunks(body: Any, *, gzipped: bool) -> Iterator[str]:
    """The object's text in chunks (memory stays bounded); gzip members are decompressed as they stream."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzipped else None
    while chunk := body.read(CHUNK):
        if inflater is not None:
            try:
                data = inflater.decompress(chunk)
                while inflater.eof and inflater.unused_data:  # EMR's files can hold several gzip members
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    data += inflater.decompress(rest)
            except zlib.error as error:
                raise DatapipeError(f"log is not valid gzip: {error}", exit_code=1) from None
            chunk = data
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _read_cloudwatch(source: LogSource, logs: Any, write: Callable[[str], None]) -> bool:
    return CloudWatchTail(source).read(logs, write)


class CloudWatchTail:
    """A CloudWatch source read again and again while it grows: each read writes only the events not written yet."""

    def __init__(self, source: LogSource) -> None:
        self.source = source
        self._after_ms = source.start_ms  # events at or after this time are asked for
        self._written_at_edge: set[str] = set()  # ids of events already written at `_after_ms` (same millisecond)

    def read(self, logs: Any, write: Callable[[str], None]) -> bool:
        """Write the new events; False while the log group or stream does not exist."""
        from botocore.exceptions import ClientError

        arguments: dict[str, Any] = {"logGroupName": self.source.log_group}
        if self.source.log_stream:
            arguments["logStreamNames"] = [self.source.log_stream]
        if self._after_ms is not None:
            arguments["startTime"] = self._after_ms
        if self.source.end_ms is not None:
            arguments["endTime"] = self.source.end_ms
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**arguments):
                for event in page.get("events", []):
                    self._write(event, write)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True

    def _write(self, event: Mapping[str, Any], write: Callable[[str], None]) -> None:
        timestamp, event_id = int(event.get("timestamp") or 0), str(event.get("eventId", ""))
        if timestamp == self._after_ms and event_id in self._written_at_edge:
            return
        message = str(event.get("message", ""))
        write(message if message.endswith("\n") else message + "\n")
        if self._after_ms is None or timestamp > self._after_ms:
            self._after_ms, self._written_at_edge = timestamp, {event_id}
        elif timestamp == self._after_ms:
            self._written_at_edge.add(event_id)
