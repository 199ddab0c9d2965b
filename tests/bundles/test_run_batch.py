"""`datapipe run --backend batch` before anything is deployed, and its bad input (the full run is in tests/e2e)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from datapipe.bundles.store import LocalContext
from tests.bundles.conftest import PROJECT_DIR, REMOTE_URL, assert_one_line_error, invoke

WORDCOUNT = "examples.transforms.wordcount.WordCount"
JOB_DEFINITION = "datapipe-dev-examples-transforms-wordcount-job-definition"


def batch_run(*args: str) -> Any:
    return invoke("run", "--pipe-root", str(PROJECT_DIR), "--backend", "batch", *args)


def test_without_the_batch_stack_the_run_says_so_after_preparing_the_job_definition(
    s3: Any, data_dir: Path, words: Path
) -> None:
    invoke("remote", "default", REMOTE_URL)
    invoke("bundle", "commit", "words", str(words))
    result = batch_run("words", "counts", WORDCOUNT, "--vcpus", "2", "--memory", "4096")
    assert_one_line_error(
        result, "state machine datapipe-dev-transform is not deployed; deploy the batch stack first", exit_code=1
    )
    # The input went to the remote and a job definition fitting the run was registered; no output exists.
    [definition] = boto3.client("batch", region_name="eu-west-1").describe_job_definitions(
        jobDefinitionName=JOB_DEFINITION
    )["jobDefinitions"]
    container = definition["containerProperties"]
    assert container["image"].endswith(
        ".dkr.ecr.eu-west-1.amazonaws.com/datapipe-dev-examples-transforms-wordcount:latest"
    )
    assert container["jobRoleArn"].endswith(":role/datapipe-dev-transform-job-role")
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {"VCPU": "2", "MEMORY": "4096"}
    assert invoke("bundle", "ls", "--remote", "--json").output.count('"name": "words"') == 1
    assert LocalContext(data_dir, "default").versions("counts") == []


def test_bad_deployment_names_are_one_line(s3: Any, data_dir: Path, words: Path) -> None:
    invoke("remote", "default", REMOTE_URL)
    invoke("bundle", "commit", "words", str(words))
    assert_one_line_error(batch_run("words", "counts", WORDCOUNT, "--stage", "Prod!"), "--stage 'Prod!' must be")
    usage = batch_run("words", "counts", WORDCOUNT, "--vcpus", "0")  # click's own usage error
    assert usage.exit_code == 2 and "Error: Invalid value for '--vcpus'" in usage.output
