"""Pieces every stack uses: ARNs as cdk-nag prints them, acknowledgments, bucket ARNs, the DependsOn clean-up,
logged state machines, Powertools Lambda functions, the rule that calls the cluster reaper and the key that
encrypts a stack's log groups.
"""

from __future__ import annotations

import shutil
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from datapipe.errors import DatapipeError
from datapipe.naming import Naming

LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"
SOURCE_DIR = Path(__file__).resolve().parents[1] / "src"
POWERTOOLS_LAYER = (
    "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:"
)
# Our bucket names carry the account and region as pseudo parameters, which cdk-nag prints like this.
NAG_ACCOUNT_ID = "<AWS::AccountId>"
NAG_REGION = "<AWS::Region>"
NAG_PARTITION = "<AWS::Partition>"
# What CloudWatch Logs needs of a key that encrypts a log group (AWS: "Encrypt log data in CloudWatch Logs").
LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
LOG_KEY_ID = "LogKey"
# How long a failed reap waits in its dead-letter queue (the SQS maximum).
REAPER_DEAD_LETTER_RETENTION = cdk.Duration.days(14)


def nag_account(scope: Construct) -> str:
    """The stack's account as cdk-nag prints it: literal where the environment is known."""
    account = cdk.Stack.of(scope).account
    return NAG_ACCOUNT_ID if cdk.Token.is_unresolved(account) else account


def nag_arn(scope: Construct, service: str, resource: str) -> str:
    """An ARN of the stack's account and region as cdk-nag prints it: literal where the environment is known."""
    stack = cdk.Stack.of(scope)

    def shown(value: str, pseudo: str) -> str:
        return pseudo if cdk.Token.is_unresolved(value) else value

    partition = shown(stack.partition, NAG_PARTITION)
    region, account = shown(stack.region, NAG_REGION), shown(stack.account, NAG_ACCOUNT_ID)
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def bucket_arn(bucket_name: str) -> str:
    return f"arn:{cdk.Aws.PARTITION}:s3:::{bucket_name}"


def nag_bucket_arn(bucket_name: str) -> str:
    return f"arn:{NAG_PARTITION}:s3:::{bucket_name}"


def own_bucket_arn(naming: Naming, purpose: str) -> str:
    """The ARN of one of Storage's buckets, by name rather than by a cross-stack reference, so that policies (and
    their acknowledgments) read the same in every account.
    """
    return bucket_arn(naming.bucket(purpose, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION))


def nag_own_bucket_arn(naming: Naming, purpose: str) -> str:
    """`own_bucket_arn` as cdk-nag prints it."""
    return nag_bucket_arn(naming.bucket(purpose, NAG_ACCOUNT_ID, NAG_REGION))


def acknowledge_wildcards(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    """Acknowledge AwsSolutions-IAM5 for each wildcard resource (as cdk-nag prints it), with its reason."""
    for resource, reason in reasons.items():
        cdk.Validations.of(construct).acknowledge(
            cdk.Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
        )


def depend_on_policy_only(user: Construct, role: iam.IRole | None) -> None:
    """Wait for the role's policy only: GetAtt of the role already orders the role first (cfn-lint W3005)."""
    policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
    if policy is not None:
        resource = typing.cast(cdk.CfnResource, user.node.default_child)
        policy_resource = typing.cast(cdk.CfnResource, policy.node.default_child)
        resource.add_override("DependsOn", [cdk.Stack.of(user).get_logical_id(policy_resource)])


def logged_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    state_machine_name: str,
    definition: sfn.IChainable,
    removal_policy: cdk.RemovalPolicy,
    log_group_id: str = "Logs",
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    **props: Any,
) -> sfn.StateMachine:
    """A traced state machine that logs every event (with data) to a log group of its own."""
    log_group = logs.LogGroup(
        scope,
        log_group_id,
        log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
        retention=log_retention,
        removal_policy=removal_policy,
    )
    state_machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_name=state_machine_name,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        **props,
    )
    depend_on_policy_only(state_machine, state_machine.role)
    return state_machine


@jsii.implements(cdk.ILocalBundling)
class _HandlerWithModules:
    """Bundles a handler's folder with runtime modules at their package paths, by copying: no Docker at synth."""

    def __init__(self, folder: Path, modules: Sequence[str]) -> None:
        self.folder = folder
        self.modules = tuple(modules)

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        shutil.copytree(self.folder, output, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for module in self.modules:
            names = module.split(".")
            files = [Path(*names[:depth], "__init__.py") for depth in range(1, len(names))]
            for file in [*files, Path(*names).with_suffix(".py")]:
                (output / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(SOURCE_DIR / file, output / file)
        return True


def powertools_function(
    scope: Construct,
    construct_id: str,
    *,
    function_name: str,
    folder: str,
    description: str,
    powertools_layer_version: int,
    removal_policy: cdk.RemovalPolicy,
    id_prefix: str = "",
    modules: Sequence[str] = (),
) -> lambda_.Function:
    """A handler of lambdas/<folder> with the managed Powertools layer, tracing and a log group of its own.

    `modules` are modules of the runtime package (`datapipe.datefunctions`) that the handler imports: they must use
    the standard library only, and ship beside the handler at their package path, so that the function and the CLI
    run one implementation. The layer and log group are `<id_prefix>Powertools` and `<id_prefix>Logs`. Call
    `depend_on_policy_only` once the function's grants are added.
    """
    layer = lambda_.LayerVersion.from_layer_version_arn(
        scope, f"{id_prefix}Powertools", cdk.Fn.sub(POWERTOOLS_LAYER + str(powertools_layer_version))
    )
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=function_name,
        description=description,
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=lambda_.Architecture.X86_64,
        # Only the function's own folder goes into the asset; Powertools comes from the managed layer.
        code=lambda_.Code.from_asset(str(LAMBDAS_DIR / folder), exclude=["__pycache__", "*.pyc"])
        if not modules else lambda_.Code.from_asset(
            str(LAMBDAS_DIR / folder), asset_hash_type=cdk.AssetHashType.OUTPUT,
            bundling=cdk.BundlingOptions(image=cdk.DockerImage.from_registry("unused-bundled-locally"),
                                         local=_HandlerWithModules(LAMBDAS_DIR / folder, modules))),
        handler="handler.handler",
        layers=[layer],
        timeout=cdk.Duration.seconds(60),
        memory_size=256,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=logs.LogGroup(
            scope,
            f"{id_prefix}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=removal_policy,
        ),
        environment={
            "POWERTOOLS_SERVICE_NAME": folder,
            "POWERTOOLS_METRICS_NAMESPACE": "datapipe",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
    )
    cdk.Validations.of(function).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            reason="AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.",
        )
    )
    cdk.Validations.of(function).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-L1",
            reason="Python 3.13 is the newest runtime the managed Powertools v3 layer is published for here.",
        )
    )
    return function


def reaper_dead_letter_queue_name(rule_name: str) -> str:
    """The queue where the events of a reaper rule land when the reaper could not be called or failed."""
    return f"{rule_name}-dlq"


def reaper_rule(
    scope: Construct,
    construct_id: str,
    *,
    rule_name: str,
    description: str,
    state_machines: list[sfn.IStateMachine],
    reaper: lambda_.Function,
    state_machine_arn_prefix: str | None = None,
) -> events.Rule:
    """Call the cluster reaper for executions that were stopped, timed out or failed: a stopped one runs no Catch.

    The rule matches the given state machines, and every state machine whose ARN starts with
    `state_machine_arn_prefix` (machines of other stacks, however many, with a pattern of constant size).

    A reap is never dropped: EventBridge retries the call and then sends the event to a dead-letter queue, and so
    does Lambda when the reaper itself keeps failing (an asynchronous call, retried twice by Lambda). The Triggers
    stack alarms on the queue by its name (`reaper_dead_letter_queue_name`).
    """
    dead_letter_queue = sqs.Queue(
        scope,
        f"{construct_id}DeadLetters",
        queue_name=reaper_dead_letter_queue_name(rule_name),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=REAPER_DEAD_LETTER_RETENTION,
    )
    cdk.Validations.of(dead_letter_queue).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="This queue is the dead-letter queue of the reaper rule and of the reaper function; its events "
            "are kept 14 days to reap by hand and an alarm (Triggers stack) fires when one arrives.",
        )
    )
    function = typing.cast(lambda_.CfnFunction, reaper.node.default_child)
    # A function has one dead-letter queue: a second rule for the same reaper keeps the first rule's queue.
    if function.dead_letter_config is None:
        function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=dead_letter_queue.queue_arn
        )
        dead_letter_queue.grant_send_messages(reaper)
    return events.Rule(
        scope,
        construct_id,
        rule_name=rule_name,
        description=description,
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={
                "status": ["ABORTED", "TIMED_OUT", "FAILED"],
                "stateMachineArn": [machine.state_machine_arn for machine in state_machines]
                + ([{"prefix": state_machine_arn_prefix}] if state_machine_arn_prefix else []),
            },
        ),
        targets=[
            targets.LambdaFunction(
                reaper,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=8,
                max_event_age=cdk.Duration.hours(6),
            )
        ],
    )


def function_by_name(scope: Construct, construct_id: str, function_name: str) -> lambda_.IFunction:
    """A function of the stack's account and region, by its name (one the pipelines stack deploys for every pipeline's
    state machine): no cross-stack reference."""
    return lambda_.Function.from_function_arn(scope, construct_id, cdk.Stack.of(scope).format_arn(
        service="lambda", resource="function", resource_name=function_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME))


def log_group_arn(scope: Construct, log_group_name: str) -> str:
    """A log group's ARN as CloudWatch Logs puts it in the encryption context (no `:*` at the end)."""
    return cdk.Stack.of(scope).format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def encrypt_log_groups(stack: cdk.Stack, *, removal_policy: cdk.RemovalPolicy) -> kms.Key | None:
    """Encrypt every log group of the stack that has no key with one customer managed key of the stack.

    One key per stack rather than one in Storage: a key ARN cannot be found by name, so a shared key would tie
    every stack to Storage's exports, and a key per stack names in its policy exactly the log groups it encrypts.
    Call it once the stack is complete. Every such log group needs a name (the policy names it).
    """
    log_groups = [
        node
        for node in stack.node.find_all()
        if isinstance(node, logs.CfnLogGroup) and cdk.Stack.of(node) is stack and node.kms_key_id is None
    ]
    if not log_groups:
        return None
    # An L2 log group without a name still has a name token, which resolves to nothing.
    unnamed = [log_group.node.path for log_group in log_groups if stack.resolve(log_group.log_group_name) is None]
    if unnamed:
        raise DatapipeError(
            f"log group {unnamed[0]} has no log_group_name: the policy of the key that encrypts it must name it"
        )
    key = logs_key(
        stack,
        LOG_KEY_ID,
        description=f"datapipe: encrypts the log groups of the {stack.node.id} stack",
        log_group_arns=[log_group_arn(stack, typing.cast(str, log_group.log_group_name)) for log_group in log_groups],
        removal_policy=removal_policy,
    )
    for log_group in log_groups:
        log_group.kms_key_id = key.key_arn
    return key


def logs_key(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    log_group_arns: list[str],
    removal_policy: cdk.RemovalPolicy,
    arn_pattern: bool = False,
) -> kms.Key:
    """A rotating customer managed key that CloudWatch Logs may use for the named log groups only (their ARNs, or
    with `arn_pattern` ARN patterns such as `...:log-group:/aws/vendedlogs/states/<prefix>-<stage>-pipeline-*`)."""
    stack = cdk.Stack.of(scope)
    key = kms.Key(
        scope, construct_id, description=description, enable_key_rotation=True, removal_policy=removal_policy
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsForTheseLogGroupsOnly",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=LOGS_KEY_ACTIONS,
            resources=["*"],
            conditions={
                "ArnLike" if arn_pattern else "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}
            },
        )
    )
    return key
