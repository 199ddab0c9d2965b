"""cdk-nag (AwsSolutions) and cfn-lint over every synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_cdk_nag_reports_no_unacknowledged_finding(assembly_dir: Path) -> None:
    # Synthesis raises when a plugin fails, so reaching here already means clean; the report must agree.
    report = json.loads((assembly_dir / "validation-report.json").read_text())
    violations = [v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])]
    assert violations == []


def test_cdk_nag_is_registered_and_stops_a_bad_template(tmp_path: Path) -> None:
    """The control for the test above: an unencrypted, non-TLS bucket added to the app fails synthesis."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from app import build_app

    app = build_app(context={"account": "123456789012", "region": "eu-west-1"}, outdir=str(tmp_path))
    storage_stack = next(child for child in app.node.children if isinstance(child, cdk.Stack))
    s3.Bucket(storage_stack, "CarelessBucket")
    with pytest.raises(Exception, match="AwsSolutions-S10"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_cfn_lint_is_clean_on_every_template(assembly_dir: Path) -> None:
    templates = sorted(str(p) for p in assembly_dir.glob("*.template.json"))
    assert templates, "nothing was synthesized"
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", *templates], capture_output=True, text=True)
    # cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational. Only informational may remain.
    assert result.returncode in (0, 8), result.stdout + result.stderr
