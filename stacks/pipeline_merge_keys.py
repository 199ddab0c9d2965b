"""The merge-keys Lambda of imported pipelines, and the states that read a table's primary key before its merge.

A RedshiftCopyActivity that merges (KEEP_EXISTING, OVERWRITE_EXISTING) into a table whose key the definition does not
give asks the cluster's catalog for the key when the run starts, as Data Pipeline did: `executeStatement` of a fixed
query (datapipe.databases.merge_keys.KEY_COLUMNS_SQL) with the schema and table as bound parameters, the usual wait
for its end, `getStatementResult`, then this function, which writes the merge statement from the columns (each checked
and quoted) or says in one line why it cannot; the workflow fails the run with that line (`Redshift.MergeKeyRefused`).
The SQL text built from catalog data is written by code we ship, never by the state machine. The function is deployed
once by the pipelines stack and found by name.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.databases.merge_keys import KEY_COLUMNS_SQL
from datapipe.importer.databases import MergeFromCatalog
from datapipe.importer.plan import Plan
from datapipe.naming import Naming
from stacks.common import acknowledge_wildcards, depend_on_policy_only, function_by_name, nag_arn, powertools_function

if TYPE_CHECKING:
    from stacks.pipelines import PipelineWorkflow

MERGE_KEYS_FUNCTION = "pipeline-merge-keys"
MERGE_KEY_REFUSED = "Redshift.MergeKeyRefused"
MERGE_KEYS_PATH = "$.mergeKeys"
# A catalog query ends within seconds: it is checked every 10 s, for at most 30 minutes; each check is 4 states,
# about 11 history events, so about 2,000 events of a Standard workflow's 25,000.
KEY_QUERY_POLL_SECONDS = 10
MAX_KEY_QUERY_SECONDS = 30 * 60
# The modules the function runs (standard library only), shipped in its asset.
MODULES = ("datapipe.databases.merge_keys", "datapipe.databases.sqltext", "datapipe.databases.urls", "datapipe.errors")


def merge_keys_function_name(naming: Naming) -> str:
    return naming.name(MERGE_KEYS_FUNCTION)


def merges_on_catalog_key(plan: Plan) -> bool:
    return any(a.sql is not None and a.sql.redshift is not None and a.sql.redshift.merge_from_catalog is not None
               for a in plan.activities)


class PipelineMergeKeys(Construct):
    """The function every imported pipeline that merges on a table's own key invokes once per such activity and run."""

    def __init__(self, scope: Construct, construct_id: str, *, naming: Naming, powertools_layer_version: int,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.function = powertools_function(
            self, "Function", function_name=merge_keys_function_name(naming), folder="merge_keys",
            description="Writes imported RedshiftCopyActivity merges from the key columns of the table's catalog",
            powertools_layer_version=powertools_layer_version, removal_policy=removal_policy, modules=list(MODULES),
        )
        acknowledge_wildcards(self.function, {"*": "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource"})
        typing.cast(lambda_.CfnFunction, self.function.node.default_child).add_metadata("checkov", {"skip": [{
            "id": "CKV_AWS_116",
            "comment": "the workflows call the function synchronously (a Lambda task); a dead-letter queue serves "
                       "asynchronous calls only",
        }]})
        depend_on_policy_only(self.function, self.function.role)


def add_merge_keys_function(scope: Construct, plans: Sequence[Plan], *, naming: Naming, powertools_layer_version: int,
                            removal_policy: cdk.RemovalPolicy) -> PipelineMergeKeys | None:
    """The pipelines stack's one function, when a deployable plan needs it."""
    if not any(plan.deployable and merges_on_catalog_key(plan) for plan in plans):
        return None
    return PipelineMergeKeys(scope, "MergeKeys", naming=naming, powertools_layer_version=powertools_layer_version,
                             removal_policy=removal_policy)


def merge_keys_wildcards(scope: Construct, naming: Naming) -> dict[str, str]:
    """The wildcard the Lambda integration grants a state machine that invokes the function, with its reason."""
    arn = nag_arn(scope, "lambda", f"function:{merge_keys_function_name(naming)}")
    return {f"{arn}:*": "Step Functions' Lambda integration may invoke the merge-keys function's versions and "
                        "aliases; it is one named function"}


def key_query_checks(timeout_seconds: int | None) -> int:
    """How often the key query is checked: the attempt's timeout (at most 30 minutes) over the interval."""
    seconds = min(timeout_seconds or MAX_KEY_QUERY_SECONDS, MAX_KEY_QUERY_SECONDS)
    return max(1, -(-seconds // KEY_QUERY_POLL_SECONDS))


def key_query_states(workflow: PipelineWorkflow, activity_id: str, merge: MergeFromCatalog, *, target: dict[str, str],
                     where: str, sign_in: list[Any], state_key: str, timeout_seconds: int | None,
                     statement_loop: Callable[..., sfn.IChainable], then: sfn.IChainable) -> sfn.IChainable:
    """Ask the catalog for the table's key, read the answer, have the function write the merge statement into
    `$.mergeKeys.<state_key>.answer.statement`, then go on with `then` (the copy's statements); a refusal fails."""
    name = workflow._name
    path = f"{MERGE_KEYS_PATH}.{state_key}"
    submit = tasks.CallAwsService(
        workflow, f"KeyQuery{state_key}", state_name=name(f"Submit_Key_Query_{activity_id}"),
        service="redshiftdata", action="executeStatement", iam_action="redshift-data:ExecuteStatement",
        iam_resources=[where], additional_iam_statements=sign_in,
        parameters={**target, "Sql": KEY_COLUMNS_SQL,
                    "Parameters": [{"Name": "schema_name", "Value": merge.schema_name},
                                   {"Name": "table_name", "Value": merge.table_name}]},
        result_selector={"Id.$": "$.Id", "checks": 0}, result_path=f"{path}.query",
    )
    result = tasks.CallAwsService(
        workflow, f"KeyResult{state_key}", state_name=name(f"Read_Key_{activity_id}"),
        service="redshiftdata", action="getStatementResult", iam_action="redshift-data:GetStatementResult",
        iam_resources=["*"], parameters={"Id": sfn.JsonPath.string_at(f"{path}.query.Id")},
        result_path=f"{path}.result",
    )
    function = function_by_name(workflow, f"MergeKeysFunction{state_key}", merge_keys_function_name(workflow._naming))
    write = tasks.LambdaInvoke(
        workflow, f"KeyMerge{state_key}", state_name=name(f"Write_Merge_{activity_id}"), lambda_function=function,
        payload=sfn.TaskInput.from_object({
            "mode": merge.mode, "table": merge.table, "source": merge.source, "where": activity_id,
            "result": sfn.JsonPath.object_at(f"{path}.result"),
        }),
        payload_response_only=True, result_path=f"{path}.answer", retry_on_service_exceptions=True,
    )
    refused = sfn.Fail(workflow, f"KeyRefused{state_key}", state_name=name(f"Merge_Key_Refused_{activity_id}"),
                       error=MERGE_KEY_REFUSED, cause_path=f"{path}.answer.refused")
    decided = sfn.Choice(workflow, f"KeyDecided{state_key}", state_name=name(f"Merge_Key_Read_{activity_id}"))
    decided.when(sfn.Condition.is_present(f"{path}.answer.refused"), refused)
    decided.otherwise(then)
    checks = key_query_checks(timeout_seconds)  # all at the one interval: a catalog query ends within seconds
    return statement_loop(submit, f"{path}.query", f"Key_Query_{activity_id}", f"Key{state_key}",
                          sfn.Chain.start(result).next(write).next(decided),
                          what=f"the query of {merge.table}'s primary key for {activity_id}",
                          poll_seconds=KEY_QUERY_POLL_SECONDS, checks=checks, fast_checks=checks)
