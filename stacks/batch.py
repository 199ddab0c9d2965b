"""AWS Batch for transforms: VPC choice, compute environments, job queue, roles, images, job definitions and the
transform state machine that `datapipe run --backend batch` starts.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.bundles import names
from datapipe.naming import DATA_BUCKET_PURPOSE, Naming
from stacks.common import acknowledge_wildcards, logged_state_machine, nag_arn, nag_own_bucket_arn, own_bucket_arn
from stacks.config import BatchSettings, TransformSettings

# Interface endpoints that let hosts in isolated subnets pull images, write logs and get credentials. EC2 hosts also
# run the ECS agent, which needs the three ECS endpoints; Fargate does not.
COMMON_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
ECS_AGENT_ENDPOINTS = {
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "EcsAgent": ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
    "EcsTelemetry": ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
}
# Step Functions' name for errors of the Batch API, throttling included.
BATCH_API_ERRORS = ["Batch.AWSBatchException"]
ECS_INSTANCE_POLICY = "service-role/AmazonEC2ContainerServiceforEC2Role"
VPC_CIDR = "10.64.0.0/20"
# Read and write bundle objects (multipart uploads included) and list them; no bucket configuration.
BUNDLE_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUNDLE_BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation"]
# The transform state machine's input, as `datapipe run --backend batch` sends it: texts, and two objects of texts
# (output tags, transform parameters) that go to the job as JSON text.
TRANSFORM_INPUT_TEXTS = (
    "$.jobName",
    "$.jobDefinition",
    "$.remote",
    "$.context",
    "$.input.name",
    "$.input.version",
    "$.output.name",
    "$.output.version",
)
TRANSFORM_INPUT_OBJECTS = ("$.output.tags", "$.parameters")
TRANSFORM_INPUT_FIELDS = (
    "jobName, jobDefinition, remote, context, input {name, version}, output {name, version, tags} and parameters"
)


class TransformBatch(Construct):
    """Everything a transform needs to run on AWS Batch, reading and writing bundles in the data bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: BatchSettings,
        data_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._naming = naming
        self._settings = settings
        self._removal_policy = removal_policy
        self._fargate = settings.compute == "fargate"
        # The bucket's name comes from Naming (as in the other stacks), so policies need no cross-stack reference;
        # the typed argument still orders the deployment after the bucket's.
        self._data_bucket_arn = own_bucket_arn(naming, DATA_BUCKET_PURPOSE)
        if cdk.Stack.of(data_bucket) is not cdk.Stack.of(self):
            cdk.Stack.of(self).add_stack_dependency(cdk.Stack.of(data_bucket), "transforms use the data bucket")

        self.vpc, subnets = self._network()
        self.log_group = logs.LogGroup(
            self,
            "JobLogs",
            log_group_name=names.job_log_group_name(naming),
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=removal_policy,
        )

        # The role the transform's code runs as: bundles in the data bucket, nothing else.
        self.job_role = iam.Role(
            self,
            "JobRole",
            role_name=names.job_role_name(naming),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Transforms run as this role: read and write bundles in the data bucket",
        )
        self._grant_bundles(self.job_role)

        # The role ECS uses to start the container: pull our images, write to our log group.
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            role_name=names.execution_role_name(naming),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Pulls transform images and writes their logs",
        )
        self.log_group.grant_write(self.execution_role)

        self.queue = batch.JobQueue(
            self,
            "Queue",
            job_queue_name=names.job_queue_name(naming),
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=environment, order=order)
                for order, environment in enumerate(self._compute_environments(subnets), start=1)
            ],
        )

        self.repositories: dict[str, ecr.Repository] = {}
        self.job_definitions: dict[str, batch.EcsJobDefinition] = {}
        for transform in settings.transforms:
            self._deploy_transform(transform)
        if self.repositories:
            cdk.Validations.of(self.execution_role).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason="ecr:GetAuthorizationToken has no resource-level permissions; pulls are limited to the "
                    "transforms' repositories.",
                )
            )

        self.state_machine = self._state_machine()

    # -- network ------------------------------------------------------------------------------------------------

    def _network(self) -> tuple[ec2.IVpc, ec2.SubnetSelection]:
        if self._settings.vpc_id:
            vpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=self._settings.vpc_id)
            return vpc, ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        # No NAT gateway and no internet route: jobs reach AWS through endpoints only.
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="jobs", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
            # The stack's environment is known, which would make CDK look the zones up (or invent dummy ones);
            # zones chosen at deploy time keep the template free of either.
            availability_zones=[cdk.Fn.select(index, cdk.Fn.get_azs()) for index in range(2)],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        # The construct that locks down the default security group (feature flag restrictDefaultSecurityGroup)
        # also waits for its role twice; keep the GetAtt.
        provider = cdk.Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:
            handler = provider.node.try_find_child("Handler")
            if isinstance(handler, cdk.CfnResource):
                handler.add_deletion_override("DependsOn")
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            # Named, as every log group is: the policy of the key that encrypts it names it (encrypt_log_groups).
            log_group_name=f"/{self._naming.prefix}/{self._naming.stage}/vpc-flow-logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=self._removal_policy,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        # HTTPS from inside the VPC only (a literal CIDR, so that cdk-nag can check the rule).
        endpoint_security_group = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=vpc, allow_all_outbound=False, description="AWS endpoints for jobs"
        )
        endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from the VPC")
        endpoints = {**COMMON_ENDPOINTS, **({} if self._fargate else ECS_AGENT_ENDPOINTS)}
        for endpoint_id, service in endpoints.items():
            vpc.add_interface_endpoint(
                f"{endpoint_id}Endpoint",
                service=service,
                subnets=subnets,
                private_dns_enabled=True,
                security_groups=[endpoint_security_group],
                open=False,
            )
        return vpc, subnets

    # -- compute ------------------------------------------------------------------------------------------------

    def _compute_environments(self, subnets: ec2.SubnetSelection) -> list[batch.IComputeEnvironment]:
        """Spot first (when enabled), then On-Demand; the queue tries them in this order."""
        capacity = [True, False] if self._settings.spot else [False]
        if self._fargate:
            return [
                batch.FargateComputeEnvironment(
                    self,
                    "FargateSpot" if spot else "Fargate",
                    vpc=self.vpc,
                    vpc_subnets=subnets,
                    spot=spot,
                    maxv_cpus=self._settings.max_vcpus,
                )
                for spot in capacity
            ]

        # Batch's default instance role is `ecsInstanceRole`; ours is named per stage. The ECS agent needs
        # AmazonEC2ContainerServiceforEC2Role (CDK once left it out: aws-cdk#25256).
        self.instance_role = iam.Role(
            self,
            "EcsInstanceRole",
            role_name=names.instance_role_name(self._naming),
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(ECS_INSTANCE_POLICY)],
            description="Batch container instances: the ECS agent, and bundles in the data bucket",
        )
        self._grant_bundles(self.instance_role)
        cdk.Validations.of(self.instance_role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{ECS_INSTANCE_POLICY}]",
                reason="The ECS agent on Batch container instances needs this AWS policy to register with ECS, pull "
                "images and write logs; AWS keeps it current with the agent.",
            )
        )
        return [
            batch.ManagedEc2EcsComputeEnvironment(
                self,
                "Spot" if spot else "OnDemand",
                vpc=self.vpc,
                vpc_subnets=subnets,
                spot=spot,
                allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
                instance_role=self.instance_role,
                maxv_cpus=self._settings.max_vcpus,
                minv_cpus=0,
            )
            for spot in capacity
        ]

    # -- transforms ---------------------------------------------------------------------------------------------

    def _deploy_transform(self, transform: TransformSettings) -> None:
        slug = names.module_slug(transform.class_path)
        construct_id = "".join(part.capitalize() for part in slug.split("-"))
        repository = ecr.Repository(
            self,
            f"{construct_id}Repository",
            repository_name=names.repository_name(self._naming, transform.class_path),
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.MUTABLE,  # `latest` moves with each build
            removal_policy=self._removal_policy,
            empty_on_delete=self._removal_policy == cdk.RemovalPolicy.DESTROY,
            lifecycle_rules=[ecr.LifecycleRule(description="keep the last 20 images", max_image_count=20)],
        )
        repository.grant_pull(self.execution_role)
        container_props: dict[str, Any] = {
            "image": ecs.ContainerImage.from_ecr_repository(repository, transform.image_tag),
            "cpu": transform.vcpus,
            "memory": cdk.Size.mebibytes(transform.memory_mib),
            # The transform and the entry point are fixed here; a run fills only the `Ref::` placeholders.
            "command": names.job_command(transform.class_path),
            "job_role": self.job_role,
            "execution_role": self.execution_role,
            "logging": ecs.LogDriver.aws_logs(stream_prefix="transform", log_group=self.log_group),
        }
        container: batch.IEcsContainerDefinition
        if self._fargate:
            container = batch.EcsFargateContainerDefinition(
                self, f"{construct_id}Container", assign_public_ip=False, **container_props
            )
        else:
            container = batch.EcsEc2ContainerDefinition(self, f"{construct_id}Container", **container_props)
        self.repositories[transform.class_path] = repository
        self.job_definitions[transform.class_path] = batch.EcsJobDefinition(
            self,
            f"{construct_id}JobDefinition",
            job_definition_name=names.job_definition_name(self._naming, transform.class_path),
            container=container,
            parameters=names.JOB_PARAMETER_DEFAULTS,
            timeout=cdk.Duration.minutes(self._settings.job_timeout_minutes),
            # A reclaimed Spot host is not the transform's fault: try again; any other failure is final.
            retry_attempts=3,
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
        )

    # -- state machine ------------------------------------------------------------------------------------------

    def _state_machine(self) -> sfn.StateMachine:
        """Submit the job and wait for it; on failure, the cause names the job's reason and its log stream."""
        # Batch stops a job that runs longer than this (also jobs of CLI-registered definitions); the execution
        # allows an hour more for waiting in the queue.
        job_timeout = cdk.Duration.minutes(self._settings.job_timeout_minutes)
        # Parameters are data for the `Ref::` placeholders of the job definition's command; no container override, so
        # the job definition alone says what runs. Tags and transform parameters go as one JSON text each.
        submit = tasks.BatchSubmitJob(
            self,
            "Submit_Transform_Job",
            job_name=sfn.JsonPath.string_at("$.jobName"),
            job_definition_arn=sfn.JsonPath.string_at("$.jobDefinition"),
            job_queue_arn=self.queue.job_queue_arn,
            payload=sfn.TaskInput.from_object(
                {
                    "remote": sfn.JsonPath.string_at("$.remote"),
                    "context": sfn.JsonPath.string_at("$.context"),
                    "input": sfn.JsonPath.string_at("$.input.name"),
                    "inputVersion": sfn.JsonPath.string_at("$.input.version"),
                    "output": sfn.JsonPath.string_at("$.output.name"),
                    "outputVersion": sfn.JsonPath.string_at("$.output.version"),
                    "outputTags": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.output.tags")),
                    "parameters": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.parameters")),
                }
            ),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            task_timeout=sfn.Timeout.duration(job_timeout),
            result_path="$.job",
        )
        submit.add_retry(
            errors=BATCH_API_ERRORS,
            interval=cdk.Duration.seconds(5),
            backoff_rate=2,
            max_attempts=6,
            jitter_strategy=sfn.JitterType.FULL,
        )
        failed_with_log = sfn.Fail(
            self,
            "Transform_Job_Failed",
            error="TransformJobFailed",
            cause_path=sfn.JsonPath.format(
                "Batch job {} failed: {} (log stream {})",
                sfn.JsonPath.string_at("$.failure.job.JobId"),
                sfn.JsonPath.string_at("$.failure.job.StatusReason"),
                sfn.JsonPath.string_at("$.failure.job.Container.LogStreamName"),
            ),
        )
        failed_without_log = sfn.Fail(
            self, "Transform_Job_Failed_Before_Start", error="TransformJobFailed", cause_path="$.error.Cause"
        )
        read_failure = sfn.Pass(
            self,
            "Read_Job_Failure",
            parameters={"job": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.error.Cause"))},
            result_path="$.failure",
        ).next(
            sfn.Choice(self, "Has_Log_Stream")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.failure.job.JobId"),
                    sfn.Condition.is_present("$.failure.job.StatusReason"),
                    sfn.Condition.is_present("$.failure.job.Container.LogStreamName"),
                ),
                failed_with_log,
            )
            .otherwise(failed_without_log)
        )
        submit.add_catch(read_failure, errors=["States.TaskFailed"], result_path="$.error")
        submit.add_catch(
            sfn.Fail(
                self,
                "Transform_Not_Run",
                error_path="$.error.Error",
                cause_path="$.error.Cause",
            ),
            errors=["States.ALL"],
            result_path="$.error",
        )
        submit.next(sfn.Succeed(self, "Output_Pushed"))
        # Fail fast, and say why, on input that did not come from `datapipe run` (an event rule's, a typo's), and on
        # a command: the job definition fixes what runs, the input only gives the run's values.
        definition = (
            sfn.Choice(self, "Is_Transform_Input")
            .when(
                sfn.Condition.is_present("$.command"),
                sfn.Fail(
                    self,
                    "Command_Not_Accepted",
                    error="InvalidTransformInput",
                    cause="The input may not hold a command: the job definition fixes what the job runs. Give the "
                    f"run's values ({TRANSFORM_INPUT_FIELDS}), as `datapipe run --backend batch` does.",
                ),
            )
            .when(self._transform_input_condition(), submit)
            .otherwise(
                sfn.Fail(
                    self,
                    "Not_A_Transform_Input",
                    error="InvalidTransformInput",
                    cause=f"The input must hold {TRANSFORM_INPUT_FIELDS} (texts, tags and parameters objects of "
                    "texts), with jobDefinition the ARN of one of this stage's job definitions and remote a prefix "
                    "of this stage's data bucket, as `datapipe run --backend batch` sends them.",
                )
            )
        )

        state_machine = logged_state_machine(
            self,
            "TransformStateMachine",
            state_machine_name=self._naming.state_machine(names.TRANSFORM_STATE_MACHINE),
            definition=definition,
            removal_policy=self._removal_policy,
            log_group_id="StateMachineLogs",
            log_retention=logs.RetentionDays.THREE_MONTHS,
            timeout=job_timeout.plus(cdk.Duration.minutes(60)),
        )
        # CDK lets the role submit any job definition because the ARN comes from the execution input; deny every
        # job definition and queue that is not this stage's.
        stack = cdk.Stack.of(self)
        state_machine.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["batch:SubmitJob"],
                not_resources=[
                    stack.format_arn(
                        service="batch",
                        resource="job-definition",
                        resource_name=f"{self._naming.name('')}*",
                        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
                    ),
                    self.queue.job_queue_arn,
                ],
            )
        )
        acknowledge_wildcards(
            state_machine,
            {
                nag_arn(self, "batch", "job-definition/*"): "The CLI registers job-definition revisions at run time, "
                "so the ARN comes from the execution input; an explicit Deny in the same policy limits submissions "
                "to this stage's job definitions.",
                "*": "X-Ray segments and CloudWatch Logs delivery have no resource-level permissions.",
            },
        )
        return state_machine

    def _transform_input_condition(self) -> sfn.Condition:
        """Every field the state machine reads is there, texts are texts; the entry point checks the values."""
        present_texts = [
            sfn.Condition.and_(sfn.Condition.is_present(path), sfn.Condition.is_string(path))
            for path in TRANSFORM_INPUT_TEXTS
        ]
        # The job role may use only the data bucket; checking here too fails a run elsewhere at once, and on the
        # emulator, which evaluates no IAM, the same way.
        data_bucket = self._naming.bucket(DATA_BUCKET_PURPOSE, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)
        return sfn.Condition.and_(
            *present_texts,
            sfn.Condition.string_matches("$.jobDefinition", f"arn:*:batch:*:job-definition/{self._naming.name('')}*"),
            sfn.Condition.or_(
                sfn.Condition.string_equals("$.remote", f"s3://{data_bucket}"),
                sfn.Condition.string_matches("$.remote", f"s3://{data_bucket}/*"),
            ),
            *(sfn.Condition.is_present(path) for path in TRANSFORM_INPUT_OBJECTS),
        )

    def _grant_bundles(self, role: iam.Role) -> None:
        """Read and write objects of the data bucket, the bundle remote; nothing else in S3."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=BUNDLE_OBJECT_ACTIONS, resources=[f"{self._data_bucket_arn}/*"])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=BUNDLE_BUCKET_ACTIONS, resources=[self._data_bucket_arn])
        )
        acknowledge_wildcards(
            role,
            {
                f"{nag_own_bucket_arn(self._naming, DATA_BUCKET_PURPOSE)}/*": "Bundle keys are chosen at run time "
                "(context, bundle name, version uuid); access stays inside the data bucket, the bundle remote.",
            },
        )


class BatchStack(cdk.Stack):
    """The deployable unit for TransformBatch."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: BatchSettings,
        data_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.batch = TransformBatch(
            self,
            "TransformBatch",
            naming=naming,
            settings=settings,
            data_bucket=data_bucket,
            removal_policy=removal_policy,
        )
