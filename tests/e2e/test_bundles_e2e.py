"""Transforms on the emulator, with the whole app deployed: the example runs locally and on Batch, with lineage,
and a transform that raises leaves no new output version."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from datapipe.bundles.remote import Remote
from datapipe.bundles.store import LocalContext
from datapipe.bundles.transform import code_version, load_transform
from datapipe.cli import cli
from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORDCOUNT = "examples.transforms.wordcount.WordCount"
NAMING = Naming()


def datapipe(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture()
def bundles(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalContext:
    """A context whose remote is the deployed data bucket, holding a committed `words` bundle."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAPIPE_DATA_DIR", str(tmp_path / "data"))
    # Nothing here puts the transform's code on the job's path: the emulator's Batch gives the job what the image
    # would hold (issue 12 §3: the job could not import examples.transforms.wordcount).
    monkeypatch.delenv("PYTHONPATH", raising=False)
    bucket = NAMING.bucket("data", emulator.account, emulator.region)
    assert datapipe("remote", "default", f"s3://{bucket}/bundles").exit_code == 0
    words = tmp_path / "words"
    words.mkdir()
    (words / "a.txt").write_text("It was the best of times, it was the worst of times.\n")
    assert datapipe("bundle", "commit", "words", str(words)).exit_code == 0
    return LocalContext(tmp_path / "data", "default")


def run(*args: str) -> dict[str, Any]:
    result = datapipe("run", "--pipe-root", str(PROJECT_DIR), "--json", *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def wait_for_execution(emulator: Any, execution_arn: str) -> dict[str, Any]:
    return ended_execution(emulator.client("stepfunctions"), execution_arn)


def assert_lineage(bundles: LocalContext, version: str, backend: str) -> None:
    counts = bundles.find("counts", version=version)
    words = bundles.find("words")
    assert counts.lineage.transform == WORDCOUNT
    assert [(i.name, i.uuid) for i in counts.lineage.inputs] == [("words", words.uuid)]
    assert counts.lineage.code_version == code_version(load_transform(WORDCOUNT, PROJECT_DIR))
    assert counts.lineage.parameters == {"min_length": "4"}
    assert counts.lineage.backend == backend
    assert counts.tags["words"] == "4" and counts.tags["distinct"] == "3"  # best, times x2, worst
    table = (bundles.files_dir(counts) / "counts.csv").read_text().splitlines()
    assert table == ["word,count", "times,2", "best,1", "worst,1"]


def test_example_transform_runs_locally_with_lineage(bundles: LocalContext) -> None:
    summary = run("words", "counts", WORDCOUNT, "min_length=4")
    assert summary["status"] == "done"
    assert_lineage(bundles, summary["uuid"], "local")


def test_example_transform_runs_on_batch_and_is_pulled_later(emulator: Any, bundles: LocalContext) -> None:
    summary = run("words", "counts", WORDCOUNT, "min_length=4", "--backend", "batch", "-ot", "run:batch")
    assert summary["status"] == "submitted"
    assert summary["jobDefinitionArn"].split("/")[-1].startswith(f"{NAMING.name('examples-transforms-wordcount')}-")
    assert not summary["jobDefinitionRegistered"]  # the deployed definition fits: image, vCPUs, memory and role
    assert summary["jobId"]
    execution = wait_for_execution(emulator, summary["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    [job] = emulator.client("batch").describe_jobs(jobs=[summary["jobId"]])["jobs"]
    assert job["status"] == "SUCCEEDED"

    pulled = datapipe("bundle", "pull", "counts", "--uuid", summary["uuid"])
    assert pulled.exit_code == 0, pulled.output
    assert_lineage(bundles, summary["uuid"], "batch")
    assert bundles.find("counts", tags={"run": "batch"}).uuid == summary["uuid"]


def test_a_transform_that_raises_leaves_no_new_output_version(
    emulator: Any, bundles: LocalContext, tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n")
    assert datapipe("bundle", "commit", "tables", str(table)).exit_code == 0
    remote = Remote(bundles.require_remote(), bundles.name)
    before = {m.uuid for m in remote.versions("counts")}

    local = datapipe("run", "--pipe-root", str(PROJECT_DIR), "tables", "counts", WORDCOUNT)
    assert local.exit_code == 1
    assert local.output.startswith(f"Error: transform '{WORDCOUNT}' raised ValueError: input bundle 'tables' holds")

    summary = run("tables", "counts", WORDCOUNT, "--backend", "batch")
    execution = wait_for_execution(emulator, summary["executionArn"])
    assert execution["status"] == "FAILED"
    assert execution["error"] == "TransformJobFailed"
    assert "Essential container in task exited" in execution["cause"]
    assert "log stream" in execution["cause"]
    assert {m.uuid for m in remote.versions("counts")} == before
    assert all(m.uuid != summary["uuid"] for m in bundles.versions("counts"))
    pulled = CliRunner().invoke(cli, ["bundle", "pull", "counts", "--uuid", summary["uuid"]])
    assert pulled.exit_code == 1, pulled.output
    assert pulled.output.count("\n") == 1
    assert pulled.output.startswith(
        f"Error: bundle 'counts' version {summary['uuid']} was never made: its Batch run FAILED (execution "
        f"{summary['executionArn']}): TransformJobFailed: Batch job "
    )
    assert "the job's log ends with: transform 'examples.transforms.wordcount.WordCount' raised ValueError: " in (
        pulled.output
    )
    assert "input bundle 'tables' holds no .txt file" in pulled.output


def job_log(emulator: Any, job_id: str) -> tuple[str, str, list[str]]:
    """(group, stream, lines) of a job's log, where the deployed job definition says Batch writes it."""
    batch = emulator.client("batch")
    [job] = batch.describe_jobs(jobs=[job_id])["jobs"]
    [definition] = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    options = definition["containerProperties"]["logConfiguration"]["options"]
    group, stream = options["awslogs-group"], job["container"]["logStreamName"]
    events = emulator.client("logs").get_log_events(logGroupName=group, logStreamName=stream)["events"]
    return group, stream, [e["message"] for e in events]


def test_the_readme_batch_run_waits_imports_the_project_and_logs_where_the_docs_say(
    emulator: Any, bundles: LocalContext
) -> None:
    """Issue 12 §3: the README's `run ... --backend batch` failed on the emulator with ModuleNotFoundError."""
    result = datapipe("run", "words", "counts", WORDCOUNT, "min_length=4", "--backend", "batch", "--wait", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["status"] == "done"
    assert_lineage(bundles, summary["uuid"], "batch")  # pulled into the context: --wait needs no later pull

    group, stream, lines = job_log(emulator, summary["jobId"])
    assert group == "/datapipe/dev/transforms"  # docs/bundles.md: the transforms' log group
    assert stream == f"transform/default/{summary['jobId']}"  # awslogs-stream-prefix/container/job
    assert any(line.startswith('{"output": "counts"') for line in lines), lines  # the entry point's summary


def test_a_failed_batch_run_with_wait_says_why_in_one_line(
    emulator: Any, bundles: LocalContext, tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n")
    assert datapipe("bundle", "commit", "tables", str(table)).exit_code == 0
    result = CliRunner().invoke(cli, ["run", "--pipe-root", str(PROJECT_DIR), "tables", "counts", WORDCOUNT,
                                      "--backend", "batch", "--wait"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: the transform's Batch run FAILED: TransformJobFailed: Batch job ")
    assert "Essential container in task exited" in result.output
    assert "input bundle 'tables' holds no .txt file" in result.output


def test_input_that_did_not_come_from_datapipe_run_fails_at_once(emulator: Any) -> None:
    stepfunctions = emulator.client("stepfunctions")
    arn = NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region)
    event = {"detail": {"bucket": {"name": "data"}, "object": {"key": "incoming/x.csv"}}}  # an S3 event's shape
    execution_arn = stepfunctions.start_execution(stateMachineArn=arn, input=json.dumps(event))["executionArn"]
    execution = wait_for_execution(emulator, execution_arn)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidTransformInput"
    assert execution["cause"].startswith("The input must hold jobName, jobDefinition, remote, context, input")


def deployed_wordcount_definition(emulator: Any) -> str:
    name = NAMING.name("examples-transforms-wordcount-job-definition")
    definitions = emulator.client("batch").describe_job_definitions(jobDefinitionName=name, status="ACTIVE")
    return str(max(definitions["jobDefinitions"], key=lambda d: int(d["revision"]))["jobDefinitionArn"])


def test_a_command_in_the_execution_input_is_refused_and_nothing_runs(emulator: Any, tmp_path: Path) -> None:
    """Issue 11: whoever may start the transform workflow ran any command as the transform's job role."""
    witness = tmp_path / "pwned"
    batch = emulator.client("batch")
    queue = NAMING.name("transforms")
    jobs_before = {j["jobId"] for status in ("SUCCEEDED", "FAILED") for j in batch.list_jobs(
        jobQueue=queue, jobStatus=status)["jobSummaryList"]}  # fmt: skip
    execution_arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region),
        input=json.dumps(
            {
                "jobName": "pwned",
                "jobDefinition": deployed_wordcount_definition(emulator),
                "command": ["sh", "-c", f"echo pwned; touch {witness}"],
            }
        ),
    )["executionArn"]
    execution = wait_for_execution(emulator, execution_arn)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidTransformInput"
    assert execution["cause"].startswith("The input may not hold a command: the job definition fixes what the job runs")
    assert not witness.exists()
    jobs_after = {j["jobId"] for status in ("SUCCEEDED", "FAILED") for j in batch.list_jobs(
        jobQueue=queue, jobStatus=status)["jobSummaryList"]}  # fmt: skip
    assert jobs_after == jobs_before  # no job was submitted at all


PACED = "examples.transforms.paced.Paced"
HOSTILE_MESSAGE = "$(touch {witness}); `touch {witness}` && echo pwned\nRef::remote\n--transform=os.system\n; exit 3"


def test_hostile_parameter_and_tag_values_reach_the_transform_as_data(
    emulator: Any, bundles: LocalContext, tmp_path: Path
) -> None:
    witness = tmp_path / "pwned"
    message = HOSTILE_MESSAGE.format(witness=witness)
    tag = f"note:$(touch {witness})\nsecond line"
    result = datapipe("run", "--pipe-root", str(PROJECT_DIR), "words", "echoed", PACED, f"message={message}",
                      "-ot", tag, "--backend", "batch", "--wait", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    made = bundles.find("echoed", version=json.loads(result.output)["uuid"])
    assert (bundles.files_dir(made) / "message.txt").read_text() == message
    assert made.tags["note"] == f"$(touch {witness})\nsecond line"
    assert made.lineage.parameters == {"message": message}
    assert not witness.exists()


def test_a_large_value_is_data_and_one_too_large_for_batch_is_refused_before_anything_runs(
    emulator: Any, bundles: LocalContext
) -> None:
    large = "x" * 20_000  # under the 24 KiB a run may pass
    result = datapipe("run", "--pipe-root", str(PROJECT_DIR), "words", "echoed", PACED, f"message={large}",
                      "--backend", "batch", "--wait", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    made = bundles.find("echoed", version=json.loads(result.output)["uuid"])
    assert (bundles.files_dir(made) / "message.txt").read_text() == large

    executions_before = emulator.client("stepfunctions").list_executions(
        stateMachineArn=NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region)
    )["executions"]
    huge = CliRunner().invoke(cli, ["run", "--pipe-root", str(PROJECT_DIR), "words", "echoed", PACED,
                                    "message=" + "y" * 30_000, "--backend", "batch"])  # fmt: skip
    assert huge.exit_code == 2, huge.output
    assert huge.output.count("\n") == 1
    # {"message": "y...y"} is 13 + 30,000 + 2 bytes, and the output tags {} 2 more.
    assert huge.output.startswith("Error: the transform's parameters and output tags take 30017 bytes as JSON, more")
    executions_after = emulator.client("stepfunctions").list_executions(
        stateMachineArn=NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region)
    )["executions"]
    assert len(executions_after) == len(executions_before)


def transform_input(bundles: LocalContext, definition: str, **changed: Any) -> dict[str, Any]:
    """The input `datapipe run --backend batch` sends, for the newest `words` (pushed), with fields changed."""
    assert datapipe("bundle", "push", "words").exit_code == 0
    words = bundles.find("words")
    run_input: dict[str, Any] = {
        "jobName": "direct",
        "jobDefinition": definition,
        "remote": bundles.require_remote(),
        "context": bundles.name,
        "input": {"name": "words", "version": words.uuid},
        "output": {"name": "counts", "version": str(uuid.uuid4()), "tags": {}},
        "parameters": {"min_length": "4"},
    }
    return {**run_input, **changed}


def start_transform(emulator: Any, run_input: dict[str, Any]) -> dict[str, Any]:
    execution_arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region),
        input=json.dumps(run_input),
    )["executionArn"]
    return wait_for_execution(emulator, execution_arn)


def test_a_started_run_with_the_documented_input_makes_its_output(emulator: Any, bundles: LocalContext) -> None:
    run_input = transform_input(bundles, deployed_wordcount_definition(emulator))
    run_input["output"]["tags"] = {"started": "by hand"}
    execution = start_transform(emulator, run_input)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert datapipe("bundle", "pull", "counts", "--uuid", run_input["output"]["version"]).exit_code == 0
    counts = bundles.find("counts", version=run_input["output"]["version"])
    assert counts.tags["started"] == "by hand" and counts.lineage.parameters == {"min_length": "4"}


@pytest.mark.parametrize(
    ("changed", "error_line"),
    [
        ({"input": {"name": "words", "version": "--help"}}, "argument --input-version: expected one argument"),
        ({"input": {"name": "words", "version": "1; touch pwned"}}, "version '1; touch pwned' is not a bundle uuid"),
        ({"context": "../../etc"}, "--context name '../../etc' must be letters, digits"),
        ({"parameters": {"min_length": "$(touch pwned)"}}, "parameter 'min_length' must be of type int"),
        ({"parameters": {"__import__('os')": "1"}}, "has no parameter \"__import__('os')\""),
        ({"parameters": "min_length=4"}, "--parameters must be a JSON object of strings"),
        ({"parameters": {"min_length": 4}}, "--parameters: the value of 'min_length' must be a string"),
        ({"output": {"name": "counts", "version": str(uuid.uuid4()), "tags": {"a b": "c"}}}, "tag 'a b:c' must be"),
    ],
    ids=[
        "option-as-version",
        "shell-as-version",
        "path-as-context",
        "shell-as-int",
        "code-as-name",
        "text-as-parameters",
        "number-as-value",
        "bad-tag-key",
    ],
)
def test_values_started_by_hand_are_checked_as_data_by_the_entry_point(
    emulator: Any, bundles: LocalContext, changed: dict[str, Any], error_line: str
) -> None:
    run_input = transform_input(bundles, deployed_wordcount_definition(emulator), **changed)
    execution = start_transform(emulator, run_input)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "TransformJobFailed"
    job_id = execution["cause"].split()[2]
    *_, lines = job_log(emulator, job_id)
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and error_line in errors[0], lines
    assert not any(line.startswith("Traceback") for line in lines), lines
    assert bundles.versions("counts") == []


@pytest.mark.parametrize(
    "changed",
    [
        *({"without": name} for name in ("remote", "context", "input", "output", "parameters")),
        {"remote": "s3://another-bucket/bundles"},
        {"remote": "--transform=os.system"},
        {"context": ["default"]},
        {"input": {"name": "words", "version": 4}},
    ],
    ids=lambda changed: "-".join(f"{key}-{value}" for key, value in changed.items()),
)
def test_an_input_without_a_field_or_with_a_remote_elsewhere_fails_at_once(
    emulator: Any, bundles: LocalContext, changed: dict[str, Any]
) -> None:
    run_input = transform_input(bundles, deployed_wordcount_definition(emulator))
    run_input.pop(changed.pop("without", ""), None)
    run_input.update(changed)
    execution = start_transform(emulator, run_input)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidTransformInput"
    assert execution["cause"].startswith("The input must hold jobName, jobDefinition, remote, context, input")
