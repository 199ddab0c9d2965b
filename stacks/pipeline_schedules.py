"""The schedules of an imported pipeline (see datapipe.importer.schedules and docs/importer.md, "Schedules").

- `add_pipeline_schedules`: one EventBridge Scheduler schedule per Schedule object, firing at each interval's start
  and starting the state machine with `{"scheduledStartTime": <the interval's start>, "schedule": "<Schedule id>"}`,
  and the pipeline's schedule record (an SSM parameter) that `datapipe schedule catch-up` reads.
- `schedule_entry`: the states in front of the run: the run's schedule must be one of the pipeline's; a timeseries
  run waits out its interval (not a catch-up run: its interval is over); with maxActiveInstances, the run waits
  until it is among the oldest that many running runs.
- `run_counter_name`: a schedule with `occurrences` and no start counts its runs in an SSM parameter of its own:
  CloudFormation creates it (version 1), each run of the schedule overwrites it first (`Count_Run_Of_<id>`) and gets
  the next version back, atomically; a run whose version is past `occurrences + 1` ends at once as a success.
- `on_its_schedule`: with several schedules, an activity runs only in the runs of its own schedule (a run started
  without a schedule, on demand, does every activity).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.errors import DatapipeError
from datapipe.importer.plan import Plan
from datapipe.importer.schedules import TIMESERIES
from datapipe.naming import Naming
from stacks.config import PipelineSettings

SCHEDULE_PATH = "$.schedule"  # the input key naming the run's Schedule object
CATCH_UP_PATH = "$.catchUp"  # present in the runs `datapipe schedule catch-up` starts: their interval is over
ACTIVE_RUNS_PATH = "$.activeRuns"
OCCURRENCE_PATH = "$.occurrence"  # the version this run wrote to its schedule's run counter
RUN_COUNTER = "/{prefix}/{stage}/pipelines/{name}/runs-of/{schedule}"
SCHEDULE_RECORD = "/{prefix}/{stage}/pipelines/{name}/schedules"
SCHEDULE_NAME_LIMIT = 64
STANDARD_PARAMETER_LIMIT = 4096  # characters of a standard SSM parameter; advanced ones take 8192
ADVANCED_PARAMETER_LIMIT = 8192

StateName = Callable[[str], str]


def schedule_record_name(naming: Naming, pipeline: str) -> str:
    return SCHEDULE_RECORD.format(prefix=naming.prefix, stage=naming.stage, name=pipeline)


def schedule_name(naming: Naming, workflow_name: str, schedule_id: str, *, only: bool) -> str:
    """`<prefix>-<stage>-pipeline-<name>` for a pipeline's only schedule (as before), else with the Schedule's id."""
    base = naming.name(workflow_name)
    if only:
        return base[:SCHEDULE_NAME_LIMIT]
    suffix = "-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in schedule_id)
    return (base[: SCHEDULE_NAME_LIMIT - min(len(suffix), 24)] + suffix)[:SCHEDULE_NAME_LIMIT]


def run_counter_name(naming: Naming, pipeline: str, schedule: str) -> str:
    """The SSM parameter counting the runs of a schedule (`schedule`: its Scheduler name, unique in the pipeline)."""
    return RUN_COUNTER.format(prefix=naming.prefix, stage=naming.stage, name=pipeline, schedule=schedule)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment else None  # Data Pipeline's date-times are UTC


def schedule_record(plan: Plan, *, state_machine: str, settings: PipelineSettings) -> str:
    """What `datapipe schedule catch-up` needs to know of a pipeline's schedules, as JSON."""
    return json.dumps({
        "stateMachine": state_machine,
        "catchUp": settings.catch_up,
        "catchUpLimit": settings.catch_up_limit,
        "schedules": [
            {"id": s.id, "type": s.schedule_type, "period": str(s.period),
             "start": s.start.isoformat() if s.start else None, "end": s.end.isoformat() if s.end else None}
            for s in plan.schedules
        ],
    }, separators=(",", ":"))


def add_pipeline_schedules(
    scope: Construct,
    *,
    naming: Naming,
    plan: Plan,
    workflow_name: str,
    state_machine: sfn.IStateMachine,
    settings: PipelineSettings,
    role: iam.IRole | None,
) -> list[scheduler.Schedule]:
    """Every schedule of one pipeline, all started with `role`, and the pipeline's schedule record, in `scope`.

    A pipeline's only schedule keeps the construct id `Schedule` it always had in its workflow: a new logical id
    would make CloudFormation create a second schedule of the same name before deleting the first, which fails.
    """
    only = len(plan.schedules) == 1
    schedules: list[scheduler.Schedule] = []
    names: dict[str, str] = {}
    for index, planned in enumerate(plan.schedules):
        name = schedule_name(naming, workflow_name, planned.id, only=only)
        if name in names:
            raise DatapipeError(f"pipeline {plan.source}: schedules {names[name]} and {planned.id} would both be "
                                f"named {name}; rename one of them")
        names[name] = planned.id
        counter = None
        if planned.occurrences:
            # Its value never changes in the template: an update by CloudFormation would count as a run.
            counter = ssm.StringParameter(
                scope, f"RunCounter{index}", parameter_name=run_counter_name(naming, plan.name, name),
                string_value="deployed",
                description=f"datapipe: runs of schedule {planned.id}; each run writes its execution as a new version, "
                f"version 1 is the deployment, runs after version {planned.occurrences + 1} do nothing"[:1024],
            )
        schedules.append(scheduler.Schedule(
            scope,
            "Schedule" if only else f"Schedule{index}",
            schedule_name=name,
            schedule=scheduler.ScheduleExpression.expression(planned.expression),
            description=planned.description[:512],
            start=_utc(planned.start),
            # The last interval starts at `end`: one second more lets it fire (and start < end, as CDK requires).
            end=_utc(planned.end + timedelta(seconds=1)) if planned.end else None,
            target=scheduler_targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"scheduledStartTime": scheduler.ContextAttribute.scheduled_time, "schedule": planned.id}
                ),
                role=role,
            ),
        ))
        if counter is not None:  # no run before its counter exists
            schedules[-1].node.add_dependency(counter)
    record = schedule_record(plan, state_machine=naming.state_machine(workflow_name), settings=settings)
    if len(record) > ADVANCED_PARAMETER_LIMIT:
        raise DatapipeError(f"pipeline {plan.source}: its {len(plan.schedules)} schedules do not fit in one "
                            f"schedule record ({ADVANCED_PARAMETER_LIMIT} characters); use fewer Schedule objects")
    ssm.StringParameter(
        scope, "ScheduleRecord", parameter_name=schedule_record_name(naming, plan.name), string_value=record,
        description=f"datapipe: the schedules of pipeline {plan.name}, for datapipe schedule catch-up",
        tier=ssm.ParameterTier.ADVANCED if len(record) > STANDARD_PARAMETER_LIMIT else ssm.ParameterTier.STANDARD,
    )
    return schedules


# -- states ------------------------------------------------------------------------------------------------------------


def schedule_entry(
    scope: Construct,
    start: sfn.IChainable,
    *,
    plan: Plan,
    name: StateName,
    state_machine_arn: str,
    settings: PipelineSettings,
    naming: Naming,
    workflow_name: str,
) -> sfn.IChainable:
    """The states in front of `start` that a pipeline's schedules and maxActiveInstances need (none otherwise)."""
    entry = start
    if plan.max_active_runs:
        entry = _active_runs_gate(scope, entry, limit=plan.max_active_runs, name=name,
                                  state_machine_arn=state_machine_arn, settings=settings)
    if len(plan.schedules) < 2 and not any(s.wait_seconds or s.occurrences for s in plan.schedules):
        return entry  # one cron schedule: the run does not depend on which schedule started it
    unknown = sfn.Fail(scope, "UnknownSchedule", state_name=name("Unknown_Schedule"), error="UnknownSchedule",
                       cause="the input's schedule must be one of: " + ", ".join(s.id for s in plan.schedules))
    # A run started on demand does every activity: its schedule is "", which no activity's skip names.
    on_demand = sfn.Pass(scope, "OnDemandRun", state_name=name("On_Demand_Run"), result=sfn.Result.from_string(""),
                         result_path=SCHEDULE_PATH)
    on_demand.next(entry)
    # Each comparison is guarded by the rule before it: a comparison on a missing or non-text value fails the run.
    choice = (sfn.Choice(scope, "WhichSchedule", state_name=name("Which_Schedule"))
              .when(sfn.Condition.is_not_present(SCHEDULE_PATH), on_demand)
              .when(sfn.Condition.not_(sfn.Condition.is_string(SCHEDULE_PATH)), unknown))
    only = len(plan.schedules) == 1
    for index, planned in enumerate(plan.schedules):
        its_runs = sfn.Condition.string_equals(SCHEDULE_PATH, planned.id)
        its_entry = entry
        if planned.schedule_type == TIMESERIES and planned.wait_seconds:
            wait = sfn.Wait(scope, f"WaitForIntervalEnd{index}", state_name=name(f"Wait_For_End_Of_{planned.id}"),
                            time=sfn.WaitTime.duration(cdk.Duration.seconds(planned.wait_seconds)))
            wait.next(entry)
            if planned.occurrences:  # no catch-up without a start: every run of the schedule waits
                its_entry = wait
            else:
                choice.when(sfn.Condition.and_(its_runs, sfn.Condition.is_not_present(CATCH_UP_PATH)), wait,
                            comment=f"a timeseries run works at the end of its {planned.period} interval")
        if planned.occurrences:
            counter = run_counter_name(naming, plan.name, schedule_name(naming, workflow_name, planned.id, only=only))
            its_entry = _run_count_gate(scope, its_entry, index=index, schedule_id=planned.id,
                                        occurrences=planned.occurrences, counter=counter, name=name)
        choice.when(its_runs, its_entry)
    return choice.otherwise(unknown)


def _run_count_gate(
    scope: Construct, entry: sfn.IChainable, *, index: int, schedule_id: str, occurrences: int, counter: str,
    name: StateName,
) -> sfn.IChainable:
    """Count this run of the schedule in its counter; go on within the first `occurrences` runs, else end at once.

    SSM gives each write of a parameter the next version, atomically: runs started together get different numbers.
    No retry: a retried write that had succeeded would count this run twice (a run fewer, never one more); a failed
    write fails the run, so no run goes uncounted.
    """
    count = tasks.CallAwsService(
        scope, f"CountRun{index}", state_name=name(f"Count_Run_Of_{schedule_id}"),
        service="ssm", action="putParameter", iam_action="ssm:PutParameter",
        iam_resources=[cdk.Stack.of(scope).format_arn(service="ssm", resource="parameter",
                                                      resource_name=counter.lstrip("/"))],
        parameters={"Name": counter, "Value": sfn.JsonPath.string_at("$$.Execution.Id"), "Type": "String",
                    "Overwrite": True},
        result_selector={"version.$": "$.Version"},
        result_path=OCCURRENCE_PATH,
    )
    used_up = sfn.Succeed(scope, f"OccurrencesUsedUp{index}", state_name=name(f"Occurrences_Of_{schedule_id}_Used_Up"),
                          comment=f"schedule {schedule_id} has started its {occurrences} runs: this one does nothing")
    # Version 1 is the deployment's: run k writes version k + 1.
    within = sfn.Condition.number_less_than_equals(f"{OCCURRENCE_PATH}.version", occurrences + 1)
    return count.next(
        sfn.Choice(scope, f"WithinOccurrences{index}", state_name=name(f"Is_Within_Occurrences_Of_{schedule_id}"))
        .when(within, entry)
        .otherwise(used_up)
    )


def _active_runs_gate(
    scope: Construct, entry: sfn.IChainable, *, limit: int, name: StateName, state_machine_arn: str,
    settings: PipelineSettings,
) -> sfn.IChainable:
    """Go on once this run is among the `limit` oldest running runs; check again every interval, a bounded number of
    times. Oldest first, so that runs started together never wait for each other."""
    listing = tasks.CallAwsService(
        scope, "ListActiveRuns", state_name=name("List_Active_Runs"),
        service="sfn", action="listExecutions", iam_action="states:ListExecutions",
        iam_resources=[state_machine_arn],
        parameters={"StateMachineArn": sfn.JsonPath.string_at("$$.StateMachine.Id"), "StatusFilter": "RUNNING",
                    "MaxResults": 1000},
        # The newest come first: the last `limit` are the oldest running runs.
        result_selector={"oldest.$": f"$.Executions[-{limit}:].ExecutionArn"},
        result_path=f"{ACTIVE_RUNS_PATH}.listed",
    )
    # A throttled or failed listing is tried again before it fails the run.
    listing.add_retry(errors=["States.TaskFailed"], max_attempts=3, interval=cdk.Duration.seconds(2), backoff_rate=2)
    checks = settings.active_runs_max_checks
    mine = sfn.Pass(scope, "IsAmongOldest", state_name=name("Is_Among_Oldest_Active_Runs"),
                    parameters={"mine.$": f"States.ArrayContains({ACTIVE_RUNS_PATH}.listed.oldest, $$.Execution.Id)",
                                "checks.$": f"States.MathAdd({ACTIVE_RUNS_PATH}.checks, 1)"},
                    result_path=ACTIVE_RUNS_PATH)
    too_many = sfn.Fail(scope, "TooManyActiveRuns", state_name=name("Too_Many_Active_Runs"),
                        error="TooManyActiveRuns",
                        cause=f"more than {limit} runs of this pipeline (maxActiveInstances) were running for "
                        f"{checks} checks {settings.active_runs_check_seconds} s apart")
    wait = sfn.Wait(scope, "WaitForActiveRuns", state_name=name("Wait_For_Active_Runs"),
                    time=sfn.WaitTime.duration(cdk.Duration.seconds(settings.active_runs_check_seconds)))
    wait.next(listing)
    counter = sfn.Pass(scope, "CountActiveRunChecks", state_name=name("Count_Active_Run_Checks"),
                       parameters={"checks": 0}, result_path=ACTIVE_RUNS_PATH)
    listing.next(mine).next(
        sfn.Choice(scope, "MayRun", state_name=name("May_Run"))
        .when(sfn.Condition.boolean_equals(f"{ACTIVE_RUNS_PATH}.mine", True), entry)
        .when(sfn.Condition.number_greater_than_equals(f"{ACTIVE_RUNS_PATH}.checks", checks), too_many)
        .otherwise(wait)
    )
    return counter.next(listing)


def on_its_schedule(
    scope: Construct, chain: sfn.IChainable, *, plan: Plan, activity_id: str, key: str, name: StateName
) -> sfn.IChainable:
    """With several schedules: the activity is skipped in the runs of another schedule (`key`: the activity's id as
    a construct id). The skip and the activity's chain end together, so the next stage follows both."""
    if len(plan.schedules) < 2:
        return chain
    own = next((s.id for s in plan.schedules if activity_id in s.activities), None)
    others = [s.id for s in plan.schedules if s.id != own]
    skip = sfn.Pass(scope, f"Skip{key}", state_name=name(f"Skip_{activity_id}"), comment="not on this run's schedule")
    choice = sfn.Choice(scope, f"OnSchedule{key}", state_name=name(f"Is_{activity_id}_On_This_Schedule"))
    choice.when(sfn.Condition.or_(*(sfn.Condition.string_equals(SCHEDULE_PATH, other) for other in others)), skip)
    return choice.otherwise(chain).afterwards()


def own_state_machine_arn(scope: Construct, state_machine_name: str) -> str:
    """A state machine's ARN by name: its role's policy cannot name the machine itself (a circular dependency)."""
    return cdk.Stack.of(scope).format_arn(service="states", resource="stateMachine", resource_name=state_machine_name,
                                          arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
