#!/usr/bin/env python3
"""The CDK app: the only place that reads the CDK context, the environment and the config file.

`python app.py` (what `cdk synth` runs) and `datapipe synth` both come through `build_app`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datapipe.errors import DatapipeError
from datapipe.jsontext import read_json_object
from datapipe.naming import Naming
from stacks.synthesis import BUILTIN_CLOUDFORMATION_VALIDATION, import_for_synthesis

if TYPE_CHECKING:
    import aws_cdk as cdk

    from stacks.config import Settings

# aws_cdk, cdk_nag and the stacks are imported in the functions that use them: `build_app` first imports them with
# `import_for_synthesis`, which overlaps Python's imports with Node's loading (docs/development.md#benchmarks).

PROJECT_DIR = Path(__file__).resolve().parent


def read_settings(context: Mapping[str, Any]) -> Settings:
    """Settings from the context, overlaid on the config file the context names (`-c configFile=...`)."""
    from stacks.config import SettingsError, load_settings

    file_values: dict[str, Any] = {}
    config_file = context.get("configFile")
    if config_file:
        path = Path(str(config_file))
        if not path.is_absolute():
            path = PROJECT_DIR / path
        file_values = read_json_object(
            path, what="setting 'configFile'", error=SettingsError, shown_as=str(config_file)
        )
    return load_settings(context, file_values)


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json (feature flags included), so that `python app.py` synthesizes what `cdk synth` does."""
    return dict(json.loads((PROJECT_DIR / "cdk.json").read_text()).get("context", {}))


def cdk_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """An empty App with cdk.json's context overlaid by `context`, synthesizing as every synthesis of this project does.

    Context that the CDK CLI passes (`-c`) takes precedence over both.
    """
    import aws_cdk as cdk

    return cdk.App(
        context={**cdk_json_context(), **(context or {})},
        outdir=outdir,
        builtin_cloud_formation_validation=BUILTIN_CLOUDFORMATION_VALIDATION,
    )


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """Build the app with every stack and cdk-nag registered.

    `context` overlays cdk.json's (see `cdk_app`).
    """
    import_for_synthesis()
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from stacks.batch import BatchStack
    from stacks.common import encrypt_log_groups
    from stacks.emr_workflow import EmrWorkflowStack
    from stacks.pipelines import add_pipeline_stacks
    from stacks.storage import StorageStack
    from stacks.triggers import TriggersStack
    from stacks.worker_groups import WorkerGroupsStack

    app = cdk_app(context, outdir)
    settings = read_settings(app.node.get_all_context())
    naming = Naming(prefix=settings.prefix, stage=settings.stage)
    env = cdk.Environment(
        account=settings.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=settings.region or os.environ.get("CDK_DEFAULT_REGION"),
    )
    removal_policy = cdk.RemovalPolicy.DESTROY if settings.removal_policy == "destroy" else cdk.RemovalPolicy.RETAIN

    def unit(name: str, description: str) -> dict[str, Any]:
        """What every stack is given: its physical name and description, the environment, naming, removal policy."""
        return {
            "stack_name": naming.stack(name),
            "description": f"datapipe: {description}",
            "env": env,
            "naming": naming,
            "removal_policy": removal_policy,
        }

    storage = StorageStack(
        app, "Storage", **unit("storage", "log, data and access-log buckets"), settings=settings.storage
    ).storage
    EmrWorkflowStack(
        app,
        "EmrWorkflow",
        **unit("emr-workflow", "the EMR workflow, its EMR roles, the emr_reader Lambda and the cluster reaper"),
        settings=settings.emr,
        log_bucket=storage.log_bucket,
        data_bucket=storage.data_bucket,
    )
    WorkerGroupsStack(
        app,
        "WorkerGroups",
        **unit("worker-groups", "an activity per worker group, task-runner IAM, the sample shell pipeline"),
        settings=settings.worker_groups,
        log_bucket=storage.log_bucket,
    )
    BatchStack(
        app,
        "Batch",
        **unit("batch", "AWS Batch for transforms (VPC, compute, queue, roles, images, job definitions)"),
        settings=settings.batch,
        data_bucket=storage.data_bucket,
    )
    add_pipeline_stacks(
        app,
        stack_props=unit,
        naming=naming,
        settings=settings.pipelines,
        worker_groups=settings.worker_groups,
        definitions_dir=PROJECT_DIR / settings.pipelines.folder,
        batch_fargate=settings.batch.compute == "fargate",
        batch_max_vcpus=settings.batch.max_vcpus,
        powertools_layer_version=settings.emr.powertools_layer_version,
        emr_wait_mode=settings.emr.wait_mode,
    )
    TriggersStack(
        app,
        "Triggers",
        **unit("triggers", "schedules and rules that start workflows, failure alerts, alarms, dashboard"),
        settings=settings.triggers,
        data_bucket=storage.data_bucket,
    )

    # Last, so that every log group a stack made is there: each stack's log groups get its own key.
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            encrypt_log_groups(stack, removal_policy=removal_policy)

    cdk.Tags.of(app).add("datapipe:stage", settings.stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> int:
    """Synthesize; a bad setting or pipeline definition is one line on stderr and exit 2, not a traceback."""
    try:
        build_app().synth()
    except DatapipeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
