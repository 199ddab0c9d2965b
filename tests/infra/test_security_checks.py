"""cdk-nag (AwsSolutions), cfn-lint and checkov over every synthesized template, and the findings fixed for them."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml


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


# -- checkov --------------------------------------------------------------------------------------------------------

PROJECT_DIR = Path(__file__).resolve().parents[2]
# `make setup` installs checkov into a venv of its own: its pins (boto3, packaging) are older than the project's.
CHECKOV = PROJECT_DIR / ".venv" / "checkov" / "bin" / "checkov"
CHECKOV_CONFIG = PROJECT_DIR / ".checkov.yaml"
CHECKOV_BASELINE = PROJECT_DIR / ".checkov.baseline"
BASELINE_SKIPPED = "baseline-skipped"


def run_checkov(templates: list[Path]) -> dict[str, Any]:
    """checkov's JSON report over the templates, with the project's configuration and baseline."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV.relative_to(PROJECT_DIR)}: run `make setup`")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(CHECKOV_CONFIG),
            "--output-baseline-as-skipped",
            "--compact",
            "--output",
            "json",
            "--file",
            *(str(template) for template in templates),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,  # the configuration names the baseline relative to the project
        # No look for a newer checkov on the package index: the scan must not depend on the network.
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        timeout=600,
    )
    # 0: no failed check, 1: some failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "checkov ran more than the cloudformation framework"
    return report


def skip_reasons(config_text: str) -> dict[str, str]:
    """`skip-check` entries of a checkov configuration and the reason each carries as a comment."""
    reasons: dict[str, str] = {}
    in_skips = False
    for line in config_text.splitlines():
        if not line.startswith((" ", "-")):
            in_skips = line.startswith("skip-check:")
            continue
        entry = re.fullmatch(r"\s*-\s*(?P<check>[A-Z0-9_]+)\s*(?:#\s*(?P<reason>.*))?", line)
        if in_skips and entry:
            reasons[entry["check"]] = (entry["reason"] or "").strip()
    return reasons


@pytest.fixture(scope="module")
def checkov_report(assembly_dir: Path) -> dict[str, Any]:
    templates = sorted(assembly_dir.glob("*.template.json"))
    assert templates, "nothing was synthesized"
    return run_checkov(templates)


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checkov_report["results"]["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 100, "checkov did not read the templates"


def test_every_baselined_finding_is_still_a_finding(checkov_report: dict[str, Any]) -> None:
    """A fixed resource must leave the baseline, or the baseline would hide its next regression."""
    baselined = {
        (check, finding["resource"])
        for entry in json.loads(CHECKOV_BASELINE.read_text())["failed_checks"]
        for finding in entry["findings"]
        for check in finding["check_ids"]
    }
    matched = {
        (c["check_id"], c["resource"])
        for c in checkov_report["results"]["skipped_checks"]
        if c["check_result"].get("suppress_comment") == BASELINE_SKIPPED
    }
    assert baselined - matched == set(), "fixed or renamed: remove these from .checkov.baseline"


def test_every_checkov_skip_and_baselined_finding_has_a_one_line_reason() -> None:
    config_text = CHECKOV_CONFIG.read_text()
    reasons = skip_reasons(config_text)
    assert set(reasons) == set(yaml.safe_load(config_text)["skip-check"]), "a skip-check entry is not one per line"
    assert [check for check, reason in reasons.items() if len(reason) < 20] == []
    for entry in json.loads(CHECKOV_BASELINE.read_text())["failed_checks"]:
        for finding in entry["findings"]:
            reason = finding.get("reason", "")
            assert len(reason) >= 20 and "\n" not in reason, f"{finding['resource']} needs a one-line reason"


def test_a_skip_without_a_reason_is_seen() -> None:
    """The control for the test above: an entry without a comment shows up with an empty reason."""
    config = "framework:\n  - cloudformation\nskip-check:\n  - CKV_AWS_1  # a reason long enough\n  - CKV_AWS_2\n"
    assert skip_reasons(config) == {"CKV_AWS_1": "a reason long enough", "CKV_AWS_2": ""}


def test_checkov_with_the_project_configuration_still_fails_a_careless_template(tmp_path: Path) -> None:
    """The control for the clean report: an unencrypted log group and an unversioned bucket are findings."""
    careless = tmp_path / "Careless.template.json"
    careless.write_text(
        json.dumps(
            {
                "Resources": {
                    "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
                    "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
                }
            }
        )
    )
    report = run_checkov([careless])
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    assert {("CKV_AWS_158", "AWS::Logs::LogGroup.Logs"), ("CKV_AWS_21", "AWS::S3::Bucket.Bucket")} <= failed


# -- the findings fixed for checkov ---------------------------------------------------------------------------------

ACCOUNT, REGION = "123456789012", "eu-west-1"
PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}


def literal(value: Any) -> Any:
    """A template value with the pseudo parameters of the test account filled in (Ref and Fn::Join only)."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PSEUDO_PARAMETERS:
        return PSEUDO_PARAMETERS[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(literal(part)) for part in parts)
    if isinstance(value, list):
        return [literal(item) for item in value]
    return value


def test_every_log_group_is_encrypted_by_a_rotating_key_of_its_stack_that_names_it(
    templates: dict[str, dict[str, Any]],
) -> None:
    encrypted = 0
    shared_key_log_groups: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for stack, template in templates.items():
        resources = template["Resources"]
        keys: dict[str, list[str]] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Logs::LogGroup":
                continue
            properties = resource["Properties"]
            if "Ref" in properties.get("KmsKeyId", {}):
                shared_key_log_groups.append((stack, template, properties))
                continue
            key_id = properties.get("KmsKeyId", {}).get("Fn::GetAtt", [None])[0]
            assert key_id in resources, f"{stack}/{logical_id} is not encrypted by a key of its stack"
            assert resources[key_id]["Type"] == "AWS::KMS::Key"
            # AWS: the encryption context of a log group is its ARN, without the trailing `:*`.
            name = literal(properties["LogGroupName"])
            keys.setdefault(key_id, []).append(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}")
            encrypted += 1
        for key_id, log_group_arns in keys.items():
            key = resources[key_id]["Properties"]
            assert key["EnableKeyRotation"] is True
            logs_service = {"Service": f"logs.{REGION}.amazonaws.com"}
            (logs_statement,) = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == logs_service]
            condition = literal(logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
            assert sorted(condition if isinstance(condition, list) else [condition]) == sorted(log_group_arns)
            assert "kms:Decrypt*" in logs_statement["Action"] and "kms:GenerateDataKey*" in logs_statement["Action"]
    # The state machines' logs (with execution data), the Lambda logs, the Batch job and VPC flow logs; below, the
    # imported pipelines' state machines.
    assert encrypted >= 8
    # Each imported pipeline's state machine logs with the pipelines stack's one key, read from the SSM parameter
    # that stack publishes; that key's policy covers exactly the pipelines' state machine log groups.
    assert shared_key_log_groups, "no pipeline stack's log group uses the shared pipeline key"
    shared = templates["Pipelines"]["Resources"]
    (parameter,) = [r for r in shared.values() if r["Type"] == "AWS::SSM::Parameter"
                    and r["Properties"]["Name"] == "/datapipe/dev/pipelines/log-key-arn"]
    key_id = parameter["Properties"]["Value"]["Fn::GetAtt"][0]
    key = shared[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    (logs_statement,) = [s for s in key["KeyPolicy"]["Statement"]
                         if s["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}]
    (pattern,) = literal(logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert pattern == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/states/datapipe-dev-pipeline-*"
    for stack, template, properties in shared_key_log_groups:
        ref = properties["KmsKeyId"]["Ref"]
        assert template["Parameters"][ref]["Type"] == "AWS::SSM::Parameter::Value<String>", stack
        assert template["Parameters"][ref]["Default"] == "/datapipe/dev/pipelines/log-key-arn", stack
        name = literal(properties["LogGroupName"])
        assert fnmatch.fnmatchcase(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}", pattern), name
        assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key"], stack


def test_a_log_group_without_a_name_cannot_be_encrypted_and_says_which() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_logs as logs

    from datapipe.errors import DatapipeError
    from stacks.common import encrypt_log_groups

    stack = cdk.Stack(cdk.App(), "Lonely")
    logs.LogGroup(stack, "Anonymous")
    with pytest.raises(DatapipeError, match="log group Lonely/Anonymous/Resource has no log_group_name"):
        encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.RETAIN)


def test_a_log_group_with_a_key_of_its_own_keeps_it_and_the_stack_key_names_only_the_others() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_logs as logs

    from stacks.common import encrypt_log_groups

    stack = cdk.Stack(cdk.App(), "Mixed", env=cdk.Environment(account=ACCOUNT, region=REGION))
    own_key = kms.Key(stack, "OwnKey", enable_key_rotation=True)
    logs.LogGroup(stack, "Chosen", log_group_name="/chosen", encryption_key=own_key)
    logs.LogGroup(stack, "Plain", log_group_name="/plain")
    stack_key = encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.RETAIN)
    assert stack_key is not None
    resources = cdk.assertions.Template.from_stack(stack).to_json()["Resources"]
    key_of = {
        r["Properties"]["LogGroupName"]: r["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert key_of["/chosen"] == stack.get_logical_id(typing.cast(cdk.CfnElement, own_key.node.default_child))
    assert key_of["/plain"] == stack.get_logical_id(typing.cast(cdk.CfnElement, stack_key.node.default_child))
    (logs_statement,) = [
        s
        for s in resources[key_of["/plain"]]["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    ]
    assert literal(logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/plain"
    ]


def test_a_stack_without_log_groups_gets_no_key() -> None:
    import aws_cdk as cdk

    from stacks.common import encrypt_log_groups

    stack = cdk.Stack(cdk.App(), "Quiet")
    assert encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.RETAIN) is None
    assert stack.node.try_find_child("LogKey") is None


def test_every_storage_bucket_is_versioned_and_ages_out_old_versions(templates: dict[str, dict[str, Any]]) -> None:
    buckets = [r["Properties"] for r in templates["Storage"]["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    assert len(buckets) == 3
    for bucket in buckets:
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = bucket["LifecycleConfiguration"]["Rules"]
        assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for rule in rules)
