"""The pipelines: every definition in pipelines/ becomes a state machine in a stack of its own, as the importer
planned it; what they share is in the pipelines stack, once."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from aws_cdk.assertions import Match, Template

from datapipe.bundles.names import job_queue_name
from datapipe.errors import DatapipeError
from datapipe.importer.asl import flatten_definition
from datapipe.naming import Naming
from stacks.config import WorkerGroupSettings

NAMING = Naming()  # the app's defaults
ACCOUNT, REGION = "123456789012", "eu-west-1"  # tests/conftest.py's TEST_CONTEXT


@pytest.fixture(scope="module")
def shared(template_of: Callable[[str], Template]) -> Template:
    return template_of("Pipelines")


@pytest.fixture(scope="module")
def shell_pipeline(template_of: Callable[[str], Template]) -> Template:
    return template_of("Pipeline-shell-with-dependencies")


@pytest.fixture(scope="module")
def emr_pipeline(template_of: Callable[[str], Template]) -> Template:
    return template_of("Pipeline-emr-word-count")


def definition(template: Template, name: str) -> dict[str, Any]:
    machines = template.find_resources("AWS::StepFunctions::StateMachine",
                                       {"Properties": {"StateMachineName": NAMING.state_machine(name)}})
    assert len(machines) == 1, f"no state machine {name}"
    [machine] = machines.values()
    result: dict[str, Any] = json.loads(flatten_definition(machine["Properties"]["DefinitionString"]))
    return result


def constant(asl: dict[str, Any], path: str) -> str:
    """The text of a `$.const.cN` piece, as Set_Constants gives it (base64 when it holds `${`)."""
    key = path.removeprefix("$.const.")
    parameters = asl["States"]["Set_Constants"]["Parameters"]
    if key in parameters:
        return str(parameters[key])
    encoded = parameters[f"{key}.$"].removeprefix("States.Base64Decode('").removesuffix("')")
    return base64.b64decode(encoded).decode()


def all_states(states: dict[str, Any]) -> dict[str, Any]:
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
    return found


def test_each_example_definition_is_a_logged_traced_state_machine(template_of: Callable[[str], Template]) -> None:
    for name in ("pipeline-shell-with-dependencies", "pipeline-emr-word-count"):
        stack = template_of(f"Pipeline-{name.removeprefix('pipeline-')}")
        stack.has_resource_properties("AWS::StepFunctions::StateMachine", {
            "StateMachineName": NAMING.state_machine(name),
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
        })


def test_the_shell_pipeline_runs_in_stages_on_the_task_runner_and_batch(shell_pipeline: Template) -> None:
    asl = definition(shell_pipeline, "pipeline-shell-with-dependencies")
    states = all_states(asl["States"])
    activity_arn = NAMING.activity_arn("wg-12345", account=ACCOUNT, region=REGION)
    assert states["InitBackup"]["Resource"] == activity_arn and states["FinalizeBackup"]["Resource"] == activity_arn
    assert states["InitBackup"]["Parameters"]["type"] == "ShellCommandActivity"
    assert states["InitBackup"]["Parameters"]["scriptArgument"] == ["daily"]
    stage = states["Stage_2"]
    assert stage["Type"] == "Parallel" and len(stage["Branches"]) == 2
    part = states["Run_BackupPart1"]
    assert part["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert part["Parameters"]["JobQueue"] == f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{job_queue_name(NAMING)}"
    # The shared job definition by name (Batch takes its latest active revision): no export ties the stacks.
    assert part["Parameters"]["JobDefinition"] == NAMING.name("pipeline-shell-job-definition")
    assert part["Parameters"]["Timeout"]["AttemptDurationSeconds"] == 70 * 60  # terminateAfter of its Ec2Resource
    assert part["Retry"][0]["MaxAttempts"] == 1 and part["Retry"][0]["IntervalSeconds"] == 60
    environment = {e["Name"]: e.get("Value", e.get("Value.$")) for e in part["Parameters"]["ContainerOverrides"]
                   ["Environment"]}
    assert environment["DATAPIPE_ARG_1"] == "1" and environment["DATAPIPE_ARG_2"] == "2"
    # The run's date reaches the command as variables at run time; the command's text is fixed in the definition.
    assert environment["SCHEDULED_START_YEAR"] == "$.run.year" and environment["SCHEDULED_START_DAY"] == "$.run.day"
    assert constant(asl, environment["DATAPIPE_COMMAND"]) == (
        'echo "backup part $1 of $2 for ${SCHEDULED_START_YEAR}-${SCHEDULED_START_MONTH}-${SCHEDULED_START_DAY}"')
    init = states["InitBackup"]["Parameters"]
    assert init["environment"] == {f"SCHEDULED_START_{part.upper()}.$": f"$.run.{part}"
                                   for part in ("year", "month", "day")}
    assert constant(asl, init["command.$"]) == (
        'echo "init $1 backup for ${SCHEDULED_START_YEAR}-${SCHEDULED_START_MONTH}-${SCHEDULED_START_DAY}"')
    assert asl["StartAt"] == "Has_Scheduled_Start_Time"  # then the run's time is split into parts
    # Only a timestamp is taken as the run's time, so its parts are digits wherever they go.
    first, second = asl["States"]["Has_Scheduled_Start_Time"]["Choices"]
    assert first["And"] == [{"Variable": "$.scheduledStartTime", "IsPresent": True},
                            {"Variable": "$.scheduledStartTime", "IsTimestamp": True},
                            {"Variable": "$.scheduledStartTime", "StringMatches": "*Z"}]
    assert first["Next"] == "Use_Scheduled_Start_Time"
    assert asl["States"][second["Next"]] == {"Type": "Fail", "Error": "InvalidScheduledStartTime",
                                            "Cause": "scheduledStartTime must be a UTC timestamp such as "
                                            "2024-01-31T06:00:00Z"}
    order = ["Set_Constants"]
    while "Next" in asl["States"][order[-1]]:
        order.append(asl["States"][order[-1]]["Next"])
    assert order == ["Set_Constants", "InitBackup", "Stage_2", "FinalizeBackup", "Pipeline_Succeeded"]


def test_the_shell_pipeline_has_its_daily_schedule_with_the_run_time(
    shell_pipeline: Template, emr_pipeline: Template
) -> None:
    shell_pipeline.has_resource_properties("AWS::Scheduler::Schedule", {
        "Name": NAMING.name("pipeline-shell-with-dependencies"),
        "ScheduleExpression": "rate(1 day)",
        "Target": Match.object_like(
            {"Input": '{"scheduledStartTime":"<aws.scheduler.scheduled-time>","schedule":"DefaultSchedule"}'}),
    })
    assert len(emr_pipeline.find_resources("AWS::Scheduler::Schedule")) == 0  # the EMR example is on demand


def test_every_schedule_starts_its_run_with_the_one_shared_role_that_may_start_only_pipelines(
    shell_pipeline: Template, shared: Template
) -> None:
    [schedule] = shell_pipeline.find_resources("AWS::Scheduler::Schedule").values()
    role_name = NAMING.name("pipeline-schedules")
    assert schedule["Properties"]["Target"]["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    # The pipeline's stack has one role, its state machine's: none per schedule (the IAM quota counts roles).
    assert len(shell_pipeline.find_resources("AWS::IAM::Role")) == 1
    [(role_id, role)] = shared.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": role_name}}).items()
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    [policy] = [p["Properties"] for p in shared.find_resources("AWS::IAM::Policy").values()
                if p["Properties"]["Roles"] == [{"Ref": role_id}]]
    assert policy["PolicyDocument"]["Statement"] == [{
        "Action": "states:StartExecution", "Effect": "Allow",
        "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:datapipe-dev-pipeline-*"}]


def test_the_emr_pipeline_creates_steps_and_terminates_its_cluster_on_every_path(emr_pipeline: Template) -> None:
    asl = definition(emr_pipeline, "pipeline-emr-word-count")
    states = all_states(asl["States"])
    create = states["Create_Cluster_WordCountCluster"]
    # emr.waitMode=events (the default): request-response EMR tasks, each followed by its wait (see
    # test_pipeline_emr_waits.py; the .sync form of emr.waitMode=sync is checked there too).
    assert create["Resource"] == "arn:aws:states:::elasticmapreduce:createCluster"
    parameters = create["Parameters"]
    assert parameters["ReleaseLabel"] == "emr-7.5.0" and parameters["Instances"]["KeepJobFlowAliveWhenNoSteps"]
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in parameters["Tags"]
    assert parameters["Configurations"][0]["Classification"] == "yarn-site"
    # The shared roles of the pipelines stack, by name.
    assert (parameters["JobFlowRole"], parameters["ServiceRole"], parameters["AutoScalingRole"]) == tuple(
        NAMING.name(f"pipeline-emr-{role}") for role in ("instance", "service", "autoscaling"))
    steps = [s for s in states.values() if s.get("Resource", "").endswith("addStep")]
    assert [s["Parameters"]["Step"]["Name"] for s in steps] == [
        "WordCount-pre-1", "WordCount-1", "WordCount-post-1", "ListOutput"]
    # The cleanup guarantee: the activities' failure, or a failed creation, ends in protection off + terminate.
    units = [s for s in asl["States"].values() if s["Type"] == "Parallel"
             and any(b["States"][b["StartAt"]].get("Resource", "").endswith("addStep") for b in s["Branches"])]
    catches = {s["Catch"][0]["Next"] for s in units}
    assert catches == {"Cleanup_Protection_WordCountCluster_after_failure"}
    cleanup = asl["States"]["Cleanup_Protection_WordCountCluster_after_failure"]
    assert cleanup["Resource"].endswith("elasticmapreduce:setClusterTerminationProtection")
    assert cleanup["Parameters"]["TerminationProtected"] is False
    terminate = asl["States"][cleanup["Next"]]
    assert terminate["Resource"].endswith("elasticmapreduce:terminateCluster")
    assert asl["States"][asl["States"][terminate["Next"]]["Next"]]["Type"] == "Fail"
    assert {c["Next"] for c in cleanup.get("Catch", [])} == {cleanup["Next"]}  # a failed unprotect still terminates
    assert asl["States"]["Check_Parameters"]["Choices"][0]["Next"] == "Missing_Parameters"


def test_cluster_roles_reach_only_the_buckets_the_definitions_name(shared: Template) -> None:
    policies = shared.find_resources("AWS::IAM::Policy")
    instance = [p for key, p in policies.items() if "EmrRolesInstanceRole" in key]
    assert instance, "the shared EMR instance role has no policy"
    resources = json.dumps([s["Resource"] for s in instance[0]["Properties"]["PolicyDocument"]["Statement"]])
    assert "elasticmapreduce/*" in resources and '"*"' not in resources


# -- the construct on definitions the examples do not cover: preconditions, alarms, monthly schedules -----------------

CHECKED = {"objects": [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Monthly"}, "workerGroup": "wg-12345",
     "onFail": {"ref": "Tell"}},
    {"id": "Monthly", "type": "Schedule", "period": "1 month", "startDateTime": "2030-01-05T02:30:00"},
    {"id": "Ready", "type": "S3KeyExists", "role": "R", "retryDelay": "5 minutes", "preconditionTimeout": "1 hour",
     "s3Key": "s3://landing-bucket/#{format(@scheduledStartTime, 'YYYY-MM')}/_SUCCESS"},
    {"id": "Tell", "type": "SnsAlarm", "topicArn": "arn:aws:sns:eu-west-1:123456789012:ops", "subject": "failed",
     "message": "#{node.@id} failed for #{format(node.@scheduledStartTime, 'YYYY-MM')}"},
    {"id": "Raw", "type": "S3DataNode", "directoryPath": "s3://landing-bucket/", "precondition": {"ref": "Ready"}},
    {"id": "Load", "type": "ShellCommandActivity", "input": {"ref": "Raw"}, "command": "echo ${INPUT1_STAGING_DIR}",
     "stage": "true"},
]}


@pytest.fixture(scope="module")
def checked_template(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Template:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from datapipe.importer import import_file
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow

    folder = tmp_path_factory.mktemp("checked")
    (folder / "checked.json").write_text(json.dumps(CHECKED))
    plan = import_file(folder / "checked.json")
    assert plan.deployable, plan.errors
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "Checked", env=cdk.Environment(account=ACCOUNT, region=REGION))
    PipelineWorkflow(stack, "Checked", naming=NAMING, plan=plan, settings=PipelineSettings(),
                     worker_groups=WorkerGroupSettings(), log_bucket=s3.Bucket.from_bucket_name(stack, "L", "logs"))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # cdk-nag clean, or this raises
    return Template.from_json(json.loads((folder / "out" / "Checked.template.json").read_text()))


def test_a_precondition_is_a_bounded_check_loop_that_alarms_when_it_gives_up(checked_template: Template) -> None:
    states = all_states(definition(checked_template, "pipeline-checked")["States"])
    check = states["Check_Ready_Load"]
    assert check["Resource"] == "arn:aws:states:::aws-sdk:s3:headObject"
    assert check["Parameters"]["Bucket"] == "landing-bucket" and check["Next"] == "Load"
    assert check["Catch"][0]["Next"] == "Count_Check_Ready_Load"
    again = states["Check_Again_Ready_Load"]
    assert again["Choices"][0]["NumericLessThan"] == 12  # 1 hour / 5 minutes
    assert again["Choices"][0]["Next"] == "Wait_Before_Checking_Ready_Load"
    assert states["Wait_Before_Checking_Ready_Load"]["Seconds"] == 300
    # giving up names the precondition in $.error, then it is a failure of the activity: the alarm goes
    assert again["Default"] == "Precondition_Failed_Ready_Load"
    assert states["Precondition_Failed_Ready_Load"]["Result"]["Error"] == "PreconditionFailed"
    # Default's onFail reaches every object: the precondition's alarm, its data node's, then the activity's
    assert states["Precondition_Failed_Ready_Load"]["Next"] == "Notify_Tell_Ready_on_fail_Load"
    assert states["Notify_Tell_Ready_on_fail_Load"]["Next"] == "Notify_Tell_Raw_on_fail_Load"
    assert states["Notify_Tell_Raw_on_fail_Load"]["Next"] == "Notify_Tell_Load_on_fail"
    notify = states["Notify_Tell_Load_on_fail"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish" and notify["Next"] == "Load_Failed"
    assert notify["Parameters"]["Message.$"].startswith("States.Format(")
    assert states["Load"]["Catch"][0]["Next"] == "Notify_Tell_Load_on_fail"


def test_shell_text_with_dollar_braces_is_kept_out_of_the_template(checked_template: Template) -> None:
    template = json.dumps(checked_template.to_json())
    assert "${INPUT1_STAGING_DIR}" not in template  # cfn-lint would read it as a substitution
    states = definition(checked_template, "pipeline-checked")["States"]
    constants = states["Set_Constants"]["Parameters"]
    assert any(v.startswith("States.Base64Decode(") for k, v in constants.items() if k.endswith(".$"))


def test_a_monthly_schedule_is_a_cron_from_its_start(checked_template: Template) -> None:
    checked_template.has_resource_properties("AWS::Scheduler::Schedule", {
        "ScheduleExpression": "cron(30 2 5 * ? *)", "StartDate": Match.string_like_regexp("^2030-01-05T02:30:00"),
    })
    policies = json.dumps(checked_template.find_resources("AWS::IAM::Policy"))
    assert "arn:aws:sns:eu-west-1:123456789012:ops" in policies and "landing-bucket/*" in policies


def pipeline_app(
    definitions: Path, outdir: Path, context: dict[str, object], *, only: str = "",
    worker_groups: WorkerGroupSettings | None = None, emr_wait_mode: Literal["events", "sync"] = "events",
) -> Any:
    """The pipelines' stacks as app.py groups them, in an app of their own, with cdk-nag."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from stacks.common import encrypt_log_groups
    from stacks.config import PipelineSettings
    from stacks.pipelines import add_pipeline_stacks

    app = cdk.App(context=context, outdir=str(outdir))
    env = cdk.Environment(account=ACCOUNT, region=REGION)

    def stack_props(unit: str, description: str) -> dict[str, Any]:
        return {"stack_name": NAMING.stack(unit), "description": description, "env": env, "naming": NAMING,
                "removal_policy": cdk.RemovalPolicy.DESTROY}

    add_pipeline_stacks(app, stack_props=stack_props, naming=NAMING, settings=PipelineSettings(only=only),
                        worker_groups=worker_groups or WorkerGroupSettings(), definitions_dir=definitions,
                        emr_wait_mode=emr_wait_mode)
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.DESTROY)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def synthesized(outdir: Path) -> dict[str, dict[str, Any]]:
    return {path.name.removesuffix(".template.json"): json.loads(path.read_text())
            for path in sorted(outdir.glob("*.template.json"))}


def test_a_definition_that_cannot_be_deployed_stops_the_stack_with_its_reason(
    tmp_path: Path, cdk_json_context: dict[str, object]
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"objects": [
        {"id": "Q", "type": "SqlActivity", "script": "select 1", "workerGroup": "wg-12345",
         "database": {"ref": "Q"}}]}))
    (tmp_path / "other.json").write_text(json.dumps({"objects": [
        {"id": "S", "type": "ShellCommandActivity", "command": "true", "workerGroup": "wg-elsewhere"}]}))
    for kept, message in (("bad.json", "pipeline bad.json cannot be deployed: "),
                          ("other.json", "worker group wg-elsewhere, which has no activity")):
        folder = tmp_path / kept.removesuffix(".json")
        folder.mkdir()
        (folder / kept).write_text((tmp_path / kept).read_text())
        with pytest.raises(DatapipeError, match=message):
            pipeline_app(folder, tmp_path / "out", cdk_json_context)


def test_runs_that_end_badly_start_the_reaper_which_may_touch_only_pipeline_clusters(shared: Template) -> None:
    name = NAMING.name("pipeline-cluster-reaper")
    rule = shared.find_resources("AWS::Events::Rule", {"Properties": {"Name": name}})
    [properties] = [r["Properties"] for r in rule.values()]
    assert properties["EventPattern"]["detail"]["status"] == ["ABORTED", "TIMED_OUT", "FAILED"]
    # One pattern of constant size for every pipeline, whichever stack it is in.
    assert properties["EventPattern"]["detail"]["stateMachineArn"] == [
        {"prefix": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:datapipe-dev-pipeline-"}]
    policies = json.dumps(shared.find_resources("AWS::IAM::Policy"))
    assert '"elasticmapreduce:ResourceTag/datapipe:workflow": "datapipe-dev-pipeline-*"' in policies


# -- secrets and parameters given when a run starts: data, never shell text --------------------------------------------

SECRET_TEXT = "hunter2-never-in-a-template"
WITH_SECRETS = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0"},
        {"id": "Call", "type": "ShellCommandActivity", "workerGroup": "wg-12345",
         "command": "curl -H 'Authorization: Bearer #{*myToken}' https://example.com/#{myWord}"},
        {"id": "Load", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "dependsOn": {"ref": "Call"},
         "command": "load --password=#{*myDbPassword} --table \"#{myWord}\""},
        {"id": "Crunch", "type": "EmrActivity", "runsOn": {"ref": "Cluster"}, "dependsOn": {"ref": "Load"},
         "preStepCommand": "login #{*myToken}", "step": "command-runner.jar,spark-submit,s3://code-bucket/job.py"},
    ],
    "parameters": [{"id": "myWord", "type": "String"}, {"id": "*myToken", "type": "String"},
                   {"id": "*myDbPassword", "type": "String"}],
    "values": {"*myToken": "secretsmanager:prod/api-token", "*myDbPassword": "ssm:/prod/db/password"},
}


@pytest.fixture(scope="module")
def secrets_templates(
    tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]
) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("secrets")
    (folder / "definitions").mkdir()
    (folder / "definitions" / "with-secrets.json").write_text(json.dumps(WITH_SECRETS))
    pipeline_app(folder / "definitions", folder / "out", cdk_json_context,
                 worker_groups=WorkerGroupSettings(runner_role=True)).synth()  # cdk-nag clean, or this raises
    return synthesized(folder / "out")


@pytest.fixture(scope="module")
def secrets_template(secrets_templates: dict[str, dict[str, Any]]) -> Template:
    """The pipeline's stack."""
    return Template.from_json(secrets_templates["Pipeline-with-secrets"])


@pytest.fixture(scope="module")
def secrets_shared(secrets_templates: dict[str, dict[str, Any]]) -> Template:
    """The shared stack: job definitions, EMR roles, the runners' secret policies."""
    return Template.from_json(secrets_templates["Pipelines"])


def test_a_worker_group_task_carries_secret_references_and_parameters_as_data(secrets_template: Template) -> None:
    asl = definition(secrets_template, "pipeline-with-secrets")
    call = all_states(asl["States"])["Call"]["Parameters"]
    assert call["secrets"] == {"myToken": "prod/api-token"}  # the reference; the runner reads the value
    assert call["environment"] == {"myWord.$": "$.parameters.myWord"}
    # The starter's value is a variable of the command, never its text; the secret is read into a variable too.
    assert constant(asl, call["command.$"]) == (
        "curl -H 'Authorization: Bearer '\"${myToken}\"'' https://example.com/\"${myWord}\"")


def test_a_batch_job_reads_its_secrets_through_its_own_job_definition(
    secrets_template: Template, secrets_shared: Template
) -> None:
    asl = definition(secrets_template, "pipeline-with-secrets")
    load = all_states(asl["States"])["Run_Load"]["Parameters"]
    name = NAMING.name("pipeline-with-secrets-shell-job-definition")
    definitions = secrets_shared.find_resources("AWS::Batch::JobDefinition")
    [(own_id, own)] = [(k, d) for k, d in definitions.items() if d["Properties"]["JobDefinitionName"] == name]
    assert load["JobDefinition"] == name  # the pipeline's own job definition, not the shared one
    environment = {e["Name"]: e.get("Value", e.get("Value.$")) for e in load["ContainerOverrides"]["Environment"]}
    assert environment["myWord"] == "$.parameters.myWord"
    assert constant(asl, environment["DATAPIPE_COMMAND"]) == 'load --password="${myDbPassword}" --table "${myWord}"'
    parameter_arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db/password"
    assert own["Properties"]["ContainerProperties"]["Secrets"] == [{"Name": "myDbPassword", "ValueFrom": parameter_arn}]
    assert len(definitions) == 2 and all("Secrets" not in d["Properties"]["ContainerProperties"]
                                         for k, d in definitions.items() if k != own_id)
    role = own["Properties"]["ContainerProperties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    [policy] = [p["Properties"] for p in secrets_shared.find_resources("AWS::IAM::Policy").values()
                if p["Properties"]["Roles"] == [{"Ref": role}]]
    reads = [s for s in policy["PolicyDocument"]["Statement"] if "ssm:GetParameter" in s["Action"]]
    assert [s["Resource"] for s in reads] == [parameter_arn]  # Batch reads this one secret with that role


def test_each_consumer_may_read_only_the_secrets_its_pipelines_name(secrets_shared: Template) -> None:
    runner = secrets_shared.find_resources("AWS::IAM::ManagedPolicy", {
        "Properties": {"ManagedPolicyName": NAMING.name("taskrunner-wg-12345-secrets")}})
    [policy] = [p["Properties"] for p in runner.values()]
    assert policy["Roles"] == [NAMING.name("taskrunner-wg-12345")]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/api-token-??????"
    instance = [p for key, p in secrets_shared.find_resources("AWS::IAM::Policy").items()
                if "EmrRolesInstanceRole" in key]
    statements = json.dumps(instance[0]["Properties"]["PolicyDocument"]["Statement"])
    assert "secretsmanager:GetSecretValue" in statements and "prod/api-token-??????" in statements
    assert "prod/db/password" not in statements  # the Batch job's secret is not the cluster's


def test_an_emr_command_step_reads_its_secret_on_the_cluster(secrets_template: Template) -> None:
    asl = definition(secrets_template, "pipeline-with-secrets")
    states = all_states(asl["States"])
    assert states["Run_Crunch_pre_1"]["Parameters"]["Step"]["HadoopJarStep"]["Args.$"] == "$.stepArgs.Crunch_pre_1.args"
    args = states["Prepare_Crunch_pre_1"]["Parameters"]["args.$"].removeprefix("States.Array(").removesuffix(")")
    bash, dash_c, script, name = (constant(asl, path) for path in args.split(", "))
    assert (bash, dash_c, name) == ("bash", "-c", "datapipe")
    assert script == ('myToken="$(aws secretsmanager get-secret-value --secret-id prod/api-token --query SecretString '
                      '--output text)" || exit 1\nexport myToken\nlogin "${myToken}" "$@"')


def test_the_templates_with_secrets_are_cfn_lint_clean(
    secrets_templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    import subprocess
    import sys

    paths = []
    for stack, template in secrets_templates.items():
        paths.append(tmp_path / f"{stack}.template.json")
        paths[-1].write_text(json.dumps(template))
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable",
                             *map(str, paths)], capture_output=True, text=True)
    assert result.returncode in (0, 8), result.stdout + result.stderr  # informational findings only


def test_no_secret_and_no_starter_value_is_shell_text_in_the_template(
    secrets_template: Template, secrets_templates: dict[str, dict[str, Any]]
) -> None:
    template = json.dumps(secrets_templates)
    assert SECRET_TEXT not in template and "$.parameters.myWord" in template
    asl = definition(secrets_template, "pipeline-with-secrets")
    for state in all_states(asl["States"]).values():
        for key, value in state.get("Parameters", {}).items():
            if key in ("command.$",):
                assert value.startswith("$.const."), (key, value)


# -- many pipelines: a stack each, a stable assignment, one pipeline alone --------------------------------------------


def where_each_pipeline_is(templates: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """State machine name -> (the stack it is in, its logical id, that stack's template)."""
    found = {}
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                name = resource["Properties"]["StateMachineName"]
                assert name not in found, f"{name} is in two stacks"
                found[name] = (stack, logical_id, template)
    return found


@pytest.fixture(scope="module")
def six_pipelines(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> dict[str, Any]:
    from bench.pipelines_scale import write_definitions

    folder = tmp_path_factory.mktemp("six")
    write_definitions(folder / "definitions", 6)
    pipeline_app(folder / "definitions", folder / "out", cdk_json_context).synth()
    return {"folder": folder, "templates": synthesized(folder / "out")}


def test_each_pipeline_is_a_stack_named_after_it_beside_one_shared_stack(six_pipelines: dict[str, Any]) -> None:
    templates = six_pipelines["templates"]
    assert sorted(templates) == ["Pipeline-scale-0000", "Pipeline-scale-0001", "Pipeline-scale-0002",
                                 "Pipeline-scale-0003", "Pipeline-scale-0004", "Pipeline-scale-0005", "Pipelines"]
    placed = where_each_pipeline_is(templates)
    assert {name: stack for name, (stack, _, _) in placed.items()} == {
        NAMING.state_machine(f"pipeline-scale-000{i}"): f"Pipeline-scale-000{i}" for i in range(6)}
    # The shared parts are there once, whatever the count: 3 of the 6 copies are the EMR example, 3 the shell one.
    shared = templates["Pipelines"]["Resources"]
    types = [r["Type"] for r in shared.values()]
    # The cluster reaper and the EMR waits (emr.waitMode=events), each with its rule.
    assert types.count("AWS::Lambda::Function") == 2 and types.count("AWS::Events::Rule") == 2
    assert types.count("AWS::Batch::JobDefinition") == 1 and types.count("AWS::IAM::InstanceProfile") == 1
    for stack, template in templates.items():
        if stack != "Pipelines":
            kinds = sorted({r["Type"] for r in template["Resources"].values()})
            assert "AWS::Lambda::Function" not in kinds and "AWS::Batch::JobDefinition" not in kinds, stack
            assert "Fn::ImportValue" not in json.dumps(template), f"{stack} depends on another stack's export"
            assert len(template["Resources"]) <= 7, (stack, kinds)


def test_adding_and_removing_a_definition_leaves_every_other_pipeline_where_it_was(
    six_pipelines: dict[str, Any], cdk_json_context: dict[str, object]
) -> None:
    from bench.pipelines_scale import write_definitions

    folder: Path = six_pipelines["folder"]
    changed = folder / "changed"
    shutil.copytree(folder / "definitions", changed)
    (changed / "scale-0002.json").unlink()
    write_definitions(changed, 1, first=6)  # sorts last; scale-0000.json sorts before it
    shutil.copy(changed / "scale-0006.json", changed / "early.json")  # sorts first
    pipeline_app(changed, folder / "out-changed", cdk_json_context).synth()
    before = where_each_pipeline_is(six_pipelines["templates"])
    after = where_each_pipeline_is(synthesized(folder / "out-changed"))
    assert set(after) - set(before) == {NAMING.state_machine("pipeline-scale-0006"),
                                        NAMING.state_machine("pipeline-early")}
    assert set(before) - set(after) == {NAMING.state_machine("pipeline-scale-0002")}
    for name in set(before) & set(after):
        stack, logical_id, template = before[name]
        assert after[name][:2] == (stack, logical_id), name
        assert after[name][2] == template, f"{stack} changed when another definition was added or removed"


def test_only_synthesizes_the_named_pipeline_and_the_unnarrowed_shared_stack(
    six_pipelines: dict[str, Any], cdk_json_context: dict[str, object], tmp_path: Path
) -> None:
    folder: Path = six_pipelines["folder"]
    pipeline_app(folder / "definitions", tmp_path / "out", cdk_json_context, only="scale-0003").synth()
    alone = synthesized(tmp_path / "out")
    assert sorted(alone) == ["Pipeline-scale-0003", "Pipelines"]
    assert alone["Pipeline-scale-0003"] == six_pipelines["templates"]["Pipeline-scale-0003"]
    # Deploying the shared stack while working on one pipeline keeps the grants every pipeline needs.
    assert alone["Pipelines"] == six_pipelines["templates"]["Pipelines"]
    with pytest.raises(DatapipeError, match=r"^setting 'pipelines.only': no definition named scale-0099 in "
                       r"definitions/ \(names: scale-0000, scale-0001, "):
        pipeline_app(folder / "definitions", tmp_path / "out-missing", cdk_json_context, only="scale-0099")


def test_two_definitions_with_one_name_are_refused_naming_both(
    tmp_path: Path, cdk_json_context: dict[str, object]
) -> None:
    from bench.pipelines_scale import write_definitions

    write_definitions(tmp_path / "definitions", 1)
    shutil.copy(tmp_path / "definitions" / "scale-0000.json", tmp_path / "definitions" / "Scale_0000.json")
    with pytest.raises(DatapipeError, match=r"^pipelines Scale_0000.json and scale-0000.json would both be named "
                       r"'scale-0000'"):
        pipeline_app(tmp_path / "definitions", tmp_path / "out", cdk_json_context)


@pytest.mark.parametrize("value", ["../etc", "My Pipeline", "a" * 3 + "--b", "x;rm"])
def test_a_bad_only_value_is_one_line_and_exit_2_from_the_cli(value: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([str(Path(sys.executable).with_name("datapipe")), "synth", "-o", str(tmp_path),
                             "-c", f"pipelines.only={value}"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: synth failed: setting 'pipelines.only' ") and result.stderr.count(
        "\n") == 1, result.stderr
