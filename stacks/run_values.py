"""The run-values Lambda of imported pipelines: their expressions on the run's own times, evaluated as a run starts.

Step Functions has no date arithmetic and no Joda-Time patterns, so what the run's split time cannot give
(`minusDays(@scheduledStartTime,1)`, `format(@scheduledStartTime,'EEE hh a')`, `@scheduledEndTime`, ...) is
evaluated by one function (lambdas/run_values, with `datapipe.datefunctions` in its asset), deployed once by the
pipelines stack and found by name. Each pipeline that needs it calls it once, right after the run's time is known;
the expressions are the state's fixed payload, written by the importer from the definition (they travel through the
workflow's constants, like every other literal): an execution gives nothing but its times.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.importer.expressions import RUN_PATH, RUN_VALUES_PATH
from datapipe.naming import Naming
from stacks.common import acknowledge_wildcards, depend_on_policy_only, function_by_name, nag_arn, powertools_function

RUN_VALUES_FUNCTION = "pipeline-run-values"


def run_values_function_name(naming: Naming) -> str:
    return naming.name(RUN_VALUES_FUNCTION)


class PipelineRunValues(Construct):
    """The function every imported pipeline with expressions on the run's times invokes once per run."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        powertools_layer_version: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = powertools_function(
            self,
            "Function",
            function_name=run_values_function_name(naming),
            folder="run_values",
            description="Evaluates imported pipelines' expressions on the run's times when a run starts",
            powertools_layer_version=powertools_layer_version,
            removal_policy=removal_policy,
            modules=["datapipe.datefunctions", "datapipe.databases.literal_values"],
        )
        acknowledge_wildcards(self.function, {"*": "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource"})
        # checkov reads its suppressions from the resource's metadata: the reason sits next to the function.
        typing.cast(lambda_.CfnFunction, self.function.node.default_child).add_metadata("checkov", {"skip": [{
            "id": "CKV_AWS_116",
            "comment": "the workflows call the function synchronously (a Lambda task that retries); a dead-letter "
                       "queue serves asynchronous calls only",
        }]})
        depend_on_policy_only(self.function, self.function.role)


def run_values_state(
    scope: Construct, *, naming: Naming, state_name: str, expressions: dict[str, Any], constant: Any,
    checked: Sequence[str] = (),
) -> tasks.LambdaInvoke:
    """The state that puts each expression's value at `$.runtime.<name>`.

    `constant(text)` gives the JSONPath of a literal in the workflow's constants: the expressions' JSON text goes
    there, so that nothing in it (a `${` in a pattern's literal text) reads as template syntax. The `checked` values
    are written into SQL: the function checks that each holds only what its pattern writes.
    """
    function = function_by_name(scope, "RunValuesFunction", run_values_function_name(naming))
    text = json.dumps(expressions, separators=(",", ":"), sort_keys=True)
    return tasks.LambdaInvoke(
        scope,
        "RunValues",
        state_name=state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object({
            "time": sfn.JsonPath.string_at(f"{RUN_PATH}.time"),
            "actualStartTime": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            "expressions": sfn.JsonPath.string_at(constant(text)),
            **({"checked": list(checked)} if checked else {}),
        }),
        payload_response_only=True,
        result_path=RUN_VALUES_PATH,
        retry_on_service_exceptions=True,
    )


def run_values_wildcards(scope: Construct, naming: Naming) -> dict[str, str]:
    """The wildcard the Lambda integration grants a state machine that invokes the function, with its reason."""
    arn = nag_arn(scope, "lambda", f"function:{run_values_function_name(naming)}")
    return {f"{arn}:*": "Step Functions' Lambda integration may invoke the run-values function's versions and "
                        "aliases; it is one named function"}
