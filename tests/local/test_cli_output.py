"""What `datapipe local up` prints about the deployment: every stack name whole, at 80 columns, terminal or not."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from datapipe.local.cli import _print_deployment
from datapipe.local.deploy import CREATED, NOT_EMULATED, DeployedResource, DeployedStack, Deployment

LONG_STACK = "datapipe-production-eu-central-1-pipeline-shell-with-dependencies-and-more"


def deployment() -> Deployment:
    stack = DeployedStack(artifact_id="Long", stack_name=LONG_STACK, stack_id="arn:aws:cloudformation:...:stack/x")
    stack.resources = [
        DeployedResource(LONG_STACK, "Function", "AWS::Lambda::Function", "fn", CREATED),
        DeployedResource(
            LONG_STACK,
            "CustomVpcRestrictDefaultSGCustomResourceProviderHandler",
            "Custom::VpcRestrictDefaultSG",
            "x",
            NOT_EMULATED,
            "custom resource",
        ),
    ]
    return Deployment(account="123456789012", region="eu-west-1", stacks=[stack])


@pytest.mark.parametrize("terminal", [False, True])
def test_at_80_columns_each_stack_is_one_line_with_whole_values(terminal: bool) -> None:
    out = io.StringIO()
    _print_deployment(Console(file=out, width=80, force_terminal=terminal, color_system=None), deployment())
    assert out.getvalue().splitlines() == [
        f"stack {LONG_STACK}: 1 Lambda::Function; not emulated: "
        "CustomVpcRestrictDefaultSGCustomResourceProviderHandler (Custom::VpcRestrictDefaultSG)"
    ]


def test_a_terminal_wide_enough_gets_the_table_with_whole_values() -> None:
    out = io.StringIO()
    _print_deployment(Console(file=out, width=250, force_terminal=True, color_system=None), deployment())
    shown = out.getvalue()
    assert "Deployed into the emulator" in shown and "…" not in shown
    assert any(LONG_STACK in line and "1 Lambda::Function" in line for line in shown.splitlines())
