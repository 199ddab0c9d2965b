"""What the clusters of imported pipelines may do in DynamoDB: read the tables that HiveCopyActivity steps read and
write those they write (EMR's DynamoDB connector runs on the cluster, with the instance role), and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from datapipe.importer.plan import Plan

# The calls EMR's DynamoDB connector makes: it describes a table to size its splits and the throughput it may use,
# scans (or queries, for a filter on the key) to read, and writes in batches.
READ_ACTIONS = ["dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:Query"]
WRITE_ACTIONS = ["dynamodb:DescribeTable", "dynamodb:BatchWriteItem"]


def emr_dynamodb_statements(scope: Construct, plans: Sequence[Plan]) -> list[iam.PolicyStatement]:
    """Statements for the EMR instance role, each naming its tables by ARN (in the stack's account and region)."""
    steps = [step for plan in plans for activity in plan.activities for step in activity.steps]
    read = sorted({table for step in steps for table in step.tables_read})
    written = sorted({table for step in steps for table in step.tables_written})
    stack = cdk.Stack.of(scope)

    def arns(tables: list[str]) -> list[str]:
        return [stack.format_arn(service="dynamodb", resource="table", resource_name=table) for table in tables]

    statements = []
    if read:
        statements.append(iam.PolicyStatement(actions=READ_ACTIONS, resources=arns(read)))
    if written:
        statements.append(iam.PolicyStatement(actions=WRITE_ACTIONS, resources=arns(written)))
    return statements
