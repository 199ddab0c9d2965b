"""Task runner throughput: 200 no-op ShellCommandActivity tasks, `--tasks 1` and `--tasks 4`, against the floor.

The floor is the bare API: one loop of GetActivityTask and SendTaskSuccess on the same emulator, same activity,
same queued executions. The runner does what a user's runner does for every task: parse the input, create the
attempt's working directory, fork `bash -c true`, upload stdout and stderr to S3, report with SendTaskSuccess.
The ratio runner/floor (per `--tasks` setting) is the figure to watch.

Run: `python -m bench.taskrunner` (TASKS=N in the environment to change the number of tasks, default 200).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from datapipe.project import find_project_dir, jsii_environment

if TYPE_CHECKING:
    from types_boto3_s3.literals import BucketLocationConstraintType

TASK_COUNT = int(os.environ.get("TASKS", "200"))
BENCH_LOG_BUCKET = "datapipe-bench-taskrunner-logs"
POLL_SECONDS = 1.0  # the emulator's long poll: short, so that a finished variant's pollers are gone before the next


def deploy_worker_groups(emulator: Any, outdir: Path) -> tuple[str, str]:
    """Synthesize the Storage and WorkerGroups stacks (as app.py composes them) and deploy them into the emulator."""
    os.environ.update({k: v for k, v in jsii_environment().items() if k.startswith("JSII")})
    import aws_cdk as cdk

    from app import cdk_json_context
    from datapipe.naming import Naming
    from stacks.config import load_settings
    from stacks.storage import StorageStack
    from stacks.worker_groups import SAMPLE_WORKFLOW, WorkerGroupsStack

    context = {**cdk_json_context(), "account": emulator.account, "region": emulator.region}
    settings = load_settings(context)
    naming = Naming(prefix=settings.prefix, stage=settings.stage)
    app = cdk.App(context=context, outdir=str(outdir))
    env = cdk.Environment(account=emulator.account, region=emulator.region)
    storage = StorageStack(
        app, "Storage", env=env, naming=naming, settings=settings.storage, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    WorkerGroupsStack(
        app,
        "WorkerGroups",
        env=env,
        naming=naming,
        settings=settings.worker_groups,
        log_bucket=storage.storage.log_bucket,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    app.synth()
    emulator.deploy(outdir)
    group = settings.worker_groups.names[0]
    state_machine = naming.state_machine_arn(SAMPLE_WORKFLOW, account=emulator.account, region=emulator.region)
    return state_machine, naming.activity_arn(group, account=emulator.account, region=emulator.region)


def queue_tasks(sfn: Any, state_machine_arn: str, tag: str) -> list[str]:
    return [
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=f"{tag}-{i}", input=json.dumps({"command": "true"})
        )["executionArn"]
        for i in range(TASK_COUNT)
    ]


def wait_for_executions(sfn: Any, executions: list[str]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for arn in executions:
        while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
            time.sleep(0.02)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def bare_loop(sfn: Any, activity_arn: str, threads: int) -> float:
    """The floor: `threads` loops that take a task and report it done, nothing else."""
    remaining = [TASK_COUNT]
    lock = threading.Lock()

    def loop() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            while not (token := sfn.get_activity_task(activityArn=activity_arn, workerName="floor").get("taskToken")):
                pass
            sfn.send_task_success(taskToken=token, output="{}")

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def taskrunner_run(sfn: Any, s3: Any, activity_arn: str, threads: int, output_dir: Path) -> float:
    """The runner's own classes, as `datapipe taskrunner --tasks N` wires them, until it has reported every task."""
    from datapipe.taskrunner.contract import S3Location
    from datapipe.taskrunner.poller import TaskRunner
    from datapipe.taskrunner.runner import RunnerIdentity, TaskExecutor

    logger = logging.getLogger("bench.taskrunner")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    executor = TaskExecutor(
        sfn=sfn,
        s3=s3,
        identity=RunnerIdentity(worker_group="wg-12345", runner_id=f"bench-{threads}", principal="bench"),
        output_dir=output_dir,
        log_destination=S3Location(BENCH_LOG_BUCKET, "taskrunner/"),
        heartbeat_interval=20,
        logger=logger,
    )
    runner = TaskRunner(sfn=sfn, activity_arn=activity_arn, executor=executor, tasks=threads, logger=logger)
    start = time.perf_counter()
    runner.start()
    while len(runner.outcomes) < TASK_COUNT:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    runner.request_stop()
    runner.wait(timeout=30)
    failed = [outcome for outcome in runner.outcomes if outcome != "succeeded"]
    if failed:
        raise RuntimeError(f"the runner did not succeed on every no-op task: {failed[:3]}")
    return elapsed


def describe(label: str, seconds: float) -> str:
    return (
        f"{label:<44} {TASK_COUNT} tasks in {seconds:6.2f} s  {TASK_COUNT / seconds:7.1f} tasks/s  "
        f"{seconds / TASK_COUNT * 1000:6.1f} ms/task"
    )


def main() -> None:
    from botocore.config import Config

    from datapipe.local.extensions import EmulatorOptions
    from datapipe.local.server import Emulator

    find_project_dir(Path(__file__).parent)
    with (
        tempfile.TemporaryDirectory() as workdir,
        Emulator(options=EmulatorOptions(activity_poll_seconds=POLL_SECONDS)) as emulator,
    ):
        state_machine, activity = deploy_worker_groups(emulator, Path(workdir) / "cdk.out")
        import boto3

        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=emulator.region
        )
        pool = Config(max_pool_connections=16, read_timeout=70, retries={"mode": "standard"})
        sfn = session.client("stepfunctions", endpoint_url=emulator.endpoint_url, config=pool)
        s3 = session.client("s3", endpoint_url=emulator.endpoint_url, config=pool)
        if emulator.region == "us-east-1":
            s3.create_bucket(Bucket=BENCH_LOG_BUCKET)
        else:
            location = cast("BucketLocationConstraintType", emulator.region)
            s3.create_bucket(Bucket=BENCH_LOG_BUCKET, CreateBucketConfiguration={"LocationConstraint": location})

        results: dict[str, float] = {}
        variants = [("floor-1", 1), ("tasks-1", 1), ("floor-4", 4), ("tasks-4", 4)]
        for label, threads in variants:
            executions = queue_tasks(sfn, state_machine, label)
            if label.startswith("floor"):
                results[label] = bare_loop(sfn, activity, threads)
            else:
                results[label] = taskrunner_run(sfn, s3, activity, threads, Path(workdir) / label)
            statuses = wait_for_executions(sfn, executions)
            if statuses != {"SUCCEEDED": TASK_COUNT}:
                raise RuntimeError(f"{label}: executions ended {statuses}")
            time.sleep(POLL_SECONDS * 1.5)  # pollers left in a long poll end before the next variant queues tasks

    for threads in (1, 4):
        floor, ours = results[f"floor-{threads}"], results[f"tasks-{threads}"]
        print(describe(f"floor: bare API loop x{threads} (peer)", floor))
        print(describe(f"datapipe taskrunner --tasks {threads}", ours))
        overhead = (ours - floor) / TASK_COUNT * 1000
        print(f"  ratio runner/floor: {ours / floor:.2f}x   overhead per task over the floor: {overhead:+.1f} ms")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
