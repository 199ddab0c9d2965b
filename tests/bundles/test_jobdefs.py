"""Job definitions for `--backend batch`: named after the transform, reused while they fit, revised when not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.bundles.jobdefs import JobSpec, ensure_job_definition, transform_spec
from datapipe.bundles.names import job_definition_name, repository_name
from datapipe.errors import DatapipeError
from datapipe.naming import Naming

NAME = "datapipe-dev-examples-transforms-wordcount-job-definition"
WORDCOUNT = "examples.transforms.wordcount.WordCount"
# The command every job of the example runs (docs/bundles.md): the entry point, the transform and the backend fixed,
# one AWS Batch placeholder per value of a run.
WORDCOUNT_COMMAND = [
    "python", "-m", "datapipe.bundles.entrypoint", "--transform", WORDCOUNT, "--backend", "batch",
    "--remote", "Ref::remote", "--context", "Ref::context", "--input", "Ref::input",
    "--input-version", "Ref::inputVersion", "--output", "Ref::output", "--output-version", "Ref::outputVersion",
    "--output-tags", "Ref::outputTags", "--parameters", "Ref::parameters",
]  # fmt: skip
SPEC = transform_spec(
    WORDCOUNT,
    image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/datapipe-dev-examples-transforms-wordcount:latest",
    vcpus=1,
    memory_mib=2048,
    job_role_arn="arn:aws:iam::123456789012:role/datapipe-dev-transform-job-role",
)


@pytest.fixture()
def batch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("batch", region_name="eu-west-1")


def active_revisions(batch: Any) -> list[dict[str, Any]]:
    found = batch.describe_job_definitions(jobDefinitionName=NAME, status="ACTIVE")["jobDefinitions"]
    return sorted(found, key=lambda d: d["revision"])


def test_names_follow_the_transform_module() -> None:
    naming = Naming(prefix="datapipe", stage="dev")
    assert job_definition_name(naming, "examples.transforms.wordcount.WordCount") == NAME
    assert repository_name(naming, "my_pkg.Sub_Mod.Clean") == "datapipe-dev-my-pkg-sub-mod"
    with pytest.raises(DatapipeError, match="longer than 128 characters"):
        job_definition_name(naming, "a" * 120 + ".Class")


def test_a_missing_job_definition_is_registered_then_reused(batch: Any) -> None:
    arn, registered = ensure_job_definition(batch, NAME, SPEC, transform=WORDCOUNT)
    assert registered
    again, registered_again = ensure_job_definition(batch, NAME, SPEC, transform="x.Y")
    assert (again, registered_again) == (arn, False)

    [definition] = active_revisions(batch)
    container = definition["containerProperties"]
    assert container["command"] == WORDCOUNT_COMMAND
    assert definition["parameters"] == {"outputTags": "{}", "parameters": "{}"}
    assert JobSpec.of(definition) == SPEC
    assert definition["platformCapabilities"] == ["EC2"]
    assert definition["tags"] == {"datapipe:transform": "examples.transforms.wordcount.WordCount"}


@pytest.mark.parametrize(
    "changed",
    [
        {"image": SPEC.image.replace(":latest", ":v2")},
        {"vcpus": 2},
        {"memory_mib": 4096},
        {"job_role_arn": "arn:aws:iam::123456789012:role/other"},
        {"command": (*WORDCOUNT_COMMAND[:4], "examples.transforms.wordcount.Other", *WORDCOUNT_COMMAND[5:])},
    ],
)
def test_a_new_revision_only_when_image_vcpus_memory_role_or_command_differ(
    batch: Any, changed: dict[str, Any]
) -> None:
    first, _ = ensure_job_definition(batch, NAME, SPEC, transform="t.T")
    wanted = JobSpec(**{**SPEC.__dict__, **changed})
    second, registered = ensure_job_definition(batch, NAME, wanted, transform="t.T")
    assert registered and second != first
    revisions = active_revisions(batch)
    assert [d["revision"] for d in revisions] == [1, 2]
    assert JobSpec.of(revisions[-1]) == wanted
    assert ensure_job_definition(batch, NAME, wanted, transform="t.T") == (second, False)


def test_a_new_revision_keeps_what_was_deployed(batch: Any) -> None:
    """A revision made by the CLI keeps the deployed logging, timeout and retry strategy."""
    batch.register_job_definition(
        jobDefinitionName=NAME,
        type="container",
        containerProperties={
            "image": SPEC.image,
            "command": ["python", "-m", "datapipe.bundles.entrypoint", "--help"],
            "jobRoleArn": SPEC.job_role_arn,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/datapipe/dev/transforms"}},
        },
        timeout={"attemptDurationSeconds": 600},
        retryStrategy={"attempts": 3},
    )
    ensure_job_definition(batch, NAME, JobSpec(**{**SPEC.__dict__, "memory_mib": 8192}), transform="t.T")
    newest = active_revisions(batch)[-1]
    assert newest["containerProperties"]["logConfiguration"]["options"] == {"awslogs-group": "/datapipe/dev/transforms"}
    assert newest["timeout"] == {"attemptDurationSeconds": 600}
    assert newest["retryStrategy"]["attempts"] == 3
    assert {r["type"]: r["value"] for r in newest["containerProperties"]["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "8192",
    }


@pytest.mark.parametrize(
    "command",
    [["python", "-m", "datapipe.bundles.entrypoint", "--help"], ["sh", "-c", "Ref::script"], []],
    ids=["the-old-help", "a-shell", "none"],
)
def test_a_revision_that_runs_another_command_is_never_reused(batch: Any, command: list[str]) -> None:
    """Issue 11: a run uses only a job definition whose command is the transform's own; any other gets a revision."""
    properties: dict[str, Any] = {
        "image": SPEC.image,
        "jobRoleArn": SPEC.job_role_arn,
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
    }
    old = batch.register_job_definition(
        jobDefinitionName=NAME,
        type="container",
        containerProperties={**properties, **({"command": command} if command else {})},
        parameters={"script": "echo pwned", "parameters": '{"min_length": "9"}'},
    )["jobDefinitionArn"]
    arn, registered = ensure_job_definition(batch, NAME, SPEC, transform=WORDCOUNT)
    assert registered and arn != old
    newest = active_revisions(batch)[-1]
    assert newest["containerProperties"]["command"] == WORDCOUNT_COMMAND
    # The old defaults carry over (they fill no placeholder of the command), ours replace theirs.
    assert newest["parameters"] == {"script": "echo pwned", "outputTags": "{}", "parameters": "{}"}
