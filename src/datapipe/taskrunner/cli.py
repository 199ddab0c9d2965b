"""`datapipe taskrunner`: poll a worker group's activity and run its tasks on this machine; `datapipe taskrunner
exec-task`: run the one task of an AWS Batch job.

The options are Data Pipeline Task Runner's (`--workerGroup`, `--logUri`, `--config`, `--accessId`, ...), each also
spelled the click way (`--worker-group`, `--log-uri`, ...). The runner's own keys come from `--config`, its
environment or the host's profile or role; `--secretKey` still works but shows in the process list, so it warns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import click
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from click.core import ParameterSource

from datapipe.aws import check_endpoint_url, check_region
from datapipe.errors import DatapipeError
from datapipe.jsontext import read_json_object
from datapipe.naming import TASK_RUNNER_LOG_PREFIX, Naming
from datapipe.taskrunner.contract import INVALID_TASK, InvalidTask, S3Location, safe_path_part
from datapipe.taskrunner.environment import TaskRole
from datapipe.taskrunner.exec_task import TASK_VARIABLE, exec_task
from datapipe.taskrunner.logs import HourlyFileHandler, LogShipper
from datapipe.taskrunner.poller import TaskRunner
from datapipe.taskrunner.processes import become_subreaper, forbid_inspection
from datapipe.taskrunner.proxy import PROXY_PASSWORD_VARIABLE, Proxy, parse_proxy, tell_proxy_refusals
from datapipe.taskrunner.runner import Retention, RunnerIdentity, TaskExecutor

DEFAULT_REGION = "us-east-1"  # Task Runner's default when no region is given anywhere
LONG_POLL_READ_TIMEOUT = 70  # GetActivityTask holds the request for up to 60 s
LOGGER_NAME = "datapipe.taskrunner"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# GetCallerIdentity's UserId (IAM's aws:userid): AIDA... for a user, AROA...:<session> for a role, or an account id.
PRINCIPAL_ID = re.compile(r"^[\w+=,.@:-]{1,200}$")
PROXY_PASSWORD_WARNING = (
    f"Warning: --proxyPassword on the command line can be read by every process of this machine (its process list); "
    f"put it in the --config file ('proxy-password') or in {PROXY_PASSWORD_VARIABLE} instead"
)
SECRET_KEY_WARNING = (
    "Warning: --secretKey on the command line can be read by every process of this machine (its process list); "
    "put the keys in a --config file or in the runner's environment instead"
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    log_uri: str | None = None
    proxy_password: str | None = field(default=None, repr=False)


def read_credentials_file(path: Path) -> Credentials:
    """Task Runner's credentials.json: `{"access-id": ..., "private-key": ...}`; also region, endpoint, log-uri and
    proxy-password."""
    data = read_json_object(path, what="--config", shape="a JSON object with 'access-id' and 'private-key'")
    values: dict[str, str | None] = {}
    for key in ("access-id", "private-key", "region", "endpoint", "log-uri", "proxy-password"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise DatapipeError(f"--config: '{key}' in {path} must be a non-empty string")
        values[key] = value
    if values["endpoint"] is not None:
        check_endpoint_url(values["endpoint"], source=f"--config: 'endpoint' in {path}")
    if values["region"] is not None:
        check_region(values["region"], source=f"--config: 'region' in {path}")
    if (values["access-id"] is None) != (values["private-key"] is None):
        raise DatapipeError(f"--config: {path} needs both 'access-id' and 'private-key'")
    return Credentials(
        access_key_id=values["access-id"],
        secret_access_key=values["private-key"],
        region=values["region"],
        endpoint=values["endpoint"],
        log_uri=values["log-uri"],
        proxy_password=values["proxy-password"],
    )


def choose_credentials(config_file: Path | None, access_id: str | None, secret_key: str | None) -> Credentials:
    """--accessId/--secretKey over the credentials file's keys (as Task Runner); neither: the default chain."""
    credentials = read_credentials_file(config_file) if config_file is not None else Credentials()
    if (access_id is None) != (secret_key is None):
        raise DatapipeError("--accessId and --secretKey go together: give both or neither")
    if secret_key is not None:
        click.echo(SECRET_KEY_WARNING, err=True)
    if config_file is not None and credentials.secret_access_key is not None and _readable_by_others(config_file):
        click.echo(f"Warning: --config: {config_file} can be read by other users; chmod 600 it", err=True)
    if access_id is not None:
        credentials = dataclasses.replace(credentials, access_key_id=access_id, secret_access_key=secret_key)
    return credentials


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def parse_task_role(arn: str | None, duration: str) -> TaskRole | None:
    seconds = parse_positive(duration, option="--task-role-duration", maximum=43200)
    if seconds < 900 or seconds != int(seconds):
        raise DatapipeError(f"--task-role-duration must be a whole number of seconds from 900 to 43200, got {duration}")
    if arn is None:
        return None
    if ROLE_ARN.match(arn) is None:
        raise DatapipeError(
            f"--task-role-arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got {arn!r}"
        )
    return TaskRole(arn=arn, duration_seconds=int(seconds))


def parse_retention(keep_attempts: str | None, remove_on_success: bool) -> Retention:
    if keep_attempts is None:
        return Retention(remove_on_success=remove_on_success)
    if not keep_attempts.isdigit() or int(keep_attempts) > 1_000_000:
        raise DatapipeError(f"--keep-attempts must be a whole number from 0 to 1000000, got {keep_attempts!r}")
    return Retention(keep_attempts=int(keep_attempts), remove_on_success=remove_on_success)


def parse_log_uri(uri: str) -> S3Location:
    try:
        location = S3Location.parse(uri, field="--log-uri")
    except InvalidTask:
        raise DatapipeError(f"--log-uri must be s3://bucket/prefix, got {uri!r}") from None
    return S3Location(location.bucket, location.as_prefix)


def parse_positive(value: str, *, option: str, maximum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DatapipeError(f"{option} must be a number, got {value!r}") from None
    if not 0 < number <= maximum:
        raise DatapipeError(f"{option} must be more than 0 and at most {maximum:g}, got {value}")
    return number


@dataclass
class Clients:
    sfn: Any
    s3: Any
    sts: Any
    secrets_manager: Any
    ssm: Any
    region: str
    partition: str


def make_clients(
    *, credentials: Credentials, region: str | None, endpoint: str | None, tasks: int, proxy: Proxy | None = None
) -> Clients:
    session = boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=region or credentials.region,
    )
    region_name = session.region_name or DEFAULT_REGION
    endpoint_url = endpoint or credentials.endpoint  # None lets boto3 honour AWS_ENDPOINT_URL
    pool = tasks * 2 + 4  # a long poll and a heartbeat/report per thread, plus log uploads
    # Every AWS call of the runner goes through the proxy when one is given (else boto3 honours HTTPS_PROXY).
    common = Config(proxies=proxy.botocore_proxies() if proxy else None)
    sfn_config = common.merge(
        Config(read_timeout=LONG_POLL_READ_TIMEOUT, max_pool_connections=pool, retries={"mode": "standard"})
    )
    s3_config = common.merge(
        Config(max_pool_connections=pool, retries={"mode": "standard"}, s3={"addressing_style": "path"})
    )
    clients = Clients(
        sfn=session.client("stepfunctions", region_name=region_name, endpoint_url=endpoint_url, config=sfn_config),
        s3=session.client("s3", region_name=region_name, endpoint_url=endpoint_url, config=s3_config),
        sts=session.client("sts", region_name=region_name, endpoint_url=endpoint_url, config=common),
        secrets_manager=session.client(
            "secretsmanager", region_name=region_name, endpoint_url=endpoint_url, config=common
        ),
        ssm=session.client("ssm", region_name=region_name, endpoint_url=endpoint_url, config=common),
        region=region_name,
        partition=session.get_partition_for_region(region_name),
    )
    if proxy is not None:
        for client in (clients.sfn, clients.s3, clients.sts, clients.secrets_manager, clients.ssm):
            tell_proxy_refusals(client)
    return clients


def caller_of(clients: Clients) -> tuple[str, str]:
    """The account and the unique principal id (`aws:userid`) of the runner's credentials."""
    endpoint = clients.sts.meta.endpoint_url
    try:
        identity = clients.sts.get_caller_identity()
        account, principal = str(identity["Account"]), str(identity["UserId"])
    except NoCredentialsError:
        raise DatapipeError(
            "no AWS credentials: pass --config credentials.json or --accessId/--secretKey, or configure the AWS CLI"
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise DatapipeError(f"credentials rejected by {endpoint}: {code}") from None
    except BotoCoreError as error:  # ProxyRefused included; botocore masks a proxy's credentials in its messages
        raise DatapipeError(f"cannot reach {endpoint}: {error}") from None
    if PRINCIPAL_ID.match(principal) is None:
        raise DatapipeError(f"the runner's principal id {principal!r} cannot name a log prefix")
    return account, principal


def check_activity(clients: Clients, activity_arn: str, worker_group: str) -> None:
    try:
        clients.sfn.describe_activity(activityArn=activity_arn)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        if code in ("ActivityDoesNotExist", "InvalidArn"):
            raise DatapipeError(
                f"activity {activity_arn} of worker group '{worker_group}' does not exist: deploy the WorkerGroups "
                "stack with this worker group, or check --worker-group, --stage and --region"
            ) from None
        raise DatapipeError(f"cannot describe activity {activity_arn}: {code}") from None
    except BotoCoreError as error:
        raise DatapipeError(f"cannot reach {clients.sfn.meta.endpoint_url}: {error}") from None


@dataclass(frozen=True)
class ServeOptions:
    worker_group: str
    runner_id: str
    principal: str
    output_dir: Path
    tasks: int
    heartbeat_interval: float
    log_upload_interval: float
    retention: Retention = field(default_factory=Retention)
    task_role: TaskRole | None = None
    proxy: Proxy | None = None


def serve(
    options: ServeOptions,
    *,
    sfn: Any,
    s3: Any,
    activity_arn: str,
    log_destination: S3Location | None,
    secrets_manager: Any = None,
    ssm: Any = None,
    sts: Any = None,
) -> int:
    """Run until stopped (SIGTERM/SIGINT, or the returned runner's `request_stop`); the process's exit code."""
    logs_dir = options.output_dir / "logs"
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(message)s")
    formatter.converter = time.gmtime  # the hourly files are in UTC; so are their lines
    file_handler = HourlyFileHandler(logs_dir)
    console = logging.StreamHandler(sys.stderr)
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        logger.addHandler(handler)

    identity = RunnerIdentity(
        worker_group=options.worker_group, runner_id=options.runner_id, principal=options.principal
    )
    executor = TaskExecutor(
        sfn=sfn,
        s3=s3,
        identity=identity,
        output_dir=options.output_dir,
        log_destination=log_destination,
        heartbeat_interval=options.heartbeat_interval,
        logger=logger,
        secrets_manager=secrets_manager,
        ssm=ssm,
        sts=sts,
        task_role=options.task_role,
        retention=options.retention,
    )
    runner = TaskRunner(sfn=sfn, activity_arn=activity_arn, executor=executor, tasks=options.tasks, logger=logger)
    runner_logs = (
        log_destination.child(f"{identity.log_prefix}runners/{safe_path_part(options.runner_id)}/")
        if log_destination
        else None
    )
    shipper = LogShipper(
        directory=logs_dir, s3=s3, destination=runner_logs, logger=logger, interval_seconds=options.log_upload_interval
    )
    stop_shipping = threading.Event()
    shipping = threading.Thread(target=shipper.run, args=(stop_shipping,), name="log-shipper", daemon=True)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        runner.request_stop()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    click.echo(f"Logging to {logs_dir.resolve()}", err=True)
    logger.info(
        "task runner %s: worker group %s, %d poller thread(s), activity %s, logs to %s%s",
        options.runner_id,
        options.worker_group,
        options.tasks,
        activity_arn,
        runner_logs.uri if runner_logs else "this machine only",
        f", AWS calls through the proxy {options.proxy.url(with_password=False)}" if options.proxy else "",
    )
    try:
        runner.start()
        shipping.start()
        runner.wait()
    finally:
        for signum, previous_handler in previous.items():
            signal.signal(signum, previous_handler)
        stop_shipping.set()
        if shipping.is_alive():
            shipping.join(timeout=5)
        how = "commands killed" if runner.killed else "clean"
        logger.info("task runner %s stopped (%s); backing up logs", options.runner_id, how)
        shipper.ship()
        for handler in (file_handler, console):
            logger.removeHandler(handler)
            handler.close()
    return 1 if runner.killed else 0


def shared_options(function: Any) -> Any:
    """The options of both the serving runner and `exec-task`: where AWS is, the runner's keys, logs, proxy."""
    options = [
        click.option("--region", help="The AWS region [the credentials file's, the environment's, us-east-1]."),
        click.option("--log-uri", "--logUri", "log_uri", help="s3://bucket/prefix for logs [the deployed log bucket]."),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            help="credentials.json with access-id/private-key (and optionally proxy-password).",
        ),
        click.option(
            "--access-id", "--accessId", "access_id", help="AWS access key id (takes precedence over --config)."
        ),
        click.option(
            "--secret-key",
            "--secretKey",
            "secret_key",
            help="AWS secret access key (visible in the process list: prefer --config or the environment).",
        ),
        click.option("--endpoint", "--endpoint-url", "endpoint", help="Service endpoint URL [AWS_ENDPOINT_URL]."),
        click.option("--taskrunner-id", "--taskrunnerId", "runner_id", help="This runner's id in reports [host-pid]."),
        click.option(
            "--output",
            "output_dir",
            type=click.Path(path_type=Path),
            default=Path("output"),
            show_default=True,
            help="Folder for logs and task working directories.",
        ),
        click.option(
            "--task-role-arn",
            "--taskRoleArn",
            "task_role_arn",
            help="A role the runner assumes for each task: tasks get its short-lived keys (else the host's own).",
        ),
        click.option(
            "--task-role-duration", default="3600", show_default=True, help="Seconds the task role's keys stay valid."
        ),
        click.option("--proxy-host", "--proxyHost", "proxy_host", help="Proxy for every AWS call of the runner."),
        click.option("--proxy-port", "--proxyPort", "proxy_port", help="The proxy's port."),
        click.option("--proxy-username", "--proxyUsername", "proxy_username", help="User for the proxy (basic auth)."),
        click.option(
            "--proxy-password",
            "--proxyPassword",
            "proxy_password",
            help=f"The proxy's password (visible in the process list: prefer {PROXY_PASSWORD_VARIABLE} or --config).",
        ),
        click.option("--proxy-domain", "--proxyDomain", "proxy_domain", help="NTLM: not supported (refused)."),
        click.option(
            "--proxy-workstation", "--proxyWorkstation", "proxy_workstation", help="NTLM: not supported (refused)."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@dataclass(frozen=True)
class Common:
    """What the shared options give both commands, checked."""

    credentials: Credentials
    region: str | None
    endpoint: str | None
    log_destination: S3Location | None
    output_dir: Path
    task_role: TaskRole | None
    proxy: Proxy | None


def read_shared_options(
    *,
    region: str | None,
    log_uri: str | None,
    config_file: Path | None,
    access_id: str | None,
    secret_key: str | None,
    endpoint: str | None,
    output_dir: Path,
    task_role_arn: str | None,
    task_role_duration: str,
    proxy_host: str | None,
    proxy_port: str | None,
    proxy_username: str | None,
    proxy_password: str | None,
    proxy_domain: str | None,
    proxy_workstation: str | None,
    **_others: Any,
) -> Common:
    task_role = parse_task_role(task_role_arn, task_role_duration)
    credentials = choose_credentials(config_file, access_id, secret_key)
    if proxy_password is not None:
        click.echo(PROXY_PASSWORD_WARNING, err=True)
    # The environment's password is there for whichever proxy user the command line names; the others are given for
    # this runner, so a password without a user is an error rather than ignored.
    environment_password = os.environ.get(PROXY_PASSWORD_VARIABLE) if proxy_username else None
    password = proxy_password or credentials.proxy_password or environment_password or None
    proxy = parse_proxy(
        host=proxy_host,
        port=proxy_port,
        username=proxy_username,
        password=password,
        domain=proxy_domain,
        workstation=proxy_workstation,
    )
    log_uri = log_uri or credentials.log_uri
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatapipeError(f"--output: cannot create {output_dir}: {error.strerror}") from None
    return Common(
        credentials=credentials,
        region=region,
        endpoint=endpoint,
        log_destination=parse_log_uri(log_uri) if log_uri else None,
        output_dir=output_dir,
        task_role=task_role,
        proxy=proxy,
    )


def check_runner_id(runner_id: str | None) -> str:
    runner_id = runner_id or f"{socket.gethostname()}-{os.getpid()}"
    if len(runner_id) > 80:
        raise DatapipeError(f"--taskrunner-id must be at most 80 characters, got {len(runner_id)}")
    return runner_id


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--worker-group", "--workerGroup", "worker_group", help="The worker group to take tasks for (required).")
@shared_options
@click.option("--tasks", default="2", show_default=True, help="Poller threads, i.e. tasks run at once.")
@click.option("--stage", default="dev", show_default=True, help="Deployment stage, to name the activity.")
@click.option("--prefix", default="datapipe", show_default=True, help="Deployment prefix, to name the activity.")
@click.option("--activity-arn", help="Poll this activity instead of the one named after the worker group.")
@click.option(
    "--heartbeat-interval",
    default="20",
    show_default=True,
    help="Seconds between heartbeats (shorter when a task's heartbeat timeout asks for it).",
)
@click.option("--log-upload-interval", default="3600", show_default=True, help="Seconds between log backups.")
@click.option(
    "--keep-attempts",
    "--keepAttempts",
    "keep_attempts",
    help="Keep the folders of the last N attempts only [all are kept].",
)
@click.option(
    "--remove-on-success",
    "--removeOnSuccess",
    "remove_on_success",
    is_flag=True,
    help="Remove an attempt's folder once it has succeeded and its logs are uploaded.",
)
@click.pass_context
def taskrunner(
    context: click.Context,
    worker_group: str | None,
    runner_id: str | None,
    tasks: str,
    stage: str,
    prefix: str,
    activity_arn: str | None,
    heartbeat_interval: str,
    log_upload_interval: str,
    keep_attempts: str | None,
    remove_on_success: bool,
    **shared: Any,
) -> None:
    """Run the tasks of a worker group on this machine, as Data Pipeline's Task Runner did: ShellCommandActivity,
    ShellCommandPrecondition, SqlActivity and CopyActivity. `exec-task` runs one task (an AWS Batch job's command)."""
    if context.invoked_subcommand is not None:
        given = [name for name in context.params if context.get_parameter_source(name) == ParameterSource.COMMANDLINE]
        if given:
            raise DatapipeError(
                f"options before '{context.invoked_subcommand}' are not used: give them after it "
                f"(datapipe taskrunner {context.invoked_subcommand} --help)"
            )
        return
    if not worker_group:
        raise DatapipeError("--worker-group (--workerGroup) is required: the worker group to take tasks for")
    if len(worker_group) > 28 or not worker_group.replace("-", "").replace("_", "").isalnum():
        raise DatapipeError(f"--worker-group must be up to 28 letters, digits, '-' or '_', got {worker_group!r}")
    thread_count = int(parse_positive(tasks, option="--tasks", maximum=64))
    if thread_count != float(tasks):
        raise DatapipeError(f"--tasks must be a whole number, got {tasks!r}")
    heartbeat = parse_positive(heartbeat_interval, option="--heartbeat-interval", maximum=3600)
    upload_every = parse_positive(log_upload_interval, option="--log-upload-interval", maximum=86400)
    runner_id = check_runner_id(runner_id)
    retention = parse_retention(keep_attempts, remove_on_success)
    common = read_shared_options(**shared)

    clients = make_clients(
        credentials=common.credentials,
        region=common.region,
        endpoint=common.endpoint,
        tasks=thread_count,
        proxy=common.proxy,
    )
    naming = Naming(prefix=prefix, stage=stage)
    account, principal = caller_of(clients)
    if activity_arn is None:
        activity_arn = naming.activity_arn(
            worker_group, account=account, region=clients.region, partition=clients.partition
        )
    check_activity(clients, activity_arn, worker_group)
    log_destination = common.log_destination or S3Location(
        naming.log_bucket(account, clients.region), TASK_RUNNER_LOG_PREFIX
    )

    options = ServeOptions(
        worker_group=worker_group,
        runner_id=runner_id,
        principal=principal,
        output_dir=common.output_dir,
        tasks=thread_count,
        heartbeat_interval=heartbeat,
        log_upload_interval=upload_every,
        retention=retention,
        task_role=common.task_role,
        proxy=common.proxy,
    )
    become_subreaper()  # a task's orphans stay this process's descendants, so that they can be ended with the task
    forbid_inspection()  # a task running as the same user cannot read this process's memory or environment
    code = serve(
        options,
        sfn=clients.sfn,
        s3=clients.s3,
        activity_arn=activity_arn,
        log_destination=log_destination,
        secrets_manager=clients.secrets_manager,
        ssm=clients.ssm,
        sts=clients.sts,
    )
    if code:
        raise DatapipeError("stopped by a second signal: running commands were killed and reported failed", exit_code=1)


@taskrunner.command("exec-task", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--worker-group",
    "--workerGroup",
    "worker_group",
    default="batch",
    show_default=True,
    help="Names the attempt folder and the log prefix.",
)
@shared_options
def exec_task_command(worker_group: str, runner_id: str | None, **shared: Any) -> None:
    """Run the one task in the DATAPIPE_TASK environment variable (an AWS Batch job's command) the way the runner
    runs a task of its activity; print its success output as one JSON line, or fail with a one-line error."""
    task_input = os.environ.get(TASK_VARIABLE)
    if not task_input:
        raise DatapipeError(f"{TASK_VARIABLE} is not set: exec-task reads the task's JSON from it")
    if len(worker_group) > 28 or not worker_group.replace("-", "").replace("_", "").isalnum():
        raise DatapipeError(f"--worker-group must be up to 28 letters, digits, '-' or '_', got {worker_group!r}")
    runner_id = check_runner_id(runner_id)
    common = read_shared_options(**shared)
    clients = make_clients(
        credentials=common.credentials, region=common.region, endpoint=common.endpoint, tasks=1, proxy=common.proxy
    )
    principal = caller_of(clients)[1] if common.log_destination is not None else "local"
    logger = logging.getLogger(f"{LOGGER_NAME}.exec")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # stdout carries only the success output and stderr only the one-line error: the runner's own lines go to a file.
    (common.output_dir / "logs").mkdir(exist_ok=True)
    console = logging.FileHandler(common.output_dir / "logs" / "exec-task.log", encoding="utf-8")
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(console)
    try:
        become_subreaper()
        forbid_inspection()
        report = exec_task(
            task_input,
            clients=clients,
            identity=RunnerIdentity(worker_group=worker_group, runner_id=runner_id, principal=principal),
            output_dir=common.output_dir,
            log_destination=common.log_destination,
            task_role=common.task_role,
            logger=logger,
        )
    finally:
        logger.removeHandler(console)
        console.close()
    if report.output is None:
        first_line = (report.cause or "").splitlines()[0] if report.cause else ""
        raise DatapipeError(f"{report.error}: {first_line}", exit_code=2 if report.error == INVALID_TASK else 1)
    click.echo(report.output)
