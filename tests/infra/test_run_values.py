"""The run-values Lambda in the templates: fixed expressions from the definition, times only from the execution.

This module synthesizes a definition of its own (as app.py groups pipelines, with cdk-nag) for the corner cases of
its expressions; the three scanners see the function in the app's own synthesis, through pipelines/daily-report.json
(tests/infra/test_security_checks.py, test_example_pipelines.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.test_pipelines import NAMING, all_states, definition, pipeline_app, synthesized
from tests.infra.test_security_checks import PROJECT_DIR

DEFINITION = {"objects": [
    {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "Hourly"}},
    {"id": "Hourly", "name": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2030-01-01T00:00:00"},
    {"id": "Report", "name": "Report", "type": "ShellCommandActivity", "workerGroup": "wg-12345",
     # A '${' in a pattern's literal text must not read as a CloudFormation substitution.
     "command": "echo #{format(minusHours(@scheduledStartTime,1),'\\'${x}\\' YYYY-MM-dd HH')} "
                "#{day(@scheduledEndTime)}"},
]}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Path:
    folder = tmp_path_factory.mktemp("run-values")
    (folder / "definitions").mkdir()
    (folder / "definitions" / "hourly-report.json").write_text(json.dumps(DEFINITION))
    pipeline_app(folder / "definitions", folder / "out", cdk_json_context).synth()  # cdk-nag clean, or this raises
    return folder / "out"


def test_the_state_gets_the_definitions_expressions_and_only_times_from_the_execution(templates: Path) -> None:
    from aws_cdk.assertions import Template

    found = synthesized(templates)
    states = all_states(definition(Template.from_json(found["Pipeline-hourly-report"]), "pipeline-hourly-report")[
        "States"])
    evaluate = states["Evaluate_Run_Time_Expressions"]
    function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{NAMING.name('pipeline-run-values')}"
    assert evaluate["Resource"] == function_arn
    parameters = evaluate["Parameters"]
    assert parameters["time.$"] == "$.run.time" and parameters["actualStartTime.$"] == "$$.Execution.StartTime"
    assert set(parameters) == {"time.$", "actualStartTime.$", "expressions.$"}
    assert parameters["expressions.$"].startswith("$.const.")  # the definition's text, in Set_Constants
    constants = states["Set_Constants"]["Parameters"]
    encoded = constants[parameters["expressions.$"].removeprefix("$.const.") + ".$"]
    import base64

    text = base64.b64decode(encoded.removeprefix("States.Base64Decode('").removesuffix("')")).decode()
    assert json.loads(text) == {
        "value1": {"function": "format", "arguments": [
            {"function": "minusHours", "arguments": [{"time": "scheduledStartTime"}, 1]}, "'${x}' YYYY-MM-dd HH"]},
        "value2": {"function": "day", "arguments": [
            {"function": "plusHours", "arguments": [{"time": "scheduledStartTime"}, 1]}]},
    }
    assert "${x}" not in json.dumps(found)
    assert states["Report"]["Parameters"]["environment"] == {"RUNTIME_VALUE1.$": "$.runtime.value1",
                                                               "RUNTIME_VALUE2.$": "$.runtime.value2"}
    # The machine may invoke that one function (and its versions), nothing else.
    invokes = [s for p in found["Pipeline-hourly-report"]["Resources"].values() if p["Type"] == "AWS::IAM::Policy"
               for s in p["Properties"]["PolicyDocument"]["Statement"] if "lambda:InvokeFunction" in str(s["Action"])]
    assert [s["Resource"] for s in invokes] == [[function_arn, f"{function_arn}:*"]]


def test_the_functions_asset_carries_the_importers_own_date_functions(templates: Path) -> None:
    shared = synthesized(templates)["Pipelines"]
    [function] = [r for r in shared["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
                  and r["Properties"].get("FunctionName") == NAMING.name("pipeline-run-values")]
    assert function["Properties"]["Handler"] == "handler.handler"
    asset = templates / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    source = PROJECT_DIR / "src" / "datapipe"
    assert sorted(str(p.relative_to(asset)) for p in asset.rglob("*.py")) == [
        "__init__.py", "datapipe/__init__.py", "datapipe/databases/__init__.py",
        "datapipe/databases/literal_values.py", "datapipe/datefunctions.py", "handler.py"]
    for name in ("__init__.py", "datefunctions.py", "databases/__init__.py", "databases/literal_values.py"):
        assert (asset / "datapipe" / name).read_bytes() == (source / name).read_bytes()
    # Only the standard library beside Powertools: the asset runs without the datapipe package installed.
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import datapipe.datefunctions as d; "
         "import datapipe.databases.literal_values; "
         "print(d.__file__.startswith(sys.argv[1]), sorted(m for m in sys.modules if m.startswith('datapipe')))",
         str(asset)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == ("True ['datapipe', 'datapipe.databases', 'datapipe.databases.literal_values', "
                                    "'datapipe.datefunctions']")
