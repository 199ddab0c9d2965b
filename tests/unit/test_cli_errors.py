"""Every command fails in one line: AWS set-up errors (issue 12 §6), hostile input (issue 11 §5), a misspelled
workflow (issue 12 §7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from datapipe.bundles.store import LocalContext
from datapipe.cli import cli

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEEP_JSON = "[" * 100_000 + "]" * 100_000
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_PROFILE", "AWS_ENDPOINT_URL",
)  # fmt: skip


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line(result: Result, *fragments: str, exit_code: int = 2) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture()
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No emulator, no AWS settings: an empty HOME, no AWS variables, no instance metadata to ask."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A fresh process: boto3's default session keeps the credentials it found for an earlier test.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("DATAPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    context = LocalContext(tmp_path / "data", "default")
    context.set_remote("s3://bundle-remote/team")
    (tmp_path / "words.txt").write_text("the cat sat\n")
    context.commit("words", [tmp_path / "words.txt"])
    return tmp_path


COMMANDS = [
    ["start", "emr-workflow"],
    ["graph", "emr-workflow"],
    ["schedule", "ls"],
    ["bundle", "ls", "--remote"],
    ["bundle", "pull"],
    ["bundle", "push", "words"],
    ["remote", "default", "s3://bundle-remote/team"],
    ["run", "words", "counts", "examples.transforms.wordcount.WordCount", "--backend", "batch",
     "--pipe-root", str(PROJECT_DIR)],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_region_and_no_credentials_say_what_to_do(bare_machine: Path, command: list[str]) -> None:
    result = invoke(*command)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
    assert ("no AWS region" in result.output) or ("no AWS credentials" in result.output), result.output
    assert "`datapipe local up`" in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_region_but_no_credentials_says_what_to_do(
    bare_machine: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert_one_line(
        invoke(*command),
        "no AWS credentials: configure them (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY), or start the emulator in the project with `datapipe local up`",
    )


def test_the_task_runner_without_credentials_is_one_line(bare_machine: Path) -> None:
    result = invoke("taskrunner", "--workerGroup", "wg-1")
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "credentials" in result.output


# ---------------------------------------------------------------------------------------------------------------------
# Hostile input


def test_input_nested_100000_deep_is_one_line(clean_cwd: Path) -> None:
    assert_one_line(invoke("start", "emr-workflow", "--input", DEEP_JSON), "--input nests arrays or objects too deeply")


def test_a_definition_file_nested_100000_deep_is_one_line(clean_cwd: Path) -> None:
    (clean_cwd / "deep.json").write_text(DEEP_JSON)
    assert_one_line(invoke("graph", "x", "--file", "deep.json"), "--file deep.json nests arrays or objects too deeply")
    (clean_cwd / "binary.json").write_bytes(b"\xff\xfe{")
    assert_one_line(invoke("graph", "x", "--file", "binary.json"), "--file binary.json is not JSON: not UTF-8")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DEEP_JSON, "--config: credentials.json nests arrays or objects too deeply"),
        (
            json.dumps({"access-id": "a", "private-key": "b", "endpoint": "not a url"}),
            "--config: 'endpoint' in credentials.json must be an http:// or https:// URL such as "
            "http://127.0.0.1:4566, got 'not a url'",
        ),
        (
            json.dumps({"access-id": "a", "private-key": "b", "region": "../../x"}),
            "--config: 'region' in credentials.json must be a region name such as eu-west-1, got '../../x'",
        ),
    ],
    ids=["deep", "endpoint", "region"],
)
def test_a_hostile_task_runner_config_is_one_line_naming_the_key(clean_cwd: Path, config: str, message: str) -> None:
    (clean_cwd / "credentials.json").write_text(config)
    assert_one_line(invoke("taskrunner", "--workerGroup", "wg-1", "--config", "credentials.json"), message)


# ---------------------------------------------------------------------------------------------------------------------
# A workflow that is not deployed


@pytest.fixture()
def deployed_workflows(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
        for name in ("datapipe-dev-emr-workflow", "datapipe-dev-transform", "datapipe-prod-emr-workflows"):
            sfn.create_state_machine(name=name, definition=definition, roleArn="arn:aws:iam::123456789012:role/r")
        yield


def test_a_misspelled_workflow_gets_the_closest_deployed_name(deployed_workflows: None) -> None:
    assert_one_line(
        invoke("start", "emr-workflo"),
        "workflow 'emr-workflo': no state machine named datapipe-dev-emr-workflo is deployed; "
        "did you mean 'emr-workflow'? deployed: emr-workflow, transform",
        exit_code=1,
    )
    assert_one_line(invoke("graph", "transfrom"), "did you mean 'transform'?", exit_code=1)
    far = invoke("start", "nightly")
    assert "did you mean" not in far.output and "deployed: emr-workflow, transform" in far.output


def test_a_stage_with_nothing_deployed_says_so(deployed_workflows: None) -> None:
    assert_one_line(
        invoke("start", "emr-workflow", "--stage", "test"),
        "workflow 'emr-workflow': no state machine named datapipe-test-emr-workflow is deployed; deploy it first",
        exit_code=1,
    )


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--region", "../../x"], "region_name '../../x' doesn't match a supported format"),
        (["--endpoint", "not a url"], "Invalid endpoint: not a url"),
    ],
)
def test_the_task_runner_with_a_bad_region_or_endpoint_option_is_one_line(
    clean_cwd: Path, option: list[str], fragment: str
) -> None:
    assert_one_line(invoke("taskrunner", "--workerGroup", "wg-1", *option), fragment)
