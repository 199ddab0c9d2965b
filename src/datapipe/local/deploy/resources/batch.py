"""AWS Batch compute environments, job queues and job definitions."""

from __future__ import annotations

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import camel, pick


def _compute_environment(r: ResourceRequest) -> Created:
    create = camel(pick(r.properties, "Type State ComputeResources ServiceRole Tags"))
    create["computeEnvironmentName"] = r.name("ComputeEnvironmentName", 128)
    create["type"] = create["type"].upper()
    # Without a ServiceRole the emulator's Batch uses the service-linked role, as AWS does (datapipe.local.batch_api).
    arn = r.client("batch").create_compute_environment(**create)["computeEnvironmentArn"]
    return Created(arn, {"ComputeEnvironmentArn": arn})


def _job_queue(r: ResourceRequest) -> Created:
    create = camel(pick(r.properties, "State Priority ComputeEnvironmentOrder SchedulingPolicyArn Tags"))
    create["jobQueueName"] = r.name("JobQueueName", 128)
    arn = r.client("batch").create_job_queue(**create)["jobQueueArn"]
    return Created(arn, {"JobQueueArn": arn, "JobQueueName": create["jobQueueName"]})


def _job_definition(r: ResourceRequest) -> Created:
    create = camel(
        pick(
            r.properties,
            "Type ContainerProperties Parameters RetryStrategy Timeout PlatformCapabilities PropagateTags Tags "
            "SchedulingPriority",
        )
    )
    create["jobDefinitionName"] = r.name("JobDefinitionName", 128)
    arn = r.client("batch").register_job_definition(**create)["jobDefinitionArn"]
    return Created(arn, {"JobDefinitionArn": arn})


HANDLERS: dict[str, Handler] = {
    "AWS::Batch::ComputeEnvironment": _compute_environment,
    "AWS::Batch::JobQueue": _job_queue,
    "AWS::Batch::JobDefinition": _job_definition,
}
