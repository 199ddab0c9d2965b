"""`datapipe schedule`: what starts the deployed workflows (EventBridge Scheduler schedules and EventBridge rules).

Everything is found by physical name (`Naming`), the way the triggers stack named it, so the command works the
same against an AWS account and against the embedded emulator (see datapipe.aws for how it is chosen).
`datapipe schedule catch-up PIPELINE` starts the runs an imported pipeline's schedules missed before it was
deployed (a startDateTime in the past), under the catch-up policy of its deployment or `--policy`.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import click
from botocore.exceptions import ClientError

from datapipe.aws import client, explain, resolve_target
from datapipe.errors import DatapipeError
from datapipe.importer.schedules import CATCH_UP_POLICIES, SCHEDULE_TYPES, Schedule, missed_runs, parse_period
from datapipe.jsontext import parse_json, shown
from datapipe.listing import print_listing
from datapipe.naming import NAME_PATTERN, Naming

DEFAULT_SCHEDULE_GROUP = "default"  # where a schedule made without a group lives (an imported pipeline's)
# Where the pipelines stack writes a pipeline's schedules (stacks.pipeline_schedules.schedule_record_name).
SCHEDULE_RECORD = "/{prefix}/{stage}/pipelines/{name}/schedules"
MAX_CATCH_UP_RUNS = 1000
EXECUTION_NAME_LIMIT = 80


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
    group: str  # the EventBridge Scheduler group: ours, or "default" for an imported pipeline's
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
    """Every schedule and rule the app deployed, with their targets.

    The triggers stack's schedules live in our schedule group; the imported pipelines' schedules live in the default
    group under names that start with `<prefix>-<stage>-`; rules are named with that prefix.
    """
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
    wanted: list[tuple[str, str | None]] = [(group, None)] if group_found else []
    wanted.append((DEFAULT_SCHEDULE_GROUP, naming.name("")))
    for group_name, name_prefix in wanted:
        listed = [
            summary["Name"]
            for page in scheduler.get_paginator("list_schedules").paginate(
                GroupName=group_name, **({"NamePrefix": name_prefix} if name_prefix else {})
            )
            for summary in page["Schedules"]
            if name_prefix is None or summary["Name"].startswith(name_prefix)  # a server may ignore NamePrefix
        ]
        for physical_name in sorted(listed):
            detail = scheduler.get_schedule(GroupName=group_name, Name=physical_name)
            schedules.append(_schedule_view(naming, detail, group_name))

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
                    event_pattern=_event_pattern(rule),
                    targets=targets,
                )
            )
    rules.sort(key=lambda r: r.name)
    return Triggers(schedule_group=group if group_found else None, schedules=schedules, rules=rules)


def _event_pattern(rule: dict[str, Any]) -> dict[str, Any]:
    if not rule.get("EventPattern"):
        return {}
    pattern = parse_json(rule["EventPattern"], what=f"the event pattern of rule {rule['Name']}")
    return pattern if isinstance(pattern, dict) else {}


def _schedule_view(naming: Naming, detail: dict[str, Any], group: str) -> ScheduleView:
    target = detail.get("Target", {})
    window = detail.get("FlexibleTimeWindow", {})
    retry = target.get("RetryPolicy", {})
    return ScheduleView(
        name=short_name(naming, detail["Name"]),
        physical_name=detail["Name"],
        group=group,
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


def _print_listings(triggers: Triggers) -> None:
    print_listing(
        ("name", "group", "state", "when", "time zone", "window", "starts", "input"),
        [
            (
                s.name,
                s.group,
                s.state,
                s.expression,
                s.time_zone,
                f"{s.flexible_window_minutes} min" if s.flexible_window_minutes else "off",
                _target_label(s.target),
                s.target.input or "",
            )
            for s in triggers.schedules
        ],
        title=f"Schedules ({triggers.schedule_group or 'no schedule group deployed'}, and {DEFAULT_SCHEDULE_GROUP})",
    )
    print_listing(
        ("name", "state", "when", "targets"),
        [
            (
                r.name,
                r.state,
                r.description.removeprefix("datapipe: ") or json.dumps(r.event_pattern),
                ", ".join(_target_label(t) for t in r.targets),
            )
            for r in triggers.rules
        ],
        title="Rules",
    )


def _target_label(target: Target) -> str:
    return f"{target.kind} {target.name}"


# -- command --------------------------------------------------------------------------------------------------------


def _check_name(option: str, value: str) -> None:
    if re.fullmatch(NAME_PATTERN, value) is None:
        raise DatapipeError(f"{option} must be a lower-case name (letters, digits, dashes), got {shown(value)}")


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
    except Exception as error:
        explained = explain(error, target=target, doing="listing triggers")
        if explained is None:
            raise
        raise explained from None
    if triggers.schedule_group is None and not triggers.rules and not triggers.schedules:
        raise DatapipeError(
            f"nothing of {naming.name('*')} is deployed on {target.describe()}: deploy the app, or check --prefix, "
            "--stage and --region",
            exit_code=1,
        )
    if as_json:
        click.echo(json.dumps(_as_json(triggers), indent=2))
    else:
        _print_listings(triggers)


# -- catch-up ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatchUpRun:
    schedule: str
    scheduled_start_time: str
    execution: str
    started: bool  # False: a run of that name existed already (catch-up ran before)


def catch_up_execution_name(schedule_id: str, moment: datetime.datetime) -> str:
    """One name per schedule and interval, so that catching up twice starts nothing twice."""
    key = re.sub(r"[^A-Za-z0-9_-]", "-", schedule_id)[:50]
    return f"catch-up-{key}-{moment:%Y%m%dT%H%M%S}"[:EXECUTION_NAME_LIMIT]


def read_schedule_record(ssm: Any, naming: Naming, pipeline: str) -> dict[str, Any]:
    name = SCHEDULE_RECORD.format(prefix=naming.prefix, stage=naming.stage, name=pipeline)
    try:
        text = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        raise DatapipeError(f"pipeline {pipeline} has no schedules deployed (no parameter {name}): check the name, "
                            "--prefix and --stage, or whether its definition has a schedule", exit_code=1) from None
    record = parse_json(text, what=f"the schedule record {name}")
    if not isinstance(record, dict) or not isinstance(record.get("schedules"), list):
        raise DatapipeError(f"the schedule record {name} is not what the pipelines stack writes: redeploy it")
    return record


def _recorded_schedule(entry: Any, where: str) -> Schedule:
    def moment(key: str) -> datetime.datetime | None:
        text = entry.get(key)
        return None if text is None else datetime.datetime.fromisoformat(str(text))

    try:
        period = parse_period(str(entry["period"]))
        kind = str(entry["type"])
        if period is None or kind not in SCHEDULE_TYPES:
            raise ValueError(f"period {entry['period']!r}, type {kind!r}")
        return Schedule(str(entry["id"]), "", moment("start"), moment("end"), schedule_type=kind, period=period)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DatapipeError(f"the schedule record {where} has an entry that cannot be read ({error}): redeploy "
                            "the pipeline") from None


def catch_up(
    naming: Naming, pipeline: str, *, sfn: Any, ssm: Any, now: datetime.datetime, policy: str | None, limit: int | None
) -> list[CatchUpRun]:
    """Start the missed runs of every schedule of `pipeline` (policy and limit: the deployment's unless given)."""
    record = read_schedule_record(ssm, naming, pipeline)
    where = SCHEDULE_RECORD.format(prefix=naming.prefix, stage=naming.stage, name=pipeline)
    policy = policy or str(record.get("catchUp", "none"))
    if policy not in CATCH_UP_POLICIES:
        raise DatapipeError(f"the catch-up policy of {where} must be one of {', '.join(CATCH_UP_POLICIES)}, got "
                            f"{shown(policy)}: redeploy the pipeline, or give --policy")
    recorded_limit = record.get("catchUpLimit", 100)
    if limit is None and (type(recorded_limit) is not int or not 1 <= recorded_limit <= MAX_CATCH_UP_RUNS):
        raise DatapipeError(f"the catch-up limit of {where} must be a number from 1 to {MAX_CATCH_UP_RUNS}, got "
                            f"{shown(recorded_limit)}: redeploy the pipeline, or give --limit")
    limit = limit or int(recorded_limit)
    schedules = [_recorded_schedule(entry if isinstance(entry, dict) else {}, where) for entry in record["schedules"]]
    state_machine = record.get("stateMachine")
    if not isinstance(state_machine, str) or not state_machine:
        raise DatapipeError(f"the schedule record {where} names no state machine: redeploy the pipeline")
    arn = _state_machine_arn(sfn, state_machine)
    runs: list[CatchUpRun] = []
    for planned in schedules:
        for moment in missed_runs(planned, now, policy=policy, limit=limit):
            start_time = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            name = catch_up_execution_name(planned.id, moment)
            payload = {"scheduledStartTime": start_time, "schedule": planned.id, "catchUp": True}
            if _execution_exists(sfn, arn, name):  # StartExecution of a running run's name and input succeeds
                runs.append(CatchUpRun(planned.id, start_time, name, started=False))
                continue
            try:
                sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                    raise
                runs.append(CatchUpRun(planned.id, start_time, name, started=False))
            else:
                runs.append(CatchUpRun(planned.id, start_time, name, started=True))
    return runs


def _execution_exists(sfn: Any, state_machine_arn: str, name: str) -> bool:
    execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        sfn.describe_execution(executionArn=execution_arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise
        return False
    return True


def _state_machine_arn(sfn: Any, name: str) -> str:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    raise DatapipeError(f"the state machine {name} of the schedule record is not deployed: deploy the pipeline",
                        exit_code=1)


@schedule.command("catch-up")
@click.argument("pipeline")
@click.option("--policy", type=click.Choice(CATCH_UP_POLICIES), default=None,
              help="none, last (the latest missed interval) or all (every missed one, at most --limit) "
              "[the deployment's pipelines.catchUp].")
@click.option("--limit", type=click.IntRange(1, MAX_CATCH_UP_RUNS), default=None,
              help="With --policy all: start at most this many runs per schedule, the latest [pipelines.catchUpLimit].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--prefix", envvar="DATAPIPE_PREFIX", default="datapipe", show_default=True, help="Deployed prefix.")
@click.option("--stage", envvar="DATAPIPE_STAGE", default="dev", show_default=True, help="Deployed stage.")
@click.option("--endpoint-url", default=None, help="Send requests here (an emulator) instead of AWS.")
@click.option("--region", default=None, help="AWS region [the environment's, or the emulator's].")
def catch_up_command(
    pipeline: str, policy: str | None, limit: int | None, as_json: bool, prefix: str, stage: str,
    endpoint_url: str | None, region: str | None,
) -> None:
    """Start the runs PIPELINE's schedules missed before now (its startDateTime lies in the past).

    Each run gets its interval's start as scheduledStartTime and is named after its schedule and that time, so a
    second catch-up starts only what the first did not.
    """
    _check_name("--prefix", prefix)
    _check_name("--stage", stage)
    _check_name("PIPELINE", pipeline)
    naming = Naming(prefix=prefix, stage=stage)
    target = resolve_target(endpoint_url, region)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    try:
        runs = catch_up(naming, pipeline, sfn=client("stepfunctions", target), ssm=client("ssm", target), now=now,
                        policy=policy, limit=limit)
    except DatapipeError:
        raise
    except Exception as error:
        explained = explain(error, target=target, doing="catching up")
        if explained is None:
            raise
        raise explained from None
    if as_json:
        click.echo(json.dumps([{"schedule": r.schedule, "scheduledStartTime": r.scheduled_start_time,
                                "execution": r.execution, "started": r.started} for r in runs], indent=2))
        return
    print_listing(("schedule", "scheduledStartTime", "run", "started"),
                  [(r.schedule, r.scheduled_start_time, r.execution, "yes" if r.started else "no: it exists")
                   for r in runs],
                  title=f"Catch-up of {pipeline}: {sum(r.started for r in runs)} runs started")
