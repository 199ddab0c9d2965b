"""CPU spent by executions that wait on the emulator's EMR `.sync`, against moto's own `.sync` polling, same run.

Eight executions wait in `addStep.sync` for a step of 4 s (the emulator: woken by lifecycle changes, re-checking
every `poll_interval`, no HTTP while waiting). The peer is moto's built-in `.sync` loop, measured on eight
`states:startExecution.sync` executions whose child waits 4 s in a Wait state, with moto's own 0.5 s delay between
DescribeExecution calls over HTTP.
Figures: CPU seconds of this process per wall second while the executions wait, and the ratio to the peer.
Run: `python -m bench emulator_waits` (about 15 s).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

WAITERS = 8
STEP_SECONDS = 4.0
MEASURE_SECONDS = 2.5
ROLE = "arn:aws:iam::123456789012:role/bench"


def _cpu_while_waiting(start: Any) -> float:
    """CPU seconds per wall second of this process over MEASURE_SECONDS, once `start()` launched the waiters."""
    start()
    time.sleep(0.5)  # let every execution reach its wait
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(MEASURE_SECONDS)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def _machine(sfn: Any, state: dict[str, Any]) -> str:
    definition = {"StartAt": "Wait", "States": {"Wait": {**state, "End": True}}}
    name = f"bench-{uuid.uuid4().hex[:8]}"
    return str(sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"])


def main() -> None:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from datapipe.local import executions
    from datapipe.local.extensions import EmulatorOptions, install, installed, uninstall

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    ours = installed() is None
    extensions = install(EmulatorOptions(endpoint_url=endpoint, emr_step_duration=STEP_SECONDS, emr_boot_seconds=0.2))
    try:

        def client(service: str) -> Any:
            session: Any = boto3.session.Session()
            return session.client(service, region_name="eu-west-1", endpoint_url=endpoint)

        sfn, emr = client("stepfunctions"), client("emr")
        cluster = emr.run_job_flow(
            Name="bench",
            ReleaseLabel="emr-7.5.0",
            StepConcurrencyLevel=WAITERS,
            Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
            JobFlowRole="bench",
            ServiceRole="bench",
        )["JobFlowId"]
        step = {"Name": "s", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar"}}
        emr_machine = _machine(
            sfn,
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::elasticmapreduce:addStep.sync",
                "Parameters": {"ClusterId": cluster, "Step": step},
            },
        )
        child = _machine(sfn, {"Type": "Wait", "Seconds": int(STEP_SECONDS)})
        nested_machine = _machine(
            sfn,
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync",
                "Parameters": {"StateMachineArn": child},
            },
        )
        time.sleep(0.5)  # the cluster is WAITING

        emulator_share = _cpu_while_waiting(
            lambda: [sfn.start_execution(stateMachineArn=emr_machine) for _ in range(WAITERS)]
        )
        time.sleep(STEP_SECONDS)
        executions.set_poll_interval(0.5)  # moto's own delay between .sync polls
        peer_share = _cpu_while_waiting(
            lambda: [sfn.start_execution(stateMachineArn=nested_machine) for _ in range(WAITERS)]
        )
        time.sleep(STEP_SECONDS)
        executions.set_poll_interval(extensions.options.poll_interval)
    finally:
        if ours:
            uninstall()
        server.stop()

    print(f"{WAITERS} executions waiting, emulator EMR .sync   {emulator_share * 100:6.2f} % of a core")
    print(f"{WAITERS} executions waiting, moto's .sync loop     {peer_share * 100:6.2f} % of a core (nested execution)")
    print(f"ratio emulator / moto                         {emulator_share / peer_share:6.2f}")


if __name__ == "__main__":
    main()
