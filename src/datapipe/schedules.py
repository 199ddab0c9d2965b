"""`datapipe schedule`: what starts the deployed workflows (EventBridge Scheduler schedules and EventBridge rules).

Everything is found by physical name (`Naming`), the way the triggers stack named it, so the command works the
same against an AWS account and against the embedded emulator (see datapipe.aws for how it is chosen).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.table import Table

from datapipe.aws import client, resolve_target
from datapipe.errors import DatapipeError
from datapipe.naming import NAME_PATTERN, Naming


@dataclass(frozen=True)
class Target:
    kind: str  # workflow, topic, function, queue or other
    name: str  # the short name (workflow name, topic name, ...)
    arn: str
    input: str | None = None  # the fixed input or the input template (rules)


@dataclass(frozen=True)
class ScheduleView:
    name: str
    physical_name: str
    state: str
    expression: str
    time_zone: str
    flexible_window_minutes: int | None  # None: the window is off
    target: Target
    retry_attempts: int | None
    max_event_age_seconds: int | None
    dead_letter_queue: str | None


@dataclass(frozen=True)
class RuleView:
    name: str
    physical_name: str
    state: str
    description: str
    event_pattern: dict[str, Any]
    targets: list[Target] = field(default_factory=list)


@dataclass(frozen=True)
class Triggers:
    schedule_group: str | None  # None when the group is not deployed
    schedules: list[ScheduleView]
    rules: list[RuleView]


def short_name(naming: Naming, physical_name: str) -> str:
    """`datapipe-dev-emr-daily` -> `emr-daily`; names of others are kept whole."""
    return physical_name.removeprefix(naming.name(""))


def describe_target(naming: Naming, arn: str, input_text: str | None = None) -> Target:
    parts = arn.split(":")
    service = parts[2] if len(parts) > 2 else ""
    resource = ":".join(parts[5:])
    if service == "states" and resource.startswith("stateMachine:"):
        return Target("workflow", short_name(naming, resource.removeprefix("stateMachine:")), arn, input_text)
    kinds = {"sns": "topic", "lambda": "function", "sqs": "queue"}
    name = resource.removeprefix("function:")
    return Target(kinds.get(service, "other"), short_name(naming, name), arn, input_text)


def read_triggers(naming: Naming, *, scheduler: Any, events: Any) -> Triggers:
    """The schedules of our schedule group and the rules named with our prefix, with their targets."""
    group = naming.schedule_group()
    schedules: list[ScheduleView] = []
    try:
        scheduler.get_schedule_group(Name=group)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        group_found = False
    else:
        group_found = True
        names = [
            summary["Name"]
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
            for summary in page["Schedules"]
        ]
        for physical_name in sorted(names):
            detail = scheduler.get_schedule(GroupName=group, Name=physical_name)
            schedules.append(_schedule_view(naming, detail))

    rules: list[RuleView] = []
    for page in events.get_paginator("list_rules").paginate(NamePrefix=naming.name("")):
        for rule in page["Rules"]:
            targets = [
                describe_target(naming, t["Arn"], _target_input(t))
                for target_page in events.get_paginator("list_targets_by_rule").paginate(Rule=rule["Name"])
                for t in target_page["Targets"]
            ]
            rules.append(
                RuleView(
                    name=short_name(naming, rule["Name"]),
                    physical_name=rule["Name"],
                    state=rule.get("State", ""),
                    description=rule.get("Description", ""),
                    event_pattern=json.loads(rule["EventPattern"]) if rule.get("EventPattern") else {},
                    targets=targets,
                )
            )
    rules.sort(key=lambda r: r.name)
    return Triggers(schedule_group=group if group_found else None, schedules=schedules, rules=rules)


def _schedule_view(naming: Naming, detail: dict[str, Any]) -> ScheduleView:
    target = detail.get("Target", {})
    window = detail.get("FlexibleTimeWindow", {})
    retry = target.get("RetryPolicy", {})
    return ScheduleView(
        name=short_name(naming, detail["Name"]),
        physical_name=detail["Name"],
        state=detail.get("State", ""),
        expression=detail.get("ScheduleExpression", ""),
        time_zone=detail.get("ScheduleExpressionTimezone") or "UTC",
        flexible_window_minutes=window.get("MaximumWindowInMinutes") if window.get("Mode") == "FLEXIBLE" else None,
        target=describe_target(naming, target.get("Arn", ""), target.get("Input")),
        retry_attempts=retry.get("MaximumRetryAttempts"),
        max_event_age_seconds=retry.get("MaximumEventAgeInSeconds"),
        dead_letter_queue=target.get("DeadLetterConfig", {}).get("Arn"),
    )


def _target_input(target: dict[str, Any]) -> str | None:
    if "Input" in target:
        return str(target["Input"])
    transformer = target.get("InputTransformer")
    return str(transformer["InputTemplate"]) if transformer else None


# -- presentation ---------------------------------------------------------------------------------------------------


def _as_json(triggers: Triggers) -> dict[str, Any]:
    def camel(value: Any) -> Any:
        if isinstance(value, dict):
            return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
        if isinstance(value, list):
            return [camel(v) for v in value]
        return value

    return {
        "scheduleGroup": triggers.schedule_group,
        "schedules": [camel(asdict(s)) for s in triggers.schedules],
        "rules": [{**camel(asdict(r)), "eventPattern": r.event_pattern} for r in triggers.rules],
    }


def _print_tables(triggers: Triggers, console: Console) -> None:
    schedules = Table(title=f"Schedules ({triggers.schedule_group or 'no schedule group deployed'})")
    for column in ("name", "state", "when", "time zone", "window", "starts", "input"):
        schedules.add_column(column)
    for s in triggers.schedules:
        window = f"{s.flexible_window_minutes} min" if s.flexible_window_minutes else "off"
        schedules.add_row(
            s.name, s.state, s.expression, s.time_zone, window, _target_label(s.target), s.target.input or ""
        )
    console.print(schedules)

    rules = Table(title="Rules")
    for column in ("name", "state", "when", "targets"):
        rules.add_column(column)
    for r in triggers.rules:
        when = r.description.removeprefix("datapipe: ") or json.dumps(r.event_pattern)
        rules.add_row(r.name, r.state, when, ", ".join(_target_label(t) for t in r.targets))
    console.print(rules)


def _target_label(target: Target) -> str:
    return f"{target.kind} {target.name}"


# -- command --------------------------------------------------------------------------------------------------------


def _check_name(option: str, value: str) -> None:
    if re.fullmatch(NAME_PATTERN, value) is None:
        raise DatapipeError(f"{option} must be a lower-case name (letters, digits, dashes), got {value!r}")


@click.group()
def schedule() -> None:
    """Schedules and rules that start the deployed workflows."""


@schedule.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--prefix", envvar="DATAPIPE_PREFIX", default="datapipe", show_default=True, help="Deployed prefix.")
@click.option("--stage", envvar="DATAPIPE_STAGE", default="dev", show_default=True, help="Deployed stage.")
@click.option("--endpoint-url", default=None, help="Send requests here (an emulator) instead of AWS.")
@click.option("--region", default=None, help="AWS region [the environment's, or the emulator's].")
def list_triggers(as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None) -> None:
    """List the deployed schedules and the rules named with our prefix, with what they start."""
    _check_name("--prefix", prefix)
    _check_name("--stage", stage)
    naming = Naming(prefix=prefix, stage=stage)
    target = resolve_target(endpoint_url, region)
    try:
        triggers = read_triggers(naming, scheduler=client("scheduler", target), events=client("events", target))
    except ValueError as error:  # botocore rejects a malformed endpoint URL with ValueError
        raise DatapipeError(f"--endpoint-url: {error}") from None
    except NoRegionError:
        raise DatapipeError("no region: pass --region or set AWS_REGION") from None
    except NoCredentialsError:
        raise DatapipeError("no AWS credentials: configure the AWS CLI or set AWS_ACCESS_KEY_ID", exit_code=1) from None
    except ClientError as error:
        problem = error.response.get("Error", {})
        raise DatapipeError(
            f"listing triggers on {target.describe()}: {problem.get('Code')}: {problem.get('Message')}", exit_code=1
        ) from None
    except BotoCoreError as error:
        raise DatapipeError(f"listing triggers on {target.describe()}: {error}", exit_code=1) from None
    if triggers.schedule_group is None and not triggers.rules:
        raise DatapipeError(
            f"nothing of {naming.name('*')} is deployed on {target.describe()}: deploy the app, or check --prefix, "
            "--stage and --region",
            exit_code=1,
        )
    if as_json:
        click.echo(json.dumps(_as_json(triggers), indent=2))
    else:
        _print_tables(triggers, Console(width=200))
