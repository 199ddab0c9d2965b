"""Physical names of the Batch resources, shared by the batch stack and the `datapipe run` command.

This module imports nothing heavy: the CDK app and the CLI both use it.
"""

from __future__ import annotations

import re

from datapipe.errors import DatapipeError
from datapipe.naming import Naming

# `module.submodule.Class`: dotted Python identifiers, at least a module and a class.
CLASS_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
BATCH_NAME_LIMIT = 128  # job definition and job names
ECR_NAME_LIMIT = 256

TRANSFORM_STATE_MACHINE = "transform"
ENTRYPOINT_MODULE = "datapipe.bundles.entrypoint"
# What a job definition runs when nothing overrides it; every run overrides it with its own arguments.
DEFAULT_JOB_COMMAND = ("python", "-m", ENTRYPOINT_MODULE, "--help")


def check_class_path(class_path: str) -> str:
    if re.fullmatch(CLASS_PATH_PATTERN, class_path) is None:
        raise DatapipeError(f"transform '{class_path}' must be a class path such as module.submodule.Class")
    return class_path


def module_slug(class_path: str) -> str:
    """`module.submodule.Class` -> `module-submodule` (lower case, underscores as dashes), as Disdat names things."""
    module = check_class_path(class_path).rsplit(".", 1)[0]
    return module.lower().replace("_", "-").replace(".", "-")


def job_definition_name(naming: Naming, class_path: str) -> str:
    """`<prefix>-<stage>-module-submodule-job-definition`: one job definition (with revisions) per transform module."""
    name = naming.name(f"{module_slug(class_path)}-job-definition")
    if len(name) > BATCH_NAME_LIMIT:
        raise DatapipeError(f"transform '{class_path}': job definition name {name} is longer than 128 characters")
    return name


def repository_name(naming: Naming, class_path: str) -> str:
    """The ECR repository holding the transform's image: `<prefix>-<stage>-module-submodule`."""
    return naming.name(module_slug(class_path))


def job_queue_name(naming: Naming) -> str:
    return naming.name("transforms")


def job_role_name(naming: Naming) -> str:
    return naming.name("transform-job-role")


def execution_role_name(naming: Naming) -> str:
    return naming.name("transform-execution-role")


def instance_role_name(naming: Naming) -> str:
    """Batch's default is `ecsInstanceRole`; ours carries the stage so that stages never share it."""
    return naming.name("ecsInstanceRole")


def job_log_group_name(naming: Naming) -> str:
    return f"/{naming.prefix}/{naming.stage}/transforms"
