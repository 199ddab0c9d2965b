"""`datapipe import`: the report a person reads, the JSON a machine reads, exit codes, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from datapipe.cli import cli

GOOD = [
    {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345"},
    {"id": "Say", "type": "ShellCommandActivity", "command": "echo #{myWord} #{format(@scheduledStartTime,'YYYY')}"},
    {"id": "Copy", "type": "CopyActivity", "dependsOn": {"ref": "Say"}, "input": {"ref": "In"},
     "output": {"ref": "Out"}},
    {"id": "In", "type": "S3DataNode", "directoryPath": "s3://in-bucket/data/"},
    {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://out-bucket/data/"},
]
PARAMETERS = [{"id": "myWord", "type": "String"}]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["import", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_deployable_definition_exits_0_with_a_summary(write_definition: Callable[..., Path]) -> None:
    code, output = invoke(str(write_definition(GOOD, parameters=PARAMETERS)))
    assert code == 0
    assert output.splitlines()[0] == "pipeline.json: pipeline 'pipeline' can be deployed; 5 of 5 objects mapped"


def test_the_report_lists_every_object_order_and_run_time_parameters(write_definition: Callable[..., Path]) -> None:
    code, output = invoke(str(write_definition(GOOD, parameters=PARAMETERS)), "--report")
    assert code == 0
    for object_id in ("Default", "Say", "Copy", "In", "Out"):
        assert object_id in output
    assert "Order: [Say] -> [Copy]" in output
    assert "Parameters given when a run starts (input 'parameters'): myWord" in output


def test_json_has_every_object_with_status_target_and_reason(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    values = tmp_path / "values.json"
    values.write_text('{"values": {"myWord": "hello"}}')
    code, output = invoke(str(write_definition(GOOD, parameters=PARAMETERS)), "--values", str(values), "--json")
    report = json.loads(output)
    assert code == 0 and report["pipeline"] == "pipeline" and report["errors"] == []
    assert report["runtimeParameters"] == []  # the values file gave it
    by_id = {o["id"]: o for o in report["objects"]}
    assert set(by_id["Say"]) == {"id", "type", "status", "target", "reason", "fields"}
    assert by_id["Copy"]["status"] == "mapped" and "worker group 'wg-12345'" in by_id["Copy"]["target"]


def test_errors_and_unsupported_objects_exit_1_with_each_reason(write_definition: Callable[..., Path]) -> None:
    objects = [
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345"},
        {"id": "Say", "type": "ShellCommandActivity", "command": "echo #{myMissing}", "dependsOn": {"ref": "Ghost"}},
        {"id": "Load", "type": "HiveActivity", "hiveScript": "SELECT 1;"},  # on the worker group of Default
    ]
    code, output = invoke(str(write_definition(objects)), "--json")
    report = json.loads(output)
    assert code == 1 and not report["deployable"]
    assert "Say.dependsOn: refers to 'Ghost', which is not defined" in report["errors"]
    by_id = {o["id"]: o for o in report["objects"]}
    assert by_id["Say"]["status"] == "error" and "Ghost" in by_id["Say"]["reason"]
    assert by_id["Load"]["status"] == "unsupported" and by_id["Load"]["reason"]
    code, output = invoke(str(write_definition(objects)))
    assert code == 1 and "  unsupported: Load (HiveActivity): " in output
    assert "  error: Say.dependsOn: refers to 'Ghost', which is not defined" in output


def test_bad_files_give_one_line_and_exit_2(write_definition: Callable[..., Path], tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "absent.json"): "cannot read",
        str(write_definition(text='{"objects": [', name="broken.json")):
            "broken.json: objects[0]: unexpected end of file",
        str(write_definition(text='["not", "a definition"]', name="list.json")): "must be a JSON object",
        str(write_definition(text='{"hello": 1}', name="other.json")): "is this a Data Pipeline definition?",
    }
    for path, message in cases.items():
        result = CliRunner().invoke(cli, ["import", path])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and message in result.output, result.output


def test_asl_is_refused_for_a_definition_that_cannot_be_deployed(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_definition([{"id": "X", "type": "SqlActivity", "script": "select 1", "workerGroup": "w",
                              "database": {"ref": "X"}}])
    result = CliRunner().invoke(cli, ["import", str(path), "--asl", str(tmp_path / "out.json")])
    assert result.exit_code == 1 and "--asl: " in result.output and not (tmp_path / "out.json").exists()


def test_asl_writes_the_state_machine_of_a_deployable_definition(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "pipeline.asl.json"
    code, output = invoke(str(write_definition(GOOD, parameters=PARAMETERS)), "--asl", str(out), "--region",
                          "eu-west-1", "--account", "111122223333")
    assert code == 0 and f"Wrote the state machine definition to {out}" in output
    asl = json.loads(out.read_text())
    activity = "arn:aws:states:eu-west-1:111122223333:activity:datapipe-dev-activity-wg-12345"
    assert asl["States"]["Say"]["Resource"] == activity
    assert asl["States"]["Say"]["Next"] == "Copy" and asl["States"]["Copy"]["Parameters"]["command"].startswith(
        "aws s3 cp --recursive s3://in-bucket/data/ s3://out-bucket/data/")
    assert asl["States"]["Check_Parameters"]["Choices"][0]["Next"] == "Missing_Parameters"  # myWord has no value
    assert asl["States"]["Check_Parameters"]["Default"] == "Check_Parameter_Values"
    values = asl["States"]["Check_Parameter_Values"]["Choices"][0]
    assert values["Or"] == [{"Not": {"Variable": "$.parameters.myWord", "IsString": True}}]  # text only
    assert asl["States"][values["Next"]]["Error"] == "InvalidParameters"
