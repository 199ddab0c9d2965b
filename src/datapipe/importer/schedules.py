"""The schedules of an imported pipeline: which Schedule objects start runs, when, and which activities each run does.

Every Schedule that an activity follows (its own `schedule`, or the Default's) becomes one EventBridge Scheduler
schedule that fires at the START of each of its intervals and starts the pipeline's state machine with
`{"scheduledStartTime": <the interval's start>, "schedule": "<Schedule id>"}`; that run does the activities on that
schedule only. How the two schedule types differ (Data Pipeline's reference, Schedule and scheduleType):
- `cron`: the run works at the start of its interval;
- `timeseries`: the run works at the END of its interval; its `@scheduledStartTime` is still the interval's start.
  The state machine waits out the interval (a fixed length: minutes, hours, days or weeks) before the work.
- `ondemand`: no schedule; each start is a run (maxActiveInstances of the Default bounds how many at once).

`occurrences` with a start becomes an end date; from the first activation (no start) no end date can be known, so
the state machine counts the schedule's runs and ends those after the first `occurrences` at once
(stacks.pipeline_schedules).

The interval arithmetic is calendar arithmetic: a month after 2024-01-31 is 2024-02-29, as in Joda-Time.
`missed_runs` lists the intervals that a schedule whose start lies in the past has missed (`datapipe schedule
catch-up` starts them, according to the catch-up policy).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from datapipe.importer import schema
from datapipe.importer.laxjson import printable
from datapipe.importer.reader import Problem

if TYPE_CHECKING:
    from datapipe.importer.model import PipelineObject
    from datapipe.importer.plan import _Planner

CRON, TIMESERIES, ONDEMAND = "cron", "timeseries", "ondemand"
SCHEDULE_TYPES = (CRON, TIMESERIES, ONDEMAND)
CATCH_UP_POLICIES = ("none", "last", "all")
FIRST_ACTIVATION = "FIRST_ACTIVATION_DATE_TIME"
# Run times Step Functions and EventBridge Scheduler both take: nothing before 2000 (a date before is a typo or a
# placeholder) and nothing after 9999.
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59)
# A Scheduler schedule, two states and a record entry each: a CloudFormation stack holds 500 resources, the record
# (an SSM parameter) 8 KB.
MAX_SCHEDULES = 20
MAX_ACTIVE_RUNS = 1000  # Step Functions' ListExecutions returns at most 1000 runs in a page: the check reads one page
PERIOD = re.compile(r"^\s*([0-9]{1,9})\s*(minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)
FIXED_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
# A Standard workflow lasts at most a year: a timeseries run waits out its interval inside it.
MAX_TIMESERIES_SECONDS = 364 * 86400


@dataclass(frozen=True)
class Period:
    count: int
    unit: str  # minute, hour, day, week, month, year

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count > 1 else ''}"

    @property
    def seconds(self) -> int | None:
        """The fixed length, or None for months and years (their length depends on the calendar)."""
        per_unit = FIXED_UNIT_SECONDS.get(self.unit)
        return None if per_unit is None else self.count * per_unit


@dataclass
class Schedule:
    id: str
    expression: str  # rate(...) or cron(...): EventBridge Scheduler fires it at the start of each interval
    start: datetime | None = None  # the first interval's start (UTC); None: from the deployment on
    end: datetime | None = None  # the last interval may start at this time, not after (UTC)
    description: str = ""
    schedule_type: str = CRON
    period: Period = field(default_factory=lambda: Period(1, "day"))
    activities: list[str] = field(default_factory=list)  # the ids of the activities a run of this schedule does
    # Without a start: how many runs the schedule starts from its deployment on (0: no bound). The state machine
    # counts them, as no end date can be worked out before the schedule exists.
    occurrences: int = 0

    @property
    def wait_seconds(self) -> int:
        """How long a run waits before its work: a timeseries run works at the end of its interval."""
        return (self.period.seconds or 0) if self.schedule_type == TIMESERIES else 0


def parse_period(text: str) -> Period | None:
    match = PERIOD.match(text)
    return Period(int(match.group(1)), match.group(2).lower()) if match else None


def add_periods(moment: datetime, period: Period, times: int) -> datetime:
    """`moment` moved on by `times` periods; months and years keep the day of the month, clamped to the month's end.

    OverflowError when the result is after the year 9999.
    """
    seconds = period.seconds
    if seconds is not None:
        return moment + timedelta(seconds=seconds * times)
    months = period.count * times * (12 if period.unit == "year" else 1)
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError(f"{moment} plus {times} x {period} is outside the years 1-9999")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def interval_starts(schedule: Schedule, until: datetime, *, limit: int) -> list[datetime]:
    """The starts of the intervals from the schedule's start up to `until` (at most the `limit` latest ones).

    The number of intervals is worked out first (a division for fixed periods, months counted for the others), so
    the work grows with `limit`, not with how far in the past the start lies.
    """
    if schedule.start is None or until < schedule.start:
        return []
    last_allowed = min(until, schedule.end) if schedule.end else until
    if last_allowed < schedule.start:
        return []
    seconds = schedule.period.seconds
    if seconds is not None:
        last_index = int((last_allowed - schedule.start).total_seconds()) // seconds
    else:
        months = schedule.period.count * (12 if schedule.period.unit == "year" else 1)
        elapsed = (last_allowed.year - schedule.start.year) * 12 + last_allowed.month - schedule.start.month
        last_index = elapsed // months  # the last interval starting in the month of `last_allowed` or before
        if last_index > 0 and add_periods(schedule.start, schedule.period, last_index) > last_allowed:
            last_index -= 1  # it starts later in that month than `last_allowed`
    first_index = max(0, last_index - limit + 1)
    return [add_periods(schedule.start, schedule.period, index) for index in range(first_index, last_index + 1)]


def missed_runs(schedule: Schedule, now: datetime, *, policy: str, limit: int) -> list[datetime]:
    """The `scheduledStartTime` of each run a schedule missed before `now`, oldest first, under a catch-up policy.

    A cron run was due at its interval's start, a timeseries run at its interval's end (so the interval that is
    running now is not missed yet). `none`: nothing; `last`: the latest missed interval; `all`: every missed
    interval, at most `limit` (the latest ones).
    """
    if policy not in CATCH_UP_POLICIES:
        raise ValueError(f"catch-up policy must be one of {', '.join(CATCH_UP_POLICIES)}, got {policy!r}")
    if policy == "none" or schedule.start is None:
        return []
    due_until = now
    if schedule.schedule_type == TIMESERIES:
        seconds = schedule.period.seconds or 0
        due_until = now - timedelta(seconds=seconds)
    starts = interval_starts(schedule, due_until, limit=1 if policy == "last" else limit)
    return starts


# -- planning ---------------------------------------------------------------------------------------------------------


def schedule_type_of(obj: PipelineObject) -> str | None:
    text = obj.text("scheduleType")
    return None if text is None else text.strip().lower()


def plan_schedules(planner: _Planner) -> list[Schedule]:
    """One Schedule per Schedule object an activity follows; problems and report lines go to the planner."""
    pipeline = planner.pipeline
    activities = pipeline.of_kind(schema.ACTIVITY)
    followers: dict[str, list[str]] = {}
    types: dict[str, set[str]] = {}
    on_demand = False
    for activity in activities:
        kind = schedule_type_of(activity) or CRON
        if kind not in SCHEDULE_TYPES:
            planner.problems.append(Problem(activity.id, "scheduleType", f"must be one of {', '.join(SCHEDULE_TYPES)}"
                                            f", got {printable(kind)!r}"))
            continue
        if kind == ONDEMAND:
            on_demand = True
            continue
        schedule_id = activity.ref("schedule")
        if schedule_id is None:  # no schedule of its own or the Default's: it runs when the pipeline is started
            continue
        followers.setdefault(schedule_id, []).append(activity.id)
        types.setdefault(schedule_id, set()).add(kind)
    for schedule_obj in pipeline.of_kind(schema.SCHEDULE):
        if schedule_obj.id not in followers:
            planner.targets[schedule_obj.id] = ("not used: the pipeline is started on demand" if on_demand
                                                else "not used by any activity")
    if on_demand:
        if followers:  # Data Pipeline: ondemand is the Default's, for every object of the pipeline
            first = sorted(followers)[0]
            planner.problems.append(Problem(followers[first][0], "scheduleType", "an ondemand pipeline has no "
                                            "schedules: set scheduleType ondemand on the Default, for every object"))
        return []
    if len(followers) > MAX_SCHEDULES:
        planner.problems.append(Problem(sorted(followers)[MAX_SCHEDULES], "type", f"a pipeline has at most "
                                        f"{MAX_SCHEDULES} schedules, this one {len(followers)}: split it"))
        return []
    _note_dependencies_across_schedules(planner, followers)
    schedules = []
    for schedule_id in sorted(followers):
        kinds = types[schedule_id]
        if len(kinds) > 1:
            planner.problems.append(Problem(schedule_id, "scheduleType", "its activities mix cron and timeseries; "
                                            "a schedule starts its runs one way"))
            continue
        schedule = _plan_one(planner, pipeline.objects[schedule_id], kinds.pop(), followers[schedule_id])
        if schedule is not None:
            schedules.append(schedule)
    return schedules


def _note_dependencies_across_schedules(planner: _Planner, followers: dict[str, list[str]]) -> None:
    """A run does its own schedule's activities only: one that waits for an activity of another schedule goes on
    without it in its runs (Data Pipeline waited for that activity's instance of the same time)."""
    schedule_of = {activity: schedule_id for schedule_id, ids in followers.items() for activity in ids}
    for activity, needed in planner.pipeline.activity_dependencies().items():
        own = schedule_of.get(activity)
        others = sorted({d for d in needed if schedule_of.get(d, own) != own})
        if own is not None and others:
            planner.note(activity, f"it waits for {', '.join(others)} of another schedule, which its runs (schedule "
                         f"{own}) do not do: it goes on without them")


def _plan_one(planner: _Planner, obj: PipelineObject, kind: str, activity_ids: list[str]) -> Schedule | None:
    period_text = planner.evaluator.static_field(obj, "period", purpose="it becomes the schedule expression") or ""
    period = parse_period(period_text)
    if period is None:
        planner.problems.append(Problem(obj.id, "period", f"'{printable(period_text)}' is not a period such as "
                                        "'1 day' (minutes, hours, days, weeks, months or years)"))
        return None
    start = datetime_field(planner, obj, "startDateTime")
    start_at = obj.text("startAt")
    if start_at is not None and start_at.strip().upper() != FIRST_ACTIVATION:
        planner.problems.append(Problem(obj.id, "startAt", f"must be {FIRST_ACTIVATION}, got "
                                        f"{printable(start_at)!r}"))
        return None
    if start is not None and start_at is not None:
        planner.problems.append(Problem(obj.id, "startAt", "a schedule has startDateTime or startAt, not both"))
        return None
    if start is None and start_at is None:
        planner.problems.append(Problem(obj.id, "startDateTime", f"a schedule needs startDateTime or startAt "
                                        f"{FIRST_ACTIVATION}"))
        return None
    end = datetime_field(planner, obj, "endDateTime")
    occurrences = planner.integer(obj, "occurrences", 0)
    if end is not None and occurrences:
        planner.problems.append(Problem(obj.id, "occurrences", "a schedule has endDateTime or occurrences, not both"))
        return None
    if kind == TIMESERIES and (period.seconds is None or period.seconds > MAX_TIMESERIES_SECONDS):
        planner.problems.append(Problem(obj.id, "period", f"a timeseries run waits out its interval inside its "
                                        f"workflow: '{period}' must be a fixed length of at most 52 weeks (minutes, "
                                        "hours, days or weeks); use scheduleType cron for months and years"))
        return None
    if occurrences == 1 and start is None:
        planner.targets[obj.id] = "runs once per start (occurrences 1 from activation): start it on demand"
        return None
    counted = 0
    if occurrences > 1:
        if start is None:
            counted = occurrences
        else:
            try:
                end = add_periods(start, period, occurrences - 1)
            except OverflowError:
                planner.problems.append(Problem(obj.id, "occurrences", f"{occurrences} runs every {period} end "
                                                "after the year 9999"))
                return None
    if start is not None and end is not None and end < start:
        planner.problems.append(Problem(obj.id, "endDateTime", "is before startDateTime"))
        return None
    expression = scheduler_expression(period, start)
    described = f"{obj.name}: {kind}, every {period}" + (", works at the end of each interval"
                                                          if kind == TIMESERIES else "")
    if counted:
        described += f", {counted} runs from the deployment on"
    schedule = Schedule(obj.id, expression, start, end, described, kind, period, activity_ids, counted)
    planner.targets[obj.id] = (f"EventBridge Scheduler schedule {expression} ({kind}) for {', '.join(activity_ids)}"
                               + (f"; runs after the first {counted} end at once" if counted else ""))
    return schedule


def scheduler_expression(period: Period, start: datetime | None) -> str:
    """The expression that fires at every interval's start; months and years as a cron on the start's day and time.

    A month schedule from the 31st fires on each month's last day (`L`), as Data Pipeline's months clamp; one from
    the 29th or 30th skips the months without that day (EventBridge cron cannot clamp to it).
    """
    if period.unit in ("minute", "hour", "day"):
        return f"rate({period.count} {period.unit}{'s' if period.count > 1 else ''})"
    if period.unit == "week":
        return f"rate({7 * period.count} days)"
    at = start or EARLIEST
    if period.unit == "month":
        months = "*" if period.count == 1 else f"{at.month}/{period.count}"
        years = "*"
    else:
        months = str(at.month)
        years = "*" if period.count == 1 else f"{at.year}/{period.count}"
    day = "L" if period.unit == "month" and at.day == 31 else str(at.day)
    return f"cron({at.minute} {at.hour} {day} {months} ? {years})"


def datetime_field(planner: _Planner, obj: PipelineObject, key: str) -> datetime | None:
    if not obj.fields.get(key):
        return None
    text = planner.evaluator.static_field(obj, key, purpose="it sets when the schedule runs")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().rstrip("Zz"))
    except ValueError:
        planner.problems.append(
            Problem(obj.id, key, f"'{printable(text)}' is not a date-time such as 2024-01-31T00:00:00"))
        return None
    if moment.tzinfo is not None or not EARLIEST <= moment <= LATEST:
        planner.problems.append(Problem(obj.id, key, f"'{printable(text)}' must be a UTC date-time without an offset "
                                        "from the year 2000 on"))
        return None
    return moment


def max_active_runs(planner: _Planner) -> int | None:
    """The fewest maxActiveInstances any activity (or the Default) sets: at most that many runs at once.

    Data Pipeline counts instances per object; here a run is the whole pipeline, so the strictest object bounds it.
    Without the field runs are not bounded (Data Pipeline bounds an ondemand pipeline to 1 by default: set it).
    """
    found: list[int] = []
    for activity in planner.pipeline.of_kind(schema.ACTIVITY):
        if activity.fields.get("maxActiveInstances"):
            value = planner.integer(activity, "maxActiveInstances", -1)
            if value == -1:  # not a number: the planner reported it
                continue
            if not 1 <= value <= MAX_ACTIVE_RUNS:
                planner.problems.append(Problem(activity.id, "maxActiveInstances", f"must be from 1 to "
                                                f"{MAX_ACTIVE_RUNS}, got {value}"))
                continue
            found.append(value)
    return min(found) if found else None
