"""`datapipe runs` on a workflow with thousands of runs reads only the pages it shows (moto, in process)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from datapipe.cli import cli
from datapipe.errors import DatapipeError
from datapipe.operate.runs import parse_since

RUNS = 2_000
PASS_ONLY = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every AWS operation the command calls, counted; within moto's in-process mock."""
    counted: Counter[str] = Counter()

    def counting_client(service: str, target: Any) -> Any:
        made = boto3.client(service, region_name="eu-west-1")  # type: ignore[call-overload]
        made.meta.events.register("before-call.*.*", lambda model, **_: counted.update([model.name]))
        return made

    with mock_aws():
        monkeypatch.setattr("datapipe.operate.cli.client", counting_client)
        yield counted


@pytest.fixture()
def busy_workflow(calls: Counter[str]) -> list[str]:
    """A deployed workflow with RUNS runs, the newest three of them stopped; names oldest first."""
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    arn = sfn.create_state_machine(
        name="datapipe-dev-busy", definition=PASS_ONLY, roleArn="arn:aws:iam::123456789012:role/run"
    )["stateMachineArn"]
    names = [f"run-{number:05d}" for number in range(RUNS)]
    for name in names:
        sfn.start_execution(stateMachineArn=arn, name=name, input="{}")
    for name in names[-3:]:
        sfn.stop_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + f":{name}")
    calls.clear()
    return names


def runs_json(*arguments: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["runs", "busy", "--json", "--region", "eu-west-1", *arguments])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output)["runs"])


def test_the_first_page_answers_at_once_with_failures_read_only_for_the_runs_shown(
    busy_workflow: list[str], calls: Counter[str]
) -> None:
    shown = runs_json("--limit", "5")
    assert [run["name"] for run in shown] == list(reversed(busy_workflow[-5:]))
    assert [run["status"] for run in shown] == ["ABORTED"] * 3 + ["RUNNING"] * 2
    assert calls["ListExecutions"] == 1
    assert calls["GetExecutionHistory"] == 3  # the three stopped runs, for the state they stopped in


def test_a_long_listing_reads_pages_of_a_hundred(busy_workflow: list[str], calls: Counter[str]) -> None:
    shown = runs_json("--limit", "1500", "--status", "RUNNING")
    assert len(shown) == 1500 and all(run["status"] == "RUNNING" for run in shown)
    assert calls["ListExecutions"] == 15
    assert calls["GetExecutionHistory"] == 0


def test_since_stops_reading_at_the_first_older_run(busy_workflow: list[str], calls: Counter[str]) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert runs_json("--since", future, "--limit", "1000") == []
    assert calls["ListExecutions"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2026, 11, 30, 11, 30, tzinfo=UTC)),
        ("2d", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("1w", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ("36h", datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00+01:00", datetime(2026, 11, 1, 7, tzinfo=UTC)),
    ],
)
def test_since_reads_ages_and_times(text: str, expected: datetime) -> None:
    assert parse_since(text, now=datetime(2026, 11, 30, 12, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["", "2 days", "-1d", "1y", "9999999d", "999999w", "2026-13-01"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(DatapipeError, match="--since"):
        parse_since(text, now=datetime(2026, 11, 30, 12, tzinfo=UTC))
