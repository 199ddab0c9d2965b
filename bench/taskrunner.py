"""Task runner throughput on the sample workflow against a floor that does the same work, in the same run.

Every task is the sample's CreateDirectory ShellCommandActivity (a fixed `mkdir -- "$DIRECTORY"` with input
`{"directory": ...}`). The runner does what a user's runner does for each: parse and check the input, create the
attempt's folder, start `bash -c <command>` in a session of its own, heartbeat, track and end its process tree,
upload stdout and stderr to S3 (written once), report with SendTaskSuccess, in a process that is a child subreaper as
the runner's is. The floor is the least a worker must do for the same result: GetActivityTask, create a folder, start
the same `bash -c <command>` with the task's environment, upload the same two logs with PutObject on the same client,
SendTaskSuccess. Both run `--tasks 1` and `--tasks 4` on the same emulator and activity; rounds alternate floor and
runner so that both see the same machine load, and the ratio is the median of the rounds' ratios, beside the fastest
runs' ratio. Goal: the runner at most 1.2x the floor. Then how the time grows with the number of tasks: both sides
again with GROWTH tasks (20 and 80) in the same rounds, the time per task at each size and what each task beyond the
smallest batch adds.

Run: `python -m bench.taskrunner` (TASKS=N tasks per measurement, default 200; ROUNDS=N, default 3;
GROWTH=20,80 the smaller batches, empty for none).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench.timing import paired_ratio, ratio
from datapipe.project import find_project_dir, jsii_environment

if TYPE_CHECKING:
    from types_boto3_s3.literals import BucketLocationConstraintType

TASK_COUNT = int(os.environ.get("TASKS", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
GROWTH = [int(size) for size in os.environ.get("GROWTH", "20,80").split(",") if size.strip()]
GOAL = 1.2
BENCH_LOG_BUCKET = "datapipe-bench-taskrunner-logs"
POLL_SECONDS = 1.0  # the emulator's long poll: short, so that a finished variant's pollers are gone before the next


def deploy_worker_groups(emulator: Any, outdir: Path) -> tuple[str, str]:
    """Synthesize the Storage and WorkerGroups stacks (as app.py composes them) and deploy them into the emulator."""
    os.environ.update({k: v for k, v in jsii_environment().items() if k.startswith("JSII")})
    import aws_cdk as cdk

    from app import cdk_app, cdk_json_context
    from datapipe.naming import Naming
    from stacks.config import load_settings
    from stacks.storage import StorageStack
    from stacks.worker_groups import SAMPLE_WORKFLOW, WorkerGroupsStack

    context = {**cdk_json_context(), "account": emulator.account, "region": emulator.region}
    settings = load_settings(context)
    naming = Naming(prefix=settings.prefix, stage=settings.stage)
    app = cdk_app(context, str(outdir))
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


def queue_tasks(sfn: Any, state_machine_arn: str, tag: str, count: int) -> list[str]:
    return [
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=f"{tag}-{i}", input=json.dumps({"directory": f"bench-{i}"})
        )["executionArn"]
        for i in range(count)
    ]


def wait_for_executions(sfn: Any, executions: list[str]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for arn in executions:
        while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
            time.sleep(0.02)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def floor_loop(sfn: Any, s3: Any, activity_arn: str, threads: int, output_dir: Path, count: int) -> float:
    """The floor: `threads` loops that take `count` tasks, run each one's command as the runner would, upload its two
    logs and report it done; nothing else (no checks, heartbeat, process tracking or clean-up)."""
    remaining = [count]
    lock = threading.Lock()
    shell = shutil.which("bash") or "/bin/sh"

    def run_one(number: int, token: str, task_input: str) -> None:
        task = json.loads(task_input)
        folder = output_dir / str(number)
        (folder / "work").mkdir(parents=True)
        stdout_path, stderr_path = folder / "stdout", folder / "stderr"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            exit_code = subprocess.run(
                [shell, "-c", task["command"], task["activityId"]],
                cwd=folder / "work",
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **task["environment"]},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                check=False,
            ).returncode
        if exit_code != 0:
            raise RuntimeError(f"floor: the command failed with exit code {exit_code}: {stderr_path.read_text()}")
        for name, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            with path.open("rb") as body:
                s3.put_object(Bucket=BENCH_LOG_BUCKET, Key=f"floor/{output_dir.name}/{number}/{name}", Body=body,
                              IfNoneMatch="*")
        sfn.send_task_success(taskToken=token, output=json.dumps({"exitCode": 0}))

    errors: list[BaseException] = []

    def loop() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                number = remaining[0]
            while not (task := sfn.get_activity_task(activityArn=activity_arn, workerName="floor")).get("taskToken"):
                pass
            try:
                run_one(number, task["taskToken"], task["input"])
            except Exception as error:  # raised in the bench's thread below, once every loop has stopped
                sfn.send_task_failure(taskToken=task["taskToken"], error="BenchFloorFailed", cause=str(error)[:1000])
                errors.append(error)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"the floor failed on {len(errors)} task(s): {errors[0]}")
    return time.perf_counter() - start


def taskrunner_run(sfn: Any, s3: Any, activity_arn: str, threads: int, output_dir: Path, count: int) -> float:
    """The runner's own classes, as `datapipe taskrunner --tasks N` wires them, until it has reported `count` tasks."""
    from datapipe.taskrunner.contract import S3Location
    from datapipe.taskrunner.poller import TaskRunner
    from datapipe.taskrunner.processes import become_subreaper
    from datapipe.taskrunner.runner import RunnerIdentity, TaskExecutor

    class CountingExecutor(TaskExecutor):
        """Tells the bench when `count` tasks are done, as the floor's threads do by ending: the bench's thread sleeps
        until then (polling the outcomes every few milliseconds took the GIL from the runner's threads)."""

        left = count
        lock = threading.Lock()
        done = threading.Event()

        def execute(self, running: Any, task_input: str) -> str:
            outcome = super().execute(running, task_input)
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()
            return outcome

    logger = logging.getLogger("bench.taskrunner")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    executor = CountingExecutor(
        sfn=sfn,
        s3=s3,
        identity=RunnerIdentity(worker_group="wg-12345", runner_id=f"bench-{threads}", principal="bench"),
        output_dir=output_dir,
        log_destination=S3Location(BENCH_LOG_BUCKET, "taskrunner/"),
        heartbeat_interval=20,
        logger=logger,
    )
    runner = TaskRunner(sfn=sfn, activity_arn=activity_arn, executor=executor, tasks=threads, logger=logger)
    # A child subreaper, as `datapipe taskrunner` makes itself: the runner then looks for its tasks' orphans too. Only
    # processes started since a task's command are looked at, so none of the bench's older children (jsii's Node).
    become_subreaper()
    start = time.perf_counter()
    runner.start()
    executor.done.wait()
    elapsed = time.perf_counter() - start
    runner.request_stop()
    runner.wait(timeout=30)
    failed = [outcome for outcome in runner.outcomes if outcome != "succeeded"]
    if failed:
        raise RuntimeError(f"the runner did not succeed on every no-op task: {failed[:3]}")
    return elapsed


def describe(label: str, seconds: list[float], count: int) -> str:
    median = statistics.median(seconds)
    return (
        f"{label:<40} {count} tasks: median {median:6.2f} s (min {min(seconds):.2f}, n={len(seconds)})  "
        f"{count / median:6.1f} tasks/s  {median / count * 1000:5.1f} ms/task"
    )


def print_growth(results: dict[tuple[str, int, int], list[float]], threads: int, sizes: list[int]) -> None:
    """Median time per task at each batch size, and what each task beyond the smallest batch adds on each side."""
    print(f"  growth with the number of tasks, --tasks {threads} (medians):")
    print(f"  {'tasks':>7} {'floor s':>9} {'ms/task':>8} {'runner s':>9} {'ms/task':>8} {'ratio':>6}")
    medians = {}
    for count in sizes:
        floor, ours = results[("floor", threads, count)], results[("tasks", threads, count)]
        medians[count] = (statistics.median(floor), statistics.median(ours))
        print(
            f"  {count:>7} {medians[count][0]:>9.2f} {medians[count][0] / count * 1000:>8.1f} "
            f"{medians[count][1]:>9.2f} {medians[count][1] / count * 1000:>8.1f} {paired_ratio(ours, floor):>5.2f}x"
        )
    smallest = sizes[0]
    for count in sizes[1:]:
        extra = count - smallest
        floor_each = (medians[count][0] - medians[smallest][0]) / extra * 1000
        ours_each = (medians[count][1] - medians[smallest][1]) / extra * 1000
        print(
            f"  each task beyond {smallest}, up to {count}: floor {floor_each:+.1f} ms, runner {ours_each:+.1f} ms "
            f"({ours_each / floor_each:.2f}x)"
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

        sizes = sorted({*GROWTH, TASK_COUNT})
        results: dict[tuple[str, int, int], list[float]] = {}
        for round_number in range(ROUNDS):
            for threads, count, label in itertools.product((1, 4), sizes, ("floor", "tasks")):
                tag = f"{label}-{threads}-{count}-{round_number}"
                executions = queue_tasks(sfn, state_machine, tag, count)
                measure = floor_loop if label == "floor" else taskrunner_run
                seconds = measure(sfn, s3, activity, threads, Path(workdir) / tag, count)
                results.setdefault((label, threads, count), []).append(seconds)
                statuses = wait_for_executions(sfn, executions)
                if statuses != {"SUCCEEDED": count}:
                    raise RuntimeError(f"{tag}: executions ended {statuses}")
                time.sleep(POLL_SECONDS * 1.5)  # pollers left in a long poll end before the next variant queues tasks

    for threads in (1, 4):
        floor, ours = results[("floor", threads, TASK_COUNT)], results[("tasks", threads, TASK_COUNT)]
        print(describe(f"floor: same command and logs x{threads} (peer)", floor, TASK_COUNT))
        print(describe(f"datapipe taskrunner --tasks {threads}", ours, TASK_COUNT))
        # The medians of the two sides drift apart with other work on a shared machine; the fastest runs are the least
        # disturbed.
        paired = paired_ratio(ours, floor)
        best = min(ours) / min(floor)
        overhead = (statistics.median(ours) - statistics.median(floor)) / TASK_COUNT * 1000
        verdict = "met" if max(paired, best) <= GOAL else "NOT met"
        print(f"  ratio runner/floor: {paired:.2f}x median of rounds, {best:.2f}x fastest, "
              f"{ratio(ours, floor):.2f}x of medians (goal <= {GOAL:.1f}x) -> "
              f"{verdict}; overhead per task {overhead:+.1f} ms (medians)")
        if len(sizes) > 1:
            print_growth(results, threads, sizes)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
