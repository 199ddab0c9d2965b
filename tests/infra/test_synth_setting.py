"""Every synthesis of the project runs without the CDK's built-in CloudFormation validation, and cfn-lint, which the
test suite runs over every template instead, catches what that validation would have (docs/decisions/0001-*.md).

A probe stack with a misspelt property goes through `app.cdk_app`, the App that `build_app` (so `cdk synth`,
`datapipe synth` and the tests' session synthesis) builds on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk

from app import cdk_app


def test_the_project_app_skips_the_builtin_validation_and_cfn_lint_reports_the_mistake(tmp_path: Path) -> None:
    # cdk.json sets @aws-cdk/core:validateAgainstDefaultRules, so with the built-in validation on, this synthesis
    # would fail on the misspelt property (F3002) instead of writing the template.
    app = cdk_app(context={"account": "123456789012", "region": "eu-west-1"}, outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe")
    cdk.CfnResource(stack, "Bucket", type="AWS::S3::Bucket", properties={"BucketNam": "probe"})
    app.synth()
    assert not (tmp_path / "validation-report.json").exists()
    template = tmp_path / "Probe.template.json"
    assert json.loads(template.read_text())["Resources"]["Bucket"]["Properties"] == {"BucketNam": "probe"}

    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True)
    assert result.returncode & 2, result.stdout + result.stderr  # bit 2: errors
    assert any(":E3002:" in line and "BucketNam" in line for line in result.stdout.splitlines()), result.stdout
