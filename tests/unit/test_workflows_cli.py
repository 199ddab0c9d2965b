"""`datapipe start` and `datapipe graph` through the CLI, against moto's Step Functions (which runs the states)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from datapipe.cli import cli
from datapipe.workflows import to_mermaid

# A small workflow in the shape of the EMR one: validation, a choice, a wait, and a failure path.
DEFINITION = {
    "StartAt": "Validate_Input",
    "States": {
        "Validate_Input": {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.CreateCluster", "IsBoolean": True}, "Next": "Reject_CreateCluster"},
                {"Variable": "$.CreateCluster", "BooleanEquals": True, "Next": "Create_A_Cluster"},
            ],
            "Default": "Wrapping_Up",
        },
        "Reject_CreateCluster": {
            "Type": "Fail",
            "Error": "datapipe.InvalidInput",
            "Cause": "input field 'CreateCluster' must be true or false",
        },
        "Create_A_Cluster": {"Type": "Pass", "Result": "j-TEST", "ResultPath": "$.ClusterId", "Next": "Steps"},
        "Steps": {
            "Type": "Parallel",
            "ResultPath": None,
            "Next": "Wrapping_Up",
            "Branches": [
                {"StartAt": "Step_One", "States": {"Step_One": {"Type": "Pass", "End": True}}},
                {"StartAt": "Wait_A_Moment", "States": {"Wait_A_Moment": {"Type": "Wait", "Seconds": 0, "End": True}}},
            ],
        },
        "Wrapping_Up": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture()
def deployed(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto with Step Functions that executes definitions, holding `datapipe-dev-emr-workflow`."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        arn = sfn.create_state_machine(
            name="datapipe-dev-emr-workflow",
            definition=json.dumps(DEFINITION),
            roleArn="arn:aws:iam::123456789012:role/datapipe-dev-emr-workflow",
        )["stateMachineArn"]
        yield arn


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_start_returns_the_execution_at_once(deployed: str) -> None:
    result = run("start", "emr-workflow", "--input", '{"CreateCluster": true}', "--json", "--name", "first")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["executionArn"].endswith(":execution:datapipe-dev-emr-workflow:first")
    assert answer["status"] == "RUNNING"


def test_follow_shows_each_state_entered_and_left_then_succeeded(deployed: str) -> None:
    result = run("start", "emr-workflow", "--input", '{"CreateCluster": true}', "--follow", "--poll", "0.05")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for state in ("Validate_Input", "Create_A_Cluster", "Steps", "Step_One", "Wait_A_Moment", "Wrapping_Up"):
        assert any(f"→ {state}" in line for line in lines), state
        assert any(f"✓ {state}" in line for line in lines), state
    entered = [line.split("→ ")[1] for line in lines if "→ " in line]
    assert entered.index("Validate_Input") < entered.index("Create_A_Cluster") < entered.index("Wrapping_Up")
    assert "SUCCEEDED" in result.output
    assert '"ClusterId": "j-TEST"' in result.output


def test_piped_output_never_splits_an_arn(deployed: str) -> None:
    """Issue 12 §8: at 80 columns (what rich assumes when piped) ARNs were split across lines."""
    name = "a-long-execution-name-" + "x" * 50
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:{name}"
    started = run("start", "emr-workflow", "--input", '{"CreateCluster": true}', "--name", name)
    assert started.output.splitlines()[0].startswith(f"Started {arn} on ")
    followed = run("start", "emr-workflow", "--input", '{"CreateCluster": true}', "--name", name + "2", "--follow",
                   "--poll", "0.05")  # fmt: skip
    assert any(line.startswith("SUCCEEDED") and line.endswith(f": {arn}2") for line in followed.output.splitlines())


def test_follow_json_reports_a_failed_execution_and_exits_non_zero(deployed: str) -> None:
    result = run("start", "emr-workflow", "--input", '{"CreateCluster": "yes"}', "--follow", "--json", "--poll", "0.05")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["status"] == "FAILED"
    assert report["error"] == "datapipe.InvalidInput"
    assert "'CreateCluster'" in report["cause"]
    assert [e["name"] for e in report["events"] if e["kind"] == "entered"] == ["Validate_Input", "Reject_CreateCluster"]
    assert report["statesEntered"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{not json"], "--input is not JSON"),
        (["--input", "[1, 2]"], "--input must be a JSON object"),
        (["--name", "run 1"], "--name must be 1 to 80 letters"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(deployed: str, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["start", "emr-workflow", *args])
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"Error: {message}")
    assert len(result.output.strip().splitlines()) == 1


def test_a_workflow_that_is_not_deployed(deployed: str) -> None:
    result = CliRunner().invoke(cli, ["start", "nightly-batch", "--input", "{}"])
    assert result.exit_code == 1
    assert "no state machine named datapipe-dev-nightly-batch" in result.output

    bad_name = CliRunner().invoke(cli, ["start", "Not A Name"])
    assert bad_name.exit_code == 2
    assert "WORKFLOW must be a workflow name" in bad_name.output


def test_the_stage_option_selects_another_deployment(deployed: str) -> None:
    result = CliRunner().invoke(cli, ["start", "emr-workflow", "--stage", "prod"])
    assert result.exit_code == 1
    assert "datapipe-prod-emr-workflow" in result.output


def test_graph_draws_the_deployed_definition(deployed: str) -> None:
    result = run("graph", "emr-workflow")
    assert result.exit_code == 0, result.output
    chart = result.output
    assert chart.startswith("flowchart TD\n")
    assert "start(( )) --> Validate_Input" in chart
    assert 'Validate_Input{"Validate_Input"}' in chart
    assert 'Validate_Input -- "not IsBoolean(CreateCluster)" --> Reject_CreateCluster' in chart
    assert 'Validate_Input -- "CreateCluster == true" --> Create_A_Cluster' in chart
    assert 'Validate_Input -- "otherwise" --> Wrapping_Up' in chart
    assert 'subgraph Steps["Steps"]' in chart
    assert "Steps --> Wrapping_Up" in chart
    assert 'Reject_CreateCluster(["Reject_CreateCluster"])' in chart


def test_graph_of_a_file_with_awkward_names_and_catches(tmp_path: Path) -> None:
    definition = {
        "StartAt": "Step_Two (async)",
        "States": {
            "Step_Two (async)": {
                "Type": "Task",
                "Resource": "arn:aws:states:::elasticmapreduce:addStep",
                "Next": "Done",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Cleanup \"now\""}],
            },
            "Cleanup \"now\"": {"Type": "Fail"},
            "Done": {"Type": "Succeed"},
        },
    }
    path = tmp_path / "machine.asl.json"
    path.write_text(json.dumps(definition))
    result = run("graph", "anything", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert 'Step_Two__async["Step_Two (async)"]' in result.output
    assert 'Step_Two__async -. "catch States.ALL" .-> Cleanup__now' in result.output
    assert 'Cleanup__now(["Cleanup #quot;now#quot;"])' in result.output


def test_graph_of_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    result = CliRunner().invoke(cli, ["graph", "emr-workflow", "--file", str(path)])
    assert result.exit_code == 2
    assert "is not JSON" in result.output
    path.write_text('{"StartAt": "A"}')
    result = CliRunner().invoke(cli, ["graph", "emr-workflow", "--file", str(path)])
    assert result.exit_code == 2
    assert "no 'States' object" in result.output


def test_mermaid_ids_stay_unique_when_names_collide() -> None:
    chart = to_mermaid(
        {"StartAt": "a b", "States": {"a b": {"Type": "Pass", "Next": "a-b"}, "a-b": {"Type": "Pass", "End": True}}}
    )
    assert 'a_b("a b")' in chart and 'a_b_2("a-b")' in chart and "a_b --> a_b_2" in chart


class PagedHistory:
    """A Step Functions client whose history honours reverseOrder and pages by maxResults, as AWS does."""

    def __init__(self, count: int) -> None:
        self.events = [{"id": n, "type": "PassStateEntered"} for n in range(1, count + 1)]
        self.pages_read = 0

    def get_execution_history(
        self, *, executionArn: str, maxResults: int, reverseOrder: bool, nextToken: str = "0"
    ) -> dict[str, Any]:
        self.pages_read += 1
        ordered = list(reversed(self.events)) if reverseOrder else self.events
        start = int(nextToken)
        page: dict[str, Any] = {"events": ordered[start : start + maxResults]}
        if start + maxResults < len(ordered):
            page["nextToken"] = str(start + maxResults)
        return page


def test_following_reads_only_the_newest_pages() -> None:
    from datapipe.workflows import history_events

    client = PagedHistory(2500)
    assert [e["id"] for e in history_events(client, "arn", 2400)] == list(range(2401, 2501))
    assert client.pages_read == 1
    client.pages_read = 0
    assert [e["id"] for e in history_events(client, "arn")] == list(range(1, 2501))
    assert client.pages_read == 3


def test_ctrl_c_while_following_leaves_the_execution_running(deployed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import datapipe.workflows

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(datapipe.workflows, "follow_execution", interrupted)
    result = CliRunner().invoke(cli, ["start", "emr-workflow", "--input", '{"CreateCluster": true}', "--follow"])
    assert result.exit_code == 130
    assert "stopped following arn:aws:states:" in result.output
    assert "the execution goes on" in result.output
