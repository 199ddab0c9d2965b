"""The Triggers stack: schedules and rules that start workflows, alert rules, topic, queue, alarms and dashboard."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from datapipe.naming import Naming

ACCOUNT, REGION = "123456789012", "eu-west-1"
NAMING = Naming()


def arn_of(workflow: str) -> str:
    return NAMING.state_machine_arn(workflow, account=ACCOUNT, region=REGION)


@pytest.fixture(scope="module")
def triggers(template_of: Callable[[str], Template]) -> Template:
    return template_of("Triggers")


@pytest.fixture(scope="module")
def resources(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return dict(templates["Triggers"]["Resources"])


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in resources.items() if value["Type"] == resource_type}


def role_policy_statements(resources: dict[str, dict[str, Any]], role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches, whether it has one (plain form) or several (metric math form)."""
    if "Metrics" in alarm:
        return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
    return [{key: alarm[key] for key in ("Namespace", "MetricName", "Dimensions")}]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def rule_named(resources: dict[str, dict[str, Any]], suffix: str) -> dict[str, Any]:
    rules = [
        r for r in of_type(resources, "AWS::Events::Rule").values() if r["Properties"]["Name"] == NAMING.name(suffix)
    ]
    assert len(rules) == 1, f"no single rule named {NAMING.name(suffix)}"
    return rules[0]["Properties"]


# -- schedules ------------------------------------------------------------------------------------------------------


def test_default_schedule_starts_the_emr_workflow_daily_and_is_disabled_until_enabled(triggers: Template) -> None:
    triggers.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "Name": "datapipe-dev-emr-daily",
            "GroupName": "datapipe-dev-schedules",
            "ScheduleExpression": "cron(0 2 * * ? *)",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            "State": "DISABLED",
            "Target": {
                "Arn": arn_of("emr-workflow"),
                "Input": json.dumps({"CreateCluster": True, "TerminateCluster": True}, separators=(",", ":")),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 86400},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("DeadLetterQueue"), "Arn"]}},
            },
        },
    )
    triggers.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": "datapipe-dev-schedules"})


def test_a_schedule_role_may_start_only_its_workflow_and_is_assumable_only_by_the_scheduler_of_this_account(
    resources: dict[str, dict[str, Any]],
) -> None:
    schedules = of_type(resources, "AWS::Scheduler::Schedule")
    assert schedules
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        trust = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ]
        statements = role_policy_statements(resources, role_id)
        starts = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
        assert [s["Resource"] for s in starts] == [target["Arn"]]
        others = [s for s in statements if s not in starts]
        assert [(s["Action"], s["Resource"]) for s in others] == [
            ("sqs:SendMessage", target["DeadLetterConfig"]["Arn"])
        ]


# -- object-created rules -------------------------------------------------------------------------------------------


def test_an_object_created_under_the_watched_prefix_of_the_data_bucket_starts_the_transform(
    resources: dict[str, dict[str, Any]], templates: dict[str, dict[str, Any]]
) -> None:
    rule = rule_named(resources, "on-incoming")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
    # The bucket is the data bucket of the storage stack, by reference (not by a guessed name).
    (bucket_reference,) = pattern["detail"]["bucket"]["name"]
    assert "DataBucket" in json.dumps(bucket_reference)
    data_bucket = templates["Storage"]["Resources"]
    notification = next(
        r for k, r in data_bucket.items() if k.startswith("StorageDataBucket") and r["Type"] == "AWS::S3::Bucket"
    )
    assert notification["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert rule["State"] == "DISABLED", "off until configured with an input the transform accepts"

    (target,) = rule["Targets"]
    assert target["Arn"] == arn_of("transform")
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"]["detail-object-key"] == "$.detail.object.key"
    assert transformer["InputPathsMap"]["detail-bucket-name"] == "$.detail.bucket.name"
    # Filled with sample values the way EventBridge does, the template is the JSON input of the execution.
    sample = {"detail-object-key": '"incoming/day=1/part-0.csv"', "detail-bucket-name": '"data"', "time": '"t"'}
    sample |= {"detail-object-size": "42", "detail-object-etag": '"abc"'}
    filled = transformer["InputTemplate"]
    for placeholder, value in sample.items():
        filled = filled.replace(f"<{placeholder}>", value)
    assert json.loads(filled)["Object"] == {
        "Bucket": "data",
        "Key": "incoming/day=1/part-0.csv",
        "Size": 42,
        "ETag": "abc",
        "Time": "t",
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 86400}
    assert "DeadLetterQueue" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]

    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    principal = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "events.amazonaws.com"}
    statements = role_policy_statements(resources, role_id)
    assert [(s["Action"], s["Resource"]) for s in statements] == [("states:StartExecution", arn_of("transform"))]


def test_no_role_or_policy_of_the_stack_may_start_any_state_machine_by_wildcard(
    resources: dict[str, dict[str, Any]],
) -> None:
    documents = [p["Properties"]["PolicyDocument"] for p in of_type(resources, "AWS::IAM::Policy").values()]
    documents += [
        policy["PolicyDocument"]
        for role in of_type(resources, "AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ]
    start_statements = [
        statement
        for document in documents
        for statement in document["Statement"]
        if any(action.startswith("states:") or action == "*" for action in as_list(statement["Action"]))
    ]
    assert start_statements, "expected start permissions to check"
    for statement in start_statements:
        assert as_list(statement["Action"]) == ["states:StartExecution"]
        for resource in as_list(statement["Resource"]):
            assert isinstance(resource, str) and "*" not in resource, resource
            assert resource.startswith(NAMING.state_machine_arn("", account=ACCOUNT, region=REGION))


# -- alerts ---------------------------------------------------------------------------------------------------------


def test_alert_topic_is_encrypted_with_a_rotating_key_and_refuses_plain_http(
    triggers: Template, resources: dict[str, dict[str, Any]]
) -> None:
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    topic = resources[topic_id]["Properties"]
    assert topic["TopicName"] == "datapipe-dev-alerts"
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert resources[key_id]["Properties"]["EnableKeyRotation"] is True
    # EventBridge and CloudWatch alarms publish to the topic, so they may use the key (and only for that).
    (service_use,) = [
        s for s in resources[key_id]["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]
    ]
    assert sorted(service_use["Principal"]["Service"]) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    assert sorted(service_use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    triggers.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like({"Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish"}),
                    ]
                )
            }
        },
    )
    # No e-mail address configured, no subscription.
    triggers.resource_count_is("AWS::SNS::Subscription", 0)


def test_failed_timed_out_or_aborted_executions_of_our_workflows_publish_a_readable_message(
    resources: dict[str, dict[str, Any]],
) -> None:
    rule = rule_named(resources, "alert-workflow-failed")
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
            "stateMachineArn": [{"prefix": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:datapipe-dev-"}],
        },
    }
    (target,) = rule["Targets"]
    assert "AlertTopic" in target["Arn"]["Ref"]
    message = json.loads(target["InputTransformer"]["InputTemplate"])
    assert message == (
        "datapipe: execution <detail-name> of workflow <detail-stateMachineArn> <detail-status>: "
        "error <detail-error>, cause <detail-cause> https://<region>.console.aws.amazon.com/states/home"
        "?region=<region>#/v2/executions/details/<detail-executionArn>"
    )
    assert target["InputTransformer"]["InputPathsMap"]["detail-cause"] == "$.detail.cause"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert "DeadLetterQueue" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


@pytest.mark.parametrize(
    ("suffix", "detail_type", "states"),
    [
        ("alert-emr-step-failed", "EMR Step Status Change", ["FAILED"]),
        ("alert-emr-cluster-failed", "EMR Cluster State Change", ["TERMINATED_WITH_ERRORS"]),
    ],
)
def test_emr_step_and_cluster_failures_publish_a_message_with_cause_and_link(
    resources: dict[str, dict[str, Any]], suffix: str, detail_type: str, states: list[str]
) -> None:
    rule = rule_named(resources, suffix)
    assert rule["EventPattern"] == {"source": ["aws.emr"], "detail-type": [detail_type], "detail": {"state": states}}
    (target,) = rule["Targets"]
    message = json.loads(target["InputTransformer"]["InputTemplate"])
    assert message.startswith("datapipe: EMR ")
    assert "cause <detail-message>" in message
    assert "console.aws.amazon.com/emr/home?region=<region>#/clusterDetails/<detail-clusterId>" in message


def test_dead_letter_queue_is_encrypted_tls_only_and_accepts_only_our_rules(
    resources: dict[str, dict[str, Any]],
) -> None:
    (queue_id,) = of_type(resources, "AWS::SQS::Queue")
    queue = resources[queue_id]["Properties"]
    assert queue["QueueName"] == "datapipe-dev-trigger-dlq"
    assert queue["SqsManagedSseEnabled"] is True
    (policy,) = of_type(resources, "AWS::SQS::QueuePolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [
        s.get("Condition") for s in statements if s["Effect"] == "Deny"
    ]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    rules = of_type(resources, "AWS::Events::Rule")
    assert len(allowed) == len(rules)
    assert {s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in allowed} == set(rules)


# -- alarms and dashboard -------------------------------------------------------------------------------------------


def test_alarms_on_failed_and_throttled_executions_reaper_errors_and_dead_letters_notify_the_topic(
    resources: dict[str, dict[str, Any]],
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
    }
    expected = {
        "datapipe-dev-emr-workflow-failed",
        "datapipe-dev-emr-workflow-throttled",
        "datapipe-dev-transform-failed",
        "datapipe-dev-transform-throttled",
        "datapipe-dev-reaper-errors",
        "datapipe-dev-emr-cluster-reaper-dlq",
        "datapipe-dev-pipeline-cluster-reaper-dlq",
        "datapipe-dev-trigger-dlq",
    }
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert [action["Ref"] for action in alarm["AlarmActions"]] == [
            next(iter(of_type(resources, "AWS::SNS::Topic")))
        ]
        assert alarm["TreatMissingData"] == "notBreaching"

    failed = metrics_of(alarms["datapipe-dev-emr-workflow-failed"])
    assert {m["MetricName"] for m in failed} == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert {m["Namespace"] for m in failed} == {"AWS/States"}
    for metric in failed:
        assert metric["Dimensions"] == [{"Name": "StateMachineArn", "Value": arn_of("emr-workflow")}]
    (throttled,) = metrics_of(alarms["datapipe-dev-transform-throttled"])
    assert (throttled["Namespace"], throttled["MetricName"]) == ("AWS/States", "ExecutionThrottled")
    assert throttled["Dimensions"] == [{"Name": "StateMachineArn", "Value": arn_of("transform")}]
    (reaper,) = metrics_of(alarms["datapipe-dev-reaper-errors"])
    assert (reaper["Namespace"], reaper["MetricName"]) == ("AWS/Lambda", "Errors")
    assert reaper["Dimensions"] == [{"Name": "FunctionName", "Value": NAMING.name("cluster-reaper")}]
    (dead_letters,) = metrics_of(alarms["datapipe-dev-trigger-dlq"])
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_dashboard_shows_the_workflows_rules_and_alarms(resources: dict[str, dict[str, Any]]) -> None:
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "datapipe-dev-operations"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for expected in (
        "emr-workflow executions",
        "transform executions",
        "ExecutionThrottled",
        "FailedInvocations",
        "InvocationsSentToDeadLetterCount",
        "datapipe-dev-schedules",
    ):
        assert expected in body
    assert "datapipe alarms" in body


# -- configured beyond the defaults ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def configured() -> dict[str, dict[str, Any]]:
    """The Triggers construct alone, in a bare stack, with settings a user might write (no whole-app synth)."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from app import cdk_json_context
    from stacks.config import load_settings
    from stacks.triggers import TriggersStack

    settings = load_settings(
        {
            "triggers.schedules": json.dumps(
                {
                    "emr-daily": {"enabled": True, "timeZone": "Europe/Paris", "flexibleWindowMinutes": 0},
                    "hourly-report": {"workflow": "report", "expression": "rate(1 hour)", "input": '{"Depth": 2}'},
                }
            ),
            "triggers.objectCreated": json.dumps(
                {"landing": {"prefix": "landing/csv/", "workflow": "pipeline-copy", "input": '{"Mode": "append"}'}}
            ),
            "triggers.alertEmail": "data-team@example.com",
            "triggers.monitoredWorkflows": "emr-workflow",
        }
    )
    app = cdk.App(context=cdk_json_context())
    elsewhere = cdk.Stack(app, "Elsewhere", env=cdk.Environment(account=ACCOUNT, region=REGION))
    stack = TriggersStack(
        app,
        "ConfiguredTriggers",
        env=cdk.Environment(account=ACCOUNT, region=REGION),
        naming=NAMING,
        settings=settings.triggers,
        data_bucket=s3.Bucket(elsewhere, "Data"),  # plain: cdk-nag is not registered on this app
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    return dict(Template.from_stack(stack).to_json()["Resources"])


def test_each_configured_schedule_gets_its_expression_time_zone_window_input_and_a_role_for_its_workflow_only(
    configured: dict[str, dict[str, Any]],
) -> None:
    schedules = {
        s["Properties"]["Name"]: s["Properties"] for s in of_type(configured, "AWS::Scheduler::Schedule").values()
    }
    assert set(schedules) == {"datapipe-dev-emr-daily", "datapipe-dev-hourly-report"}
    daily, hourly = schedules["datapipe-dev-emr-daily"], schedules["datapipe-dev-hourly-report"]
    assert (daily["State"], daily["ScheduleExpressionTimezone"], daily["FlexibleTimeWindow"]) == (
        "ENABLED",
        "Europe/Paris",
        {"Mode": "OFF"},
    )
    assert (hourly["ScheduleExpression"], hourly["Target"]["Arn"], hourly["Target"]["Input"]) == (
        "rate(1 hour)",
        arn_of("report"),
        '{"Depth":2}',
    )
    roles = {s["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules.values()}
    assert len(roles) == 2, "each schedule has a role of its own"
    for schedule in schedules.values():
        statements = role_policy_statements(configured, schedule["Target"]["RoleArn"]["Fn::GetAtt"][0])
        starts = [s["Resource"] for s in statements if s["Action"] == "states:StartExecution"]
        assert starts == [schedule["Target"]["Arn"]]


def test_a_configured_rule_merges_its_static_input_with_the_created_object(
    configured: dict[str, dict[str, Any]],
) -> None:
    rule = rule_named(configured, "on-landing")
    assert rule["State"] == "ENABLED", "a rule a user configures is on unless it says otherwise"
    assert rule["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "landing/csv/"}]}
    assert "Data" in json.dumps(rule["EventPattern"]["detail"]["bucket"]["name"])
    (target,) = rule["Targets"]
    assert target["Arn"] == arn_of("pipeline-copy")
    template = target["InputTransformer"]["InputTemplate"]
    assert template.startswith('{"Mode":"append","Object":{"Bucket":<detail-bucket-name>,"Key":<detail-object-key>')


def test_alert_email_subscribes_and_alarms_follow_every_workflow_that_is_started_or_watched(
    configured: dict[str, dict[str, Any]],
) -> None:
    (subscription,) = of_type(configured, "AWS::SNS::Subscription").values()
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email",
        "data-team@example.com",
    )
    names = {a["Properties"]["AlarmName"] for a in of_type(configured, "AWS::CloudWatch::Alarm").values()}
    for workflow in ("emr-workflow", "report", "pipeline-copy"):
        assert {f"datapipe-dev-{workflow}-failed", f"datapipe-dev-{workflow}-throttled"} <= names
    assert "datapipe-dev-transform-failed" not in names


def test_the_reaper_alarm_watches_the_function_the_emr_workflow_stack_deploys(
    resources: dict[str, dict[str, Any]], templates: dict[str, dict[str, Any]]
) -> None:
    functions = [
        r["Properties"].get("FunctionName")
        for r in templates["EmrWorkflow"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    (reaper_alarm,) = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "datapipe-dev-reaper-errors"
    ]
    (watched,) = metrics_of(reaper_alarm)
    assert watched["Dimensions"][0]["Value"] in functions


# -- the cluster reapers' rules (stacks/common.py reaper_rule, used by the EMR workflow and pipelines stacks) ---------

REAPER_RULES = {"EmrWorkflow": "emr-cluster-reaper", "Pipelines": "pipeline-cluster-reaper"}


def reaper_delivery(template: dict[str, Any], rule_suffix: str) -> tuple[dict[str, Any], str, str]:
    """The reaper rule's target, the logical id of the reaper function and of the rule's dead-letter queue."""
    resources = template["Resources"]
    (target,) = rule_named(resources, rule_suffix)["Targets"]
    return target, target["Arn"]["Fn::GetAtt"][0], target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


@pytest.mark.parametrize(("stack", "rule_suffix"), sorted(REAPER_RULES.items()))
def test_a_reap_that_fails_is_retried_and_then_kept_in_an_encrypted_tls_only_queue(
    templates: dict[str, dict[str, Any]], stack: str, rule_suffix: str
) -> None:
    resources = templates[stack]["Resources"]
    target, function_id, queue_id = reaper_delivery(templates[stack], rule_suffix)
    # EventBridge retries a call that Lambda refused for 6 hours (8 attempts), then keeps the event.
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 6 * 3600}
    queue = resources[queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["QueueName"] == NAMING.name(f"{rule_suffix}-dlq")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Lambda calls the reaper asynchronously: when the reaper itself keeps failing, the event goes to the same queue.
    function = resources[function_id]["Properties"]
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    role_id = function["Role"]["Fn::GetAtt"][0]
    sends = [
        s
        for s in role_policy_statements(resources, role_id)
        if "sqs:SendMessage" in as_list(s["Action"]) and s["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert sends, "the reaper's role may not send to its dead-letter queue"
    (queue_policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in queue_policy
    )
    (from_rule,) = [s for s in queue_policy if s["Effect"] == "Allow"]
    assert from_rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert from_rule["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][1] == "Arn"


def test_each_reaper_dead_letter_queue_has_an_alarm_that_notifies_the_topic(
    resources: dict[str, dict[str, Any]], templates: dict[str, dict[str, Any]]
) -> None:
    """The queues live in their reapers' stacks; the alarms here find them by name, so the names must agree."""
    queue_names = {
        templates[stack]["Resources"][reaper_delivery(templates[stack], suffix)[2]]["Properties"]["QueueName"]
        for stack, suffix in REAPER_RULES.items()
    }
    watched: dict[str, list[Any]] = {}
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        for metric in metrics_of(alarm["Properties"]):
            if (metric["Namespace"], metric["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
                (dimension,) = metric["Dimensions"]
                # The trigger queue of this stack is referenced (GetAtt); queues of other stacks are named.
                if isinstance(dimension["Value"], str):
                    watched[dimension["Value"]] = alarm["Properties"]["AlarmActions"]
    topic = next(iter(of_type(resources, "AWS::SNS::Topic")))
    for queue_name in queue_names:
        assert watched.get(queue_name) == [{"Ref": topic}], f"no alarm tells the topic about {queue_name}"


# -- settings -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"triggers.schedules": '{"Nightly": {}}'},
            "setting 'triggers.schedules.Nightly': the name must be lower-case letters, digits and dashes",
        ),
        (
            {"triggers.schedules": '{"nightly": {"timeZone": "Paris"}}'},
            "setting 'triggers.schedules.nightly.timeZone' must be an IANA time zone such as Europe/Paris, got 'Paris'",
        ),
        (
            {"triggers.schedules": '{"nightly": {"expression": "cron(0 2 * *)"}}'},
            "setting 'triggers.schedules.nightly.expression' must be cron(6 fields), rate(N unit) or at(time), "
            "got 'cron(0 2 * *)'",
        ),
        (
            {"triggers.schedules": '{"nightly": {"input": "[true]"}}'},
            "setting 'triggers.schedules.nightly.input' must be a JSON object, got '[true]'",
        ),
        (
            {"triggers.schedules": '{"nightly": {"input": "{CreateCluster: true}"}}'},
            "setting 'triggers.schedules.nightly.input' (a JSON object) is not JSON: Expecting property name "
            "enclosed in double quotes at line 1 column 2",
        ),
        (
            {"triggers.schedules": '{"nightly": {"flexibleWindowMinutes": 2000}}'},
            "setting 'triggers.schedules.nightly.flexibleWindowMinutes' must be between 0 and 1440, got 2000",
        ),
        (
            {"triggers.schedules": '{"nightly": {"workflow": "EMR"}}'},
            "setting 'triggers.schedules.nightly.workflow' must be a workflow name such as emr-workflow, got 'EMR'",
        ),
        (
            {"triggers.objectCreated": '{"landing": {"prefix": "/landing/"}}'},
            "setting 'triggers.objectCreated.landing.prefix' must be an S3 key prefix, got '/landing/'",
        ),
        (
            {"triggers.objectCreated": '{"landing": {"when": "now"}}'},
            "unknown setting 'triggers.objectCreated.landing.when'; allowed here: enabled, input, prefix, workflow",
        ),
        ({"triggers.alertEmail": "ops"}, "setting 'triggers.alertEmail' must be an e-mail address, got 'ops'"),
        (
            {"triggers.retryAttempts": "200"},
            "setting 'triggers.retryAttempts' must be between 0 and 185, got 200",
        ),
    ],
)
def test_bad_trigger_settings_are_refused_in_one_line_naming_the_key(context: dict[str, str], message: str) -> None:
    from stacks.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as raised:
        load_settings(context)
    assert str(raised.value) == message


def test_a_configured_entry_keeps_the_defaults_it_does_not_mention() -> None:
    from stacks.config import load_settings

    triggers = load_settings({"triggers.schedules": '{"emr-daily": {"enabled": true}}'}).triggers
    daily = triggers.schedules["emr-daily"]
    assert (daily.enabled, daily.workflow, daily.expression, daily.time_zone) == (
        True,
        "emr-workflow",
        "cron(0 2 * * ? *)",
        "UTC",
    )
    assert json.loads(daily.input) == {"CreateCluster": True, "TerminateCluster": True}
    assert triggers.workflows == ("emr-workflow", "transform")
