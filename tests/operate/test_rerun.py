"""`rerun` against Step Functions as its API reference describes RedriveExecution and DescribeExecution's
`redriveStatus` (stubbed responses: moto 5.2.5 has neither; the emulator's e2e test covers what it does today)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.errors import DatapipeError
from datapipe.operate import runs

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:datapipe-dev-emr-workflow"
RUN = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:nightly-42"
INPUT = '{"CreateCluster": true, "TerminateCluster": true}'


@pytest.fixture()
def sfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("stepfunctions", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def described(status: str, **extra: Any) -> dict[str, Any]:
    return {"executionArn": RUN, "stateMachineArn": MACHINE, "name": "nightly-42", "status": status,
            "startDate": datetime(2026, 11, 30, 2, tzinfo=UTC), "input": INPUT, **extra}


def expect_new_run(stubber: Stubber) -> None:
    stubber.add_response(
        "start_execution",
        {"executionArn": f"{RUN}-rerun-1", "startDate": datetime(2026, 11, 30, tzinfo=UTC)},
        {"stateMachineArn": MACHINE, "name": ANY, "input": INPUT},
    )


def history(*entered: tuple[str, str], last: str = "ExecutionFailed") -> dict[str, Any]:
    """A history read from its end (newest first): the states entered, in the order entered, then `last`."""
    when = datetime(2026, 11, 30, 2, tzinfo=UTC)
    events = [{"id": i, "timestamp": when, "type": kind, "stateEnteredEventDetails": {"name": name}}
              for i, (kind, name) in enumerate(entered, start=2)]
    events.append({"id": len(events) + 2, "timestamp": when, "type": last})
    return {"events": list(reversed(events))}


def expect_history(stubber: Stubber, response: dict[str, Any]) -> None:
    stubber.add_response("get_execution_history", response,
                         {"executionArn": RUN, "reverseOrder": True, "maxResults": 100})


def test_a_redrivable_failed_run_is_redriven_in_place(sfn: tuple[Any, Stubber]) -> None:
    client, stubber = sfn
    stubber.add_response("describe_execution", described("FAILED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    expect_history(stubber, history(("TaskStateEntered", "Run_Extract")))  # it failed in its task
    stubber.add_response("redrive_execution", {"redriveDate": datetime(2026, 11, 30, 3, tzinfo=UTC)},
                         {"executionArn": RUN, "clientToken": ANY})
    outcome = runs.rerun(client, RUN)
    assert (outcome.action, outcome.execution_arn) == ("redriven", RUN)


def test_a_run_step_functions_will_not_redrive_starts_again_with_its_input_and_says_why(
    sfn: tuple[Any, Stubber],
) -> None:
    client, stubber = sfn
    stubber.add_response(
        "describe_execution",
        described(
            "TIMED_OUT", redriveStatus="NOT_REDRIVABLE", redriveStatusReason="Execution redrivable period exceeded"
        ),
        {"executionArn": RUN},
    )
    expect_new_run(stubber)
    outcome = runs.rerun(client, RUN)
    assert outcome.action == "started" and outcome.reason == "Execution redrivable period exceeded"


def test_a_redrive_refused_after_the_describe_starts_again(sfn: tuple[Any, Stubber]) -> None:
    client, stubber = sfn
    stubber.add_response("describe_execution", described("ABORTED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    stubber.add_client_error("redrive_execution", "ExecutionNotRedrivable", "Execution history event limit exceeded")
    expect_new_run(stubber)
    outcome = runs.rerun(client, RUN)
    assert outcome.action == "started" and outcome.reason == "Execution history event limit exceeded"


def test_a_succeeded_run_and_from_start_start_a_new_run(sfn: tuple[Any, Stubber]) -> None:
    client, stubber = sfn
    stubber.add_response(
        "describe_execution",
        described("SUCCEEDED", redriveStatus="NOT_REDRIVABLE", redriveStatusReason="Execution is SUCCEEDED"),
        {"executionArn": RUN},
    )
    expect_new_run(stubber)
    assert runs.rerun(client, RUN).reason == "a SUCCEEDED run cannot be redriven"
    stubber.add_response("describe_execution", described("FAILED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    expect_new_run(stubber)
    assert runs.rerun(client, RUN, from_start=True).reason == "--from-start"


def test_a_running_run_is_not_rerun(sfn: tuple[Any, Stubber]) -> None:
    client, stubber = sfn
    stubber.add_response("describe_execution", described("RUNNING"), {"executionArn": RUN})
    with pytest.raises(DatapipeError, match=r"nightly-42 is RUNNING.*datapipe stop") as raised:
        runs.rerun(client, RUN)
    assert raised.value.exit_code == 1


def test_the_rerun_command_reports_a_redrive(sfn: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch) -> None:
    client, stubber = sfn
    monkeypatch.setattr("datapipe.operate.cli.client", lambda service, target: client)
    stubber.add_response("describe_execution", described("FAILED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    expect_history(stubber, history(("ChoiceStateEntered", "Pick"), ("TaskStateEntered", "Run_Extract")))
    stubber.add_response("redrive_execution", {"redriveDate": datetime(2026, 11, 30, 3, tzinfo=UTC)},
                         {"executionArn": RUN, "clientToken": ANY})
    result = CliRunner().invoke(cli, ["rerun", RUN, "--json", "--region", "eu-west-1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"action": "redriven", "executionArn": RUN, "reason": ""}


def test_a_run_that_ended_in_a_fail_state_is_not_redriven_and_the_command_says_what_to_do(
    sfn: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    # RedriveExecution resumes at the state that failed: here the Fail state at the end of an onFail path, which would
    # fail again at once. No redrive is asked for (the Stubber would refuse an unexpected call).
    client, stubber = sfn
    stubber.add_response("describe_execution", described("FAILED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    expect_history(stubber, history(("TaskStateEntered", "Run_Extract"), ("TaskStateEntered", "Notify_Tell_Extract"),
                                    ("ChoiceStateEntered", "Extract_Failed"),
                                    ("FailStateEntered", "Extract_Failed_In_Its_Task")))
    monkeypatch.setattr("datapipe.operate.cli.client", lambda service, target: client)
    result = CliRunner().invoke(cli, ["rerun", RUN, "--region", "eu-west-1"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "nightly-42 ended in its Fail state Extract_Failed_In_Its_Task" in line
    assert "rerun with --from-start" in line


def test_a_fail_state_entered_earlier_in_a_run_that_went_on_does_not_stop_a_redrive(sfn: tuple[Any, Stubber]) -> None:
    # A lateness watch ends its branch with a Fail that its Parallel catches; the run failed later, in a task.
    client, stubber = sfn
    stubber.add_response("describe_execution", described("FAILED", redriveStatus="REDRIVABLE"), {"executionArn": RUN})
    expect_history(stubber, history(("FailStateEntered", "Load_Finished_Before_Late_Watch_Ends"),
                                    ("PassStateEntered", "Load_Done"), ("TaskStateEntered", "Run_Publish")))
    stubber.add_response("redrive_execution", {"redriveDate": datetime(2026, 11, 30, 3, tzinfo=UTC)},
                         {"executionArn": RUN, "clientToken": ANY})
    assert runs.rerun(client, RUN).action == "redriven"
