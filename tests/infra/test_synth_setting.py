"""Every synthesis of the project runs without the CDK's built-in CloudFormation validation, and cfn-lint, which the
test suite runs over every template instead, catches what that validation would have (docs/decisions/0001-*.md).

A probe stack with a misspelt property goes through `app.cdk_app`, the App that `build_app` (so `cdk synth`,
`datapipe synth` and the tests' session synthesis) builds on. It runs in a process of its own without CDK_VALIDATION
(which tests/conftest.py sets for the Apps the tests build themselves), so that only app.py's setting decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import aws_cdk as cdk
from app import cdk_app

app = cdk_app(context={"account": "123456789012", "region": "eu-west-1"}, outdir=sys.argv[1])
stack = cdk.Stack(app, "Probe")
cdk.CfnResource(stack, "Bucket", type="AWS::S3::Bucket", properties={"BucketNam": "probe"})
app.synth()
"""


def test_the_project_app_skips_the_builtin_validation_and_cfn_lint_reports_the_mistake(tmp_path: Path) -> None:
    # cdk.json sets @aws-cdk/core:validateAgainstDefaultRules, so with the built-in validation on, this synthesis
    # would fail on the misspelt property (F3002) instead of writing the template.
    env = {k: v for k, v in os.environ.items() if k != "CDK_VALIDATION"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], cwd=PROJECT_DIR, env={**env, "PYTHONPATH": str(PROJECT_DIR)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "validation-report.json").exists()
    template = tmp_path / "Probe.template.json"
    assert json.loads(template.read_text())["Resources"]["Bucket"]["Properties"] == {"BucketNam": "probe"}

    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True)
    assert result.returncode & 2, result.stdout + result.stderr  # bit 2: errors
    assert any(":E3002:" in line and "BucketNam" in line for line in result.stdout.splitlines()), result.stdout
