"""Deploying a cloud assembly into the embedded emulator, without CloudFormation.

moto's own CloudFormation puts state machines into a backend that cannot execute them and skips bucket policies,
so the deployer evaluates each template itself (`evaluator`: parameters, rules, conditions, intrinsic functions,
exports) and creates every resource with the service's own API (`resources`, one module per service), in
dependency order (`deployer`). What the emulator cannot create is reported as "not emulated", never dropped
silently. Dependencies go one way: deployer -> evaluator, resources -> values, model.
"""

from __future__ import annotations

from datapipe.local.deploy.deployer import Deployer
from datapipe.local.deploy.evaluator import TemplateEvaluator, creation_order, references
from datapipe.local.deploy.model import (
    CREATED,
    NOT_EMULATED,
    SKIPPED,
    DeployedResource,
    DeployedStack,
    DeployError,
    Deployment,
)
from datapipe.local.deploy.resources import HANDLERS

__all__ = [
    "CREATED",
    "HANDLERS",
    "NOT_EMULATED",
    "SKIPPED",
    "DeployError",
    "DeployedResource",
    "DeployedStack",
    "Deployer",
    "Deployment",
    "TemplateEvaluator",
    "creation_order",
    "references",
]
