"""Every resource type the deployer creates, one module per service; `HANDLERS` maps a type to its creator."""

from __future__ import annotations

from datapipe.local.deploy.model import SKIPPED, Created, Handler, ResourceRequest
from datapipe.local.deploy.resources import (
    awslambda,
    batch,
    cloudwatch,
    dynamodb,
    ec2,
    ecr,
    eventbridge,
    iam,
    kms,
    s3,
    scheduler,
    sns,
    sqs,
    ssm,
    stepfunctions,
)


def _cdk_metadata(r: ResourceRequest) -> Created:
    return Created(r.generated_name(), status=SKIPPED, note="CDK version-reporting metadata, no AWS resource")


HANDLERS: dict[str, Handler] = {
    **s3.HANDLERS,
    **iam.HANDLERS,
    **awslambda.HANDLERS,
    **cloudwatch.HANDLERS,
    **stepfunctions.HANDLERS,
    **eventbridge.HANDLERS,
    **sns.HANDLERS,
    **sqs.HANDLERS,
    **scheduler.HANDLERS,
    **batch.HANDLERS,
    **ecr.HANDLERS,
    **ec2.HANDLERS,
    **ssm.HANDLERS,
    **kms.HANDLERS,
    **dynamodb.HANDLERS,
    "AWS::CDK::Metadata": _cdk_metadata,
}


def not_emulated_reason(resource_type: str) -> str:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return "custom resource: its provider Lambda is not run at deploy time"
    return "the emulator has no support for this resource type"
