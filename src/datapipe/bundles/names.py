"""Physical names of the Batch resources, shared by the batch stack and the `datapipe run` command.

This module imports nothing heavy: the CDK app and the CLI both use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from datapipe.errors import DatapipeError
from datapipe.naming import Naming

# `module.submodule.Class`: dotted Python identifiers, at least a module and a class.
CLASS_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
BATCH_NAME_LIMIT = 128  # job definition and job names
ECR_NAME_LIMIT = 256

TRANSFORM_STATE_MACHINE = "transform"
ENTRYPOINT_MODULE = "datapipe.bundles.entrypoint"
# What varies from one run of a transform to the next. A job definition's command holds each as an AWS Batch
# parameter placeholder, `Ref::<name>`, a whole argument of its own (the form AWS documents); SubmitJob fills them
# with `Parameters`, which are data: the command itself, the transform and the backend are the job definition's.
JOB_PARAMETERS = ("remote", "context", "input", "inputVersion", "output", "outputVersion", "outputTags", "parameters")
# The job definition's defaults: a job submitted without tags or transform parameters gets none.
JOB_PARAMETER_DEFAULTS = {"outputTags": "{}", "parameters": "{}"}
# AWS Batch refuses a SubmitJob payload over 30 KiB; the values of a run keep 6 KiB of it for names and ARNs.
JOB_PARAMETERS_LIMIT = 24 * 1024


def entrypoint_command(transform: str, values: Mapping[str, str], *, backend: str, python: str = "python") -> list[str]:
    """The entry point's command line for `transform`, with one value per name of JOB_PARAMETERS.

    The job definition's command is this with placeholders as values (job_command); a local run passes real values.
    """
    command = [python, "-m", ENTRYPOINT_MODULE, "--transform", check_class_path(transform), "--backend", backend]
    for name in JOB_PARAMETERS:
        command += [f"--{option_name(name)}", values[name]]
    return command


def job_command(transform: str) -> list[str]:
    """The command of `transform`'s job definition: fixed, except for one `Ref::` placeholder per run value."""
    return entrypoint_command(transform, {name: f"Ref::{name}" for name in JOB_PARAMETERS}, backend="batch")


def option_name(parameter: str) -> str:
    """`inputVersion` -> `input-version`: the entry point's option for a job parameter."""
    return re.sub(r"([A-Z])", lambda match: "-" + match.group(1).lower(), parameter)


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
