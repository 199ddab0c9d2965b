"""Where the logs of a task attempt are, and reading gzipped EMR logs as a stream."""

from __future__ import annotations

import gzip
import io
import json
import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.errors import DatapipeError
from datapipe.naming import Naming
from datapipe.operate import logs
from datapipe.operate.history import TaskRecord

BUCKET = "datapipe-dev-logs-123456789012-eu-west-1"
ACTIVITY = "arn:aws:states:eu-west-1:123456789012:activity:datapipe-dev-activity-wg-12345"
TASK_INPUT = {"type": "ShellCommandActivity", "workflow": "datapipe-dev-create-directory", "execution": "run-1",
              "activityId": "CreateDirectory", "attempt": 1, "command": "mkdir x"}


def sources(record: TaskRecord, s3: object = None) -> list[logs.LogSource]:
    return logs.log_sources(
        record, naming=Naming(), account="123456789012", region="eu-west-1", emr=None, batch=None, s3=s3
    )


@pytest.fixture()
def log_bucket() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield s3


def test_a_runner_that_reported_a_failure_named_its_log_folder() -> None:
    record = TaskRecord("CreateDirectory", "activity", ACTIVITY, TASK_INPUT, error="TaskRunner.CommandFailed",
                        cause="command failed with exit code 3 (logs: s3://my-logs/runners/wg/x/Attempt=2/stderr)\nboom")
    assert [s.location for s in sources(record)] == ["s3://my-logs/runners/wg/x/Attempt=2/stderr",
                                                     "s3://my-logs/runners/wg/x/Attempt=2/stdout"]


def test_a_task_the_runner_never_reported_is_looked_for_in_each_runner_principal_s_folder(log_bucket: Any) -> None:
    """The second attempt (`attempt` 1 counts retries) of a runner killed before it reported (heartbeat timeout):
    its logs are in the folder of whichever runner principal took it, under the default log URI."""
    attempt = "datapipe-dev-create-directory/CreateDirectory/run-1/Attempt=2/"
    log_bucket.put_object(Bucket=BUCKET, Key="taskrunner/wg-12345/AIDAOTHER/attempts/other/CreateDirectory/x/stderr")
    log_bucket.put_object(Bucket=BUCKET, Key=f"taskrunner/wg-12345/AROAEXAMPLE:i-0abc/attempts/{attempt}stderr")
    record = TaskRecord("CreateDirectory", "activity", ACTIVITY, TASK_INPUT, error="States.HeartbeatTimeout")
    folder = f"s3://{BUCKET}/taskrunner/wg-12345/AROAEXAMPLE:i-0abc/attempts/{attempt}"
    assert [s.location for s in sources(record, log_bucket)] == [folder + "stderr", folder + "stdout"]


def test_an_unreported_sql_task_is_looked_for_like_a_shell_task(log_bucket: Any) -> None:
    task_input = {"type": "SqlActivity", "workflow": "datapipe-dev-sales", "execution": "run-1", "activityId": "Load",
                  "attempt": 0, "activity": {"id": "Load", "type": "SqlActivity", "script": "SELECT 1"},
                  "database": {"id": "Db", "type": "RdsDatabase", "rdsInstanceId": "db", "secretId": "rds/db"}}
    attempt = "datapipe-dev-sales/Load/run-1/Attempt=1/"
    log_bucket.put_object(Bucket=BUCKET, Key=f"taskrunner/wg-12345/AIDAEXAMPLE/attempts/{attempt}stderr")
    record = TaskRecord("Load", "activity", ACTIVITY, task_input, error="States.HeartbeatTimeout")
    folder = f"s3://{BUCKET}/taskrunner/wg-12345/AIDAEXAMPLE/attempts/{attempt}"
    assert [s.location for s in sources(record, log_bucket)] == [folder + "stderr", folder + "stdout"]


def test_an_unreported_task_with_no_uploaded_log_has_no_source(log_bucket: Any) -> None:
    record = TaskRecord("CreateDirectory", "activity", ACTIVITY, TASK_INPUT, error="States.HeartbeatTimeout")
    assert sources(record, log_bucket) == []


def test_a_hostile_task_input_puts_no_path_outside_the_attempt_folder(log_bucket: Any) -> None:
    attempt = "datapipe-dev-create-directory/CreateDirectory/.._.._secrets/Attempt=2/"
    log_bucket.put_object(Bucket=BUCKET, Key=f"taskrunner/wg-12345/AIDAEXAMPLE/attempts/{attempt}stderr")
    record = TaskRecord("CreateDirectory", "activity", ACTIVITY, {**TASK_INPUT, "execution": "../../secrets"})
    (stderr, _) = sources(record, log_bucket)
    assert "/../" not in stderr.location and stderr.location.endswith(f"/attempts/{attempt}stderr")


def test_a_failed_batch_job_names_its_log_stream() -> None:
    cause = json.dumps({"JobId": "job-1", "Container": {"LogStreamName": "transform/default/abc"}})
    record = TaskRecord("Run_Transform", "batch", "submitJob.sync", error="States.TaskFailed", cause=cause)
    (source,) = sources(record)
    assert (source.log_group, source.log_stream) == ("/aws/batch/job", "transform/default/abc")


def test_a_lambda_task_reads_its_log_group_while_it_ran() -> None:
    record = TaskRecord("Describe_Failure", "lambda", "arn:aws:lambda:eu-west-1:123456789012:function:reader:live",
                        scheduled=datetime(2026, 11, 30, 2, 0, 10, tzinfo=UTC),
                        ended=datetime(2026, 11, 30, 2, 0, 12, tzinfo=UTC))
    (source,) = sources(record)
    assert source.log_group == "/aws/lambda/reader"
    assert (source.start_ms, source.end_ms) == (1796004009000, 1796004013000)


class Body(io.BytesIO):
    """What S3's streaming body offers: read(n)."""


def test_emr_logs_are_decompressed_as_they_stream_across_gzip_members() -> None:
    rng = random.Random(7)
    text = "".join(rng.choice(string.ascii_letters + "\n") for _ in range(300_000))
    # EMR appends to its logs: one file of several gzip members, larger than a read.
    data = gzip.compress(text[:100_000].encode()) + gzip.compress(text[100_000:].encode())
    pieces = list(logs._decoded_chunks(Body(data), gzipped=True))
    assert "".join(pieces) == text
    assert len(pieces) > 2  # streamed, not read whole


def test_a_log_that_is_not_gzip_is_one_line_error() -> None:
    with pytest.raises(DatapipeError, match="not valid gzip"):
        list(logs._decoded_chunks(Body(b"plain text, not gzip"), gzipped=True))


def test_text_split_inside_a_character_is_decoded_whole() -> None:
    data = "café ✓\n".encode() * 20_000
    assert "".join(logs._decoded_chunks(Body(data), gzipped=False)) == "café ✓\n" * 20_000


def test_a_followed_cloudwatch_log_prints_each_event_once_even_within_one_millisecond() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("logs", region_name="eu-west-1")
        client.create_log_group(logGroupName="/aws/batch/job")
        client.create_log_stream(logGroupName="/aws/batch/job", logStreamName="job/1")

        def put(*events: tuple[int, str]) -> None:
            client.put_log_events(logGroupName="/aws/batch/job", logStreamName="job/1",
                                  logEvents=[{"timestamp": t, "message": m} for t, m in events])

        tail = logs.CloudWatchTail(logs.LogSource("job", "cloudwatch:/aws/batch/job/job/1", "/aws/batch/job", "job/1"))
        written: list[str] = []
        put((1_796_000_000_000, "one"), (1_796_000_000_500, "two"))
        assert tail.read(client, written.append)
        put((1_796_000_000_500, "three, in the same millisecond as two"), (1_796_000_001_000, "four"))
        assert tail.read(client, written.append)
        assert tail.read(client, written.append)  # nothing new
        assert written == ["one\n", "two\n", "three, in the same millisecond as two\n", "four\n"]


def test_a_log_group_that_does_not_exist_yet_is_not_found() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("logs", region_name="eu-west-1")
        tail = logs.CloudWatchTail(logs.LogSource("fn", "cloudwatch:/aws/lambda/fn", "/aws/lambda/fn"))
        assert tail.read(client, lambda text: None) is False
