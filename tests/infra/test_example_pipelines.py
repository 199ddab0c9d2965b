"""The example pipelines of pipelines/ bring the run-values Lambda into the app's own synthesis.

pipelines/daily-report.json shifts the scheduled start by a day, which Step Functions cannot do: the app's Pipelines
stack therefore deploys the run-values function, and the session's one synthesis (which cdk-nag checks, and
cfn-lint and checkov scan in test_security_checks) holds it and the state that calls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_cdk.assertions import Template

from tests.infra.test_pipelines import NAMING, constant, definition

FUNCTION = NAMING.name("pipeline-run-values")


def test_the_apps_pipelines_stack_deploys_the_run_values_function(template_of: Callable[[str], Template]) -> None:
    functions = template_of("Pipelines").find_resources("AWS::Lambda::Function",
                                                        {"Properties": {"FunctionName": FUNCTION}})
    assert len(functions) == 1, "the app deploys no run-values function"


def test_the_daily_report_evaluates_yesterday_once_per_run_and_gives_it_to_the_command_as_data(
    template_of: Callable[[str], Template]
) -> None:
    asl = definition(template_of("Pipeline-daily-report"), "pipeline-daily-report")
    states = asl["States"]
    evaluate = states["Evaluate_Run_Time_Expressions"]
    assert evaluate["Resource"] == f"arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION}"
    assert evaluate["Next"] == "ReportOnYesterday"
    # minusDays(@scheduledStartTime,1) formatted twice, as the definition writes it: the run's time and nothing else
    # comes from the execution.
    yesterday = {"function": "minusDays", "arguments": [{"time": "scheduledStartTime"}, 1]}
    assert json.loads(constant(asl, evaluate["Parameters"]["expressions.$"])) == {
        "value1": {"function": "format", "arguments": [yesterday, "YYYY-MM-dd"]},
        "value2": {"function": "format", "arguments": [yesterday, "EEEE"]},
    }
    assert evaluate["Parameters"]["time.$"] == "$.run.time"
    task = states["ReportOnYesterday"]["Parameters"]
    assert task["environment"] == {"RUNTIME_VALUE1.$": "$.runtime.value1", "RUNTIME_VALUE2.$": "$.runtime.value2"}
    assert constant(asl, task["command.$"]) == 'echo "report on ${RUNTIME_VALUE1}, a ${RUNTIME_VALUE2}"'
