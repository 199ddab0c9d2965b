"""Triggers and alerts: EventBridge starts workflows on schedules and on new objects; failures reach an SNS topic.

Workflows are addressed by name through `Naming`, so this stack needs no object of the stacks that define them:
a schedule or rule whose workflow is not deployed simply fails its starts into the dead-letter queue.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from datapipe.naming import Naming
from stacks.common import reaper_dead_letter_queue_name
from stacks.config import ObjectCreatedRuleSettings, ScheduleSettings, TriggerSettings

# Physical names are `<prefix>-<stage>-<suffix>`; the schedule group's suffix is shared with `datapipe schedule`.
ALERT_TOPIC_SUFFIX = "alerts"
DEAD_LETTER_QUEUE_SUFFIX = "trigger-dlq"
DASHBOARD_SUFFIX = "operations"
REAPER_FUNCTION_SUFFIX = "cluster-reaper"  # the EMR workflow's reaper Lambda, watched here for errors
# The reaper rules of the EMR workflow and of the pipelines stack, whose dead-letter queues are watched here by name.
REAPER_RULE_SUFFIXES = ("emr-cluster-reaper", "pipeline-cluster-reaper")
OBJECT_RULE_PREFIX = "on-"
EXECUTION_ALERT_RULE = "alert-workflow-failed"
EMR_STEP_ALERT_RULE = "alert-emr-step-failed"
EMR_CLUSTER_ALERT_RULE = "alert-emr-cluster-failed"

FAILED_EXECUTION_STATES = ["FAILED", "TIMED_OUT", "ABORTED"]
# EMR steps end in FAILED; a cluster has no FAILED state, its failure is TERMINATED_WITH_ERRORS.
FAILED_STEP_STATES = ["FAILED"]
FAILED_CLUSTER_STATES = ["TERMINATED_WITH_ERRORS"]


def schedule_name(naming: Naming, name: str) -> str:
    return naming.name(name)


def object_rule_name(naming: Naming, name: str) -> str:
    return naming.name(f"{OBJECT_RULE_PREFIX}{name}")


class Triggers(Construct):
    """Schedules and object-created rules that start workflows; alert rules, alarms and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: TriggerSettings,
        data_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._naming = naming
        self._settings = settings
        self._stack = cdk.Stack.of(self)
        self._workflows: dict[str, sfn.IStateMachine] = {}

        self.key = kms.Key(
            self,
            "AlertKey",
            description="datapipe: encrypts the alert topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # EventBridge and CloudWatch alarms publish to the encrypted topic, so they must be able to use its key.
        for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")

        self.topic = sns.Topic(
            self,
            "AlertTopic",
            topic_name=naming.name(ALERT_TOPIC_SUFFIX),
            display_name="datapipe alerts",
            master_key=self.key,
            enforce_ssl=True,
            signature_version="2",
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsOfThisAccountPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self._stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        if settings.alert_email:
            self.topic.add_subscription(sns_subscriptions.EmailSubscription(settings.alert_email))

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=naming.name(DEAD_LETTER_QUEUE_SUFFIX),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=removal_policy,
        )
        cdk.Validations.of(self.dead_letter_queue).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter queue of the schedules and rules; its messages are "
                "kept 14 days for inspection and an alarm fires when one arrives.",
            )
        )

        self.schedule_group = scheduler.ScheduleGroup(
            self,
            "ScheduleGroup",
            schedule_group_name=naming.schedule_group(),
            removal_policy=removal_policy,
        )
        self.schedules = {name: self._schedule(name, schedule) for name, schedule in sorted(settings.schedules.items())}
        self.object_rules = {
            name: self._object_created_rule(name, rule, data_bucket)
            for name, rule in sorted(settings.object_created.items())
        }
        self.alert_rules = self._alert_rules()
        self.alarms = self._alarms()
        self.dashboard = self._dashboard()

    # -- starting workflows ------------------------------------------------------------------------------------------

    def _workflow(self, workflow: str) -> sfn.IStateMachine:
        """The state machine of a workflow, by its physical name; one import per workflow."""
        if workflow not in self._workflows:
            arn = self._naming.state_machine_arn(
                workflow, account=self._stack.account, region=self._stack.region, partition=self._stack.partition
            )
            self._workflows[workflow] = sfn.StateMachine.from_state_machine_arn(self, f"Workflow-{workflow}", arn)
        return self._workflows[workflow]

    def _start_role(self, construct_id: str, service: str, purpose: str) -> iam.Role:
        """A role of its own per trigger, so that each may start only its own workflow."""
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal(
                service, conditions={"StringEquals": {"aws:SourceAccount": self._stack.account}}
            ),
            description=f"datapipe: {purpose}",
        )

    def _schedule(self, name: str, settings: ScheduleSettings) -> scheduler.Schedule:
        role = self._start_role(
            f"Schedule-{name}-Role", "scheduler.amazonaws.com", f"schedule {name} starts {settings.workflow}"
        )
        target = scheduler_targets.StepFunctionsStartExecution(
            self._workflow(settings.workflow),
            input=scheduler.ScheduleTargetInput.from_object(json.loads(settings.input)),
            role=role,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=self._settings.retry_attempts,
            max_event_age=cdk.Duration.minutes(self._settings.max_event_age_minutes),
        )
        window = (
            scheduler.TimeWindow.flexible(cdk.Duration.minutes(settings.flexible_window_minutes))
            if settings.flexible_window_minutes
            else scheduler.TimeWindow.off()
        )
        return scheduler.Schedule(
            self,
            f"Schedule-{name}",
            schedule_name=schedule_name(self._naming, name),
            schedule_group=self.schedule_group,
            schedule=scheduler.ScheduleExpression.expression(settings.expression, cdk.TimeZone.of(settings.time_zone)),
            time_window=window,
            target=target,
            enabled=settings.enabled,
            description=f"datapipe: starts {settings.workflow} {settings.expression} ({settings.time_zone})",
        )

    def _object_created_rule(
        self, name: str, settings: ObjectCreatedRuleSettings, data_bucket: s3.IBucket
    ) -> events.Rule:
        role = self._start_role(
            f"ObjectRule-{name}-Role",
            "events.amazonaws.com",
            f"objects under {settings.prefix} start {settings.workflow}",
        )
        created_object = {
            "Bucket": events.EventField.from_path("$.detail.bucket.name"),
            "Key": events.EventField.from_path("$.detail.object.key"),
            "Size": events.EventField.from_path("$.detail.object.size"),
            "ETag": events.EventField.from_path("$.detail.object.etag"),
            "Time": events.EventField.time,
        }
        rule = events.Rule(
            self,
            f"ObjectRule-{name}",
            rule_name=object_rule_name(self._naming, name),
            description=f"datapipe: an object created under {settings.prefix} starts {settings.workflow}",
            enabled=settings.enabled,
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {"key": [{"prefix": settings.prefix}]},
                },
            ),
        )
        rule.add_target(
            events_targets.SfnStateMachine(
                self._workflow(settings.workflow),
                input=events.RuleTargetInput.from_object({**json.loads(settings.input), "Object": created_object}),
                role=role,
                **self._target_delivery(),
            )
        )
        return rule

    def _target_delivery(self) -> dict[str, Any]:
        """Retry policy and dead-letter queue shared by every rule target."""
        return {
            "dead_letter_queue": self.dead_letter_queue,
            "retry_attempts": self._settings.retry_attempts,
            "max_event_age": cdk.Duration.minutes(self._settings.max_event_age_minutes),
        }

    # -- alerts ------------------------------------------------------------------------------------------------------

    def _alert_rules(self) -> dict[str, events.Rule]:
        region = events.EventField.region
        detail = events.EventField.from_path
        our_state_machines = self._naming.state_machine_arn(
            "", account=self._stack.account, region=self._stack.region, partition=self._stack.partition
        )
        execution_link = (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{detail('$.detail.executionArn')}"
        )
        cluster_link = (
            f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
            f"#/clusterDetails/{detail('$.detail.clusterId')}"
        )
        alerts = {
            EXECUTION_ALERT_RULE: (
                "a workflow execution failed, timed out or was aborted",
                events.EventPattern(
                    source=["aws.states"],
                    detail_type=["Step Functions Execution Status Change"],
                    detail={"status": FAILED_EXECUTION_STATES, "stateMachineArn": [{"prefix": our_state_machines}]},
                ),
                f"datapipe: execution {detail('$.detail.name')} of workflow {detail('$.detail.stateMachineArn')} "
                f"{detail('$.detail.status')}: error {detail('$.detail.error')}, cause {detail('$.detail.cause')} "
                f"{execution_link}",
            ),
            EMR_STEP_ALERT_RULE: (
                "an EMR step failed",
                events.EventPattern(
                    source=["aws.emr"], detail_type=["EMR Step Status Change"], detail={"state": FAILED_STEP_STATES}
                ),
                f"datapipe: EMR step {detail('$.detail.name')} ({detail('$.detail.stepId')}) of cluster "
                f"{detail('$.detail.clusterId')} {detail('$.detail.state')}: cause {detail('$.detail.message')} "
                f"{cluster_link}",
            ),
            EMR_CLUSTER_ALERT_RULE: (
                "an EMR cluster terminated with errors",
                events.EventPattern(
                    source=["aws.emr"],
                    detail_type=["EMR Cluster State Change"],
                    detail={"state": FAILED_CLUSTER_STATES},
                ),
                f"datapipe: EMR cluster {detail('$.detail.name')} ({detail('$.detail.clusterId')}) "
                f"{detail('$.detail.state')}: cause {detail('$.detail.message')} {cluster_link}",
            ),
        }
        rules = {}
        for suffix, (description, pattern, message) in alerts.items():
            rule = events.Rule(
                self,
                f"AlertRule-{suffix}",
                rule_name=self._naming.name(suffix),
                description=f"datapipe: tells the alert topic when {description}",
                event_pattern=pattern,
            )
            rule.add_target(
                events_targets.SnsTopic(
                    self.topic, message=events.RuleTargetInput.from_text(message), **self._target_delivery()
                )
            )
            rules[suffix] = rule
        return rules

    # -- alarms and dashboard ----------------------------------------------------------------------------------------

    def _workflow_metric(self, workflow: str, metric_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/States",
            metric_name=metric_name,
            dimensions_map={"StateMachineArn": self._workflow(workflow).state_machine_arn},
            statistic="Sum",
            period=cdk.Duration.minutes(5),
            label=f"{workflow} {metric_name}",
        )

    def _reaper_errors(self) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions_map={"FunctionName": self._naming.name(REAPER_FUNCTION_SUFFIX)},
            statistic="Sum",
            period=cdk.Duration.minutes(5),
            label="cluster reaper errors",
        )

    @staticmethod
    def _reaper_dead_letters(queue_name: str) -> cloudwatch.Metric:
        """Events waiting in a reaper's dead-letter queue (in another stack, so addressed by name)."""
        return cloudwatch.Metric(
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions_map={"QueueName": queue_name},
            statistic="Maximum",
            period=cdk.Duration.minutes(5),
            label=f"{queue_name} messages",
        )

    def _alarm(self, construct_id: str, suffix: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=self._naming.name(suffix),
            alarm_description=f"datapipe: {description}",
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No data means nothing ran, which is not a failure.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm

    def _alarms(self) -> dict[str, cloudwatch.Alarm]:
        alarms: dict[str, cloudwatch.Alarm] = {}
        for workflow in self._settings.workflows:
            failed = cloudwatch.MathExpression(
                expression="failed + timedOut",
                using_metrics={
                    "failed": self._workflow_metric(workflow, "ExecutionsFailed"),
                    "timedOut": self._workflow_metric(workflow, "ExecutionsTimedOut"),
                },
                label=f"{workflow} failed or timed out",
                period=cdk.Duration.minutes(5),
            )
            alarms[f"{workflow}-failed"] = self._alarm(
                f"FailedAlarm-{workflow}", f"{workflow}-failed", failed, f"executions of {workflow} failed or timed out"
            )
            alarms[f"{workflow}-throttled"] = self._alarm(
                f"ThrottledAlarm-{workflow}",
                f"{workflow}-throttled",
                self._workflow_metric(workflow, "ExecutionThrottled"),
                f"starts or state transitions of {workflow} were throttled",
            )
        alarms["reaper-errors"] = self._alarm(
            "ReaperErrorsAlarm", "reaper-errors", self._reaper_errors(), "the cluster reaper failed"
        )
        for rule_suffix in REAPER_RULE_SUFFIXES:
            queue_name = reaper_dead_letter_queue_name(self._naming.name(rule_suffix))
            alarms[f"{rule_suffix}-dlq"] = self._alarm(
                f"ReaperDeadLetterAlarm-{rule_suffix}",
                f"{rule_suffix}-dlq",
                self._reaper_dead_letters(queue_name),
                f"a cluster reap failed and waits in {queue_name}: its cluster may still be running",
            )
        alarms["trigger-dlq"] = self._alarm(
            "DeadLetterAlarm",
            "trigger-dlq",
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=cdk.Duration.minutes(5)
            ),
            "a schedule or rule could not deliver (see the trigger dead-letter queue)",
        )
        return alarms

    def _dashboard(self) -> cloudwatch.Dashboard:
        workflow_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"{workflow} executions",
                left=[
                    self._workflow_metric(workflow, name)
                    for name in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")
                ],
                right=[self._workflow_metric(workflow, "ExecutionThrottled")],
                width=12,
            )
            for workflow in self._settings.workflows
        ]
        trigger_rules = [*self.object_rules.values(), *self.alert_rules.values()]
        delivery_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Rule deliveries",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Events",
                        metric_name=metric_name,
                        dimensions_map={"RuleName": rule.rule_name},
                        statistic="Sum",
                        period=cdk.Duration.minutes(5),
                    )
                    for rule in trigger_rules
                    for metric_name in ("Invocations", "FailedInvocations")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead letters and reaper errors",
                left=[
                    self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=cdk.Duration.minutes(5)
                    ),
                    *(
                        self._reaper_dead_letters(reaper_dead_letter_queue_name(self._naming.name(rule_suffix)))
                        for rule_suffix in REAPER_RULE_SUFFIXES
                    ),
                ],
                right=[self._reaper_errors()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Schedule deliveries",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Scheduler",
                        metric_name=metric_name,
                        dimensions_map={"ScheduleGroup": self.schedule_group.schedule_group_name},
                        statistic="Sum",
                        period=cdk.Duration.minutes(5),
                    )
                    for metric_name in (
                        "InvocationAttemptCount",
                        "TargetErrorCount",
                        "InvocationsSentToDeadLetterCount",
                    )
                ],
                width=12,
            ),
        ]
        return cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self._naming.name(DASHBOARD_SUFFIX),
            widgets=[
                [cloudwatch.AlarmStatusWidget(title="datapipe alarms", alarms=list(self.alarms.values()), width=24)],
                workflow_widgets,
                delivery_widgets,
            ],
        )


class TriggersStack(cdk.Stack):
    """The deployable unit for Triggers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: TriggerSettings,
        data_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.triggers = Triggers(
            self,
            "Triggers",
            naming=naming,
            settings=settings,
            data_bucket=data_bucket,
            removal_policy=removal_policy,
        )
