"""Wait states at the emulator's `wait_scale`: every form of Wait is scaled, a stop still ends one, 1.0 is real time."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable
from typing import Any

from datapipe.local.extensions import Extensions

from .conftest import history, run_state_machine, wait_for_execution


def waits(*wait_states: dict[str, Any]) -> dict[str, Any]:
    """A state machine that runs the given Wait states one after the other, then succeeds."""
    names = [f"Wait{i}" for i in range(len(wait_states))]
    states: dict[str, Any] = {}
    for index, (name, state) in enumerate(zip(names, wait_states, strict=True)):
        follow = {"Next": names[index + 1]} if index + 1 < len(names) else {"End": True}
        states[name] = {"Type": "Wait", **state, **follow}
    return {"StartAt": names[0], "States": states}


def timed_run(aws: Callable[[str], Any], definition: dict[str, Any], execution_input: dict[str, Any]) -> float:
    started = time.monotonic()
    _, execution_arn = run_state_machine(aws, definition, execution_input)
    described = wait_for_execution(aws, execution_arn, timeout=30)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return time.monotonic() - started


def test_every_kind_of_wait_takes_its_time_times_the_scale(aws: Callable[[str], Any], emulator: Extensions) -> None:
    emulator.configure(dataclasses.replace(emulator.options, wait_scale=0.05))
    in_20_seconds = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    definition = waits(
        {"Seconds": 10},
        {"SecondsPath": "$.seconds"},
        {"Timestamp": in_20_seconds},
        {"TimestampPath": "$.until"},
    )
    # 10 + 10 + about 20 + about 20 seconds of waiting, scaled to about 3 s.
    took = timed_run(aws, definition, {"seconds": 10, "until": in_20_seconds})
    assert 2.0 <= took < 10.0


def test_a_stopped_execution_leaves_a_scaled_wait_at_once(aws: Callable[[str], Any], emulator: Extensions) -> None:
    emulator.configure(dataclasses.replace(emulator.options, wait_scale=0.5))
    _, execution_arn = run_state_machine(aws, waits({"Seconds": 60}), {})  # 30 s at this scale
    sfn = aws("stepfunctions")
    deadline = time.monotonic() + 10
    while "WaitStateEntered" not in [event["type"] for event in history(aws, execution_arn)]:
        assert time.monotonic() < deadline, "the Wait state was never entered"
        time.sleep(0.05)
    sfn.stop_execution(executionArn=execution_arn, error="test", cause="stopped while waiting")
    described = wait_for_execution(aws, execution_arn, timeout=5)
    assert described["status"] == "ABORTED"
    assert "WaitStateExited" not in [event["type"] for event in history(aws, execution_arn)]


def test_at_scale_one_a_wait_takes_real_time(aws: Callable[[str], Any], emulator: Extensions) -> None:
    assert emulator.options.wait_scale == 1.0  # the default
    took = timed_run(aws, waits({"Seconds": 1}), {})
    assert took >= 1.0
