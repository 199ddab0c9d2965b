"""The Amazon States Language definition of one imported pipeline, synthesized by the same construct that deploys it."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from datapipe.importer.plan import Plan
from datapipe.project import find_project_dir, jsii_environment


def flatten_definition(value: Any) -> str:
    """A DefinitionString (plain or Fn::Join) as text: the partition is `aws`, other references keep their name."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten_definition(part) for part in parts)
    if isinstance(value, dict) and value.get("Ref") == "AWS::Partition":
        return "aws"
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if isinstance(value, dict) and len(value) == 1:  # another intrinsic, e.g. a value of another stack
        return f"<{next(iter(value))}>"
    raise ValueError(f"unexpected template value {value!r}")


def pipeline_definition(plan: Plan, *, account: str, region: str) -> dict[str, Any]:
    project_dir = find_project_dir()
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    for key, value in jsii_environment().items():
        os.environ.setdefault(key, value)
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.bundles.names import job_queue_name
    from datapipe.naming import Naming
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow, secret_job_definition_name
    from stacks.synthesis import BUILTIN_CLOUDFORMATION_VALIDATION

    context = json.loads((project_dir / "cdk.json").read_text()).get("context", {})
    app = cdk.App(context=context, builtin_cloud_formation_validation=BUILTIN_CLOUDFORMATION_VALIDATION)
    stack = cdk.Stack(app, "ImportedPipeline", env=cdk.Environment(account=account, region=region))
    naming = Naming()
    groups = sorted({a.worker_group for a in plan.activities if a.worker_group}) or ["wg-12345"]
    batch_arn = f"arn:aws:batch:{region}:{account}"
    workflow = PipelineWorkflow(
        stack,
        "Pipeline",
        naming=naming,
        plan=plan,
        settings=PipelineSettings(),
        worker_groups=WorkerGroupSettings(names=tuple(groups)),
        log_bucket=s3.Bucket.from_bucket_name(stack, "Logs", naming.log_bucket(account, region)),
        job_queue_arn=f"{batch_arn}:job-queue/{job_queue_name(naming)}",
        job_definition_arn=f"{batch_arn}:job-definition/"
        + (secret_job_definition_name(naming, plan) or naming.name("pipeline-shell-job-definition")),
    )
    template = app.synth().get_stack_by_name("ImportedPipeline").template
    logical_id = stack.resolve(stack.get_logical_id(workflow.state_machine.node.default_child))  # type: ignore[arg-type]
    definition = template["Resources"][logical_id]["Properties"]["DefinitionString"]
    result: dict[str, Any] = json.loads(flatten_definition(definition))
    return result
