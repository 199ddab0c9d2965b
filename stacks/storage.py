"""Buckets: logs (EMR LogUri, task-runner logs, workflow logs), data (bundle remote, EMR output), access logs."""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from datapipe.naming import ACCESS_LOG_BUCKET_PURPOSE, DATA_BUCKET_PURPOSE, LOG_BUCKET_PURPOSE, Naming
from stacks.config import StorageSettings


class Storage(Construct):
    """Three encrypted, TLS-only, private, versioned buckets with lifecycle rules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: StorageSettings,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._naming = naming
        self._removal_policy = removal_policy

        self.access_log_bucket = self._secure_bucket(
            "AccessLogBucket",
            purpose=ACCESS_LOG_BUCKET_PURPOSE,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire",
                    expiration=cdk.Duration.days(settings.access_log_expiration_days),
                    noncurrent_version_expiration=cdk.Duration.days(settings.log_noncurrent_version_expiration_days),
                )
            ],
        )
        cdk.Validations.of(self.access_log_bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the server access logs of the other buckets; logging it into itself "
                "would loop.",
            )
        )

        self.log_bucket = self._secure_bucket(
            "LogBucket",
            purpose=LOG_BUCKET_PURPOSE,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="logs-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="age-out-logs",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=cdk.Duration.days(settings.log_transition_days),
                        )
                    ],
                    expiration=cdk.Duration.days(settings.log_expiration_days),
                    noncurrent_version_expiration=cdk.Duration.days(settings.log_noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
        )

        self.data_bucket = self._secure_bucket(
            "DataBucket",
            purpose=DATA_BUCKET_PURPOSE,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(settings.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
        )
        # Object-created events go to EventBridge (they start workflows, stacks/triggers.py). Set on the template
        # itself: `event_bridge_enabled=True` would add a notifications custom-resource Lambda for the same result.
        cast(s3.CfnBucket, self.data_bucket.node.default_child).add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

    def _secure_bucket(self, construct_id: str, *, purpose: str, **specific: Any) -> s3.Bucket:
        """A bucket that is encrypted, private, TLS-only and owner-enforced, named after its purpose."""
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=self._naming.bucket(purpose, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=self._removal_policy,
            auto_delete_objects=self._removal_policy == cdk.RemovalPolicy.DESTROY,
            **specific,
        )


class StorageStack(cdk.Stack):
    """The deployable unit for Storage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: StorageSettings,
        removal_policy: cdk.RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.storage = Storage(self, "Storage", naming=naming, settings=settings, removal_policy=removal_policy)
