"""Physical names of deployed resources, shared by the CDK stacks and the CLI.

The CLI finds what was deployed by name instead of by reading stack outputs, so that it works the same in an
AWS account and in the embedded emulator, and without CloudFormation read permissions.
"""

from __future__ import annotations

from dataclasses import dataclass

# The purposes the storage stack names its buckets with (`Naming.bucket(purpose, ...)`).
LOG_BUCKET_PURPOSE = "logs"
DATA_BUCKET_PURPOSE = "data"
ACCESS_LOG_BUCKET_PURPOSE = "access-logs"
# Key prefixes inside the log bucket, one per kind of log, so that IAM can scope writers to their own prefix.
EMR_LOG_PREFIX = "emr/"
TASK_RUNNER_LOG_PREFIX = "taskrunner/"
WORKFLOW_LOG_PREFIX = "workflows/"
# What an S3 bucket name looks like (3-63 lower-case letters, digits, dots and dashes), for regular expressions.
BUCKET_NAME_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
# A prefix or a stage: lower case, so that every physical name built from them is valid everywhere.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"


@dataclass(frozen=True)
class Naming:
    prefix: str = "datapipe"
    stage: str = "dev"

    def name(self, suffix: str) -> str:
        """`<prefix>-<stage>-<suffix>`: the base of every physical name."""
        return f"{self.prefix}-{self.stage}-{suffix}"

    def stack(self, unit: str) -> str:
        return self.name(unit)

    def state_machine(self, workflow: str) -> str:
        return self.name(workflow)

    def schedule_group(self) -> str:
        """The EventBridge Scheduler group that holds every schedule of this stage."""
        return self.name("schedules")

    def activity(self, worker_group: str) -> str:
        return self.name(f"activity-{worker_group}")

    def bucket(self, purpose: str, account: str, region: str) -> str:
        """Bucket names are global, so they carry the account and region."""
        return self.name(f"{purpose}-{account}-{region}")

    def log_bucket(self, account: str, region: str) -> str:
        return self.bucket(LOG_BUCKET_PURPOSE, account, region)

    def data_bucket(self, account: str, region: str) -> str:
        return self.bucket(DATA_BUCKET_PURPOSE, account, region)

    def state_machine_arn(self, workflow: str, *, account: str, region: str, partition: str = "aws") -> str:
        return f"arn:{partition}:states:{region}:{account}:stateMachine:{self.state_machine(workflow)}"

    def activity_arn(self, worker_group: str, *, account: str, region: str, partition: str = "aws") -> str:
        return f"arn:{partition}:states:{region}:{account}:activity:{self.activity(worker_group)}"
