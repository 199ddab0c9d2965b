"""EventBridge Scheduler schedules fire (moto stores schedules and never runs them).

One background thread looks at every schedule twice a second and invokes the target of each one that is due:
- `at(yyyy-mm-ddThh:mm:ss)` once, at that time in the schedule's `ScheduleExpressionTimezone` (UTC by default);
  with `ActionAfterCompletion: DELETE` the schedule is deleted afterwards, as in AWS;
- `rate(N minute|minutes|hour|hours|day|days)` every period: at `StartDate` and each period after it, as in AWS (an
  occurrence more than a minute before the emulator first saw the schedule is not fired: no backfill); without a
  `StartDate`, a period after the moment the emulator first saw the schedule, then every period;
- `cron(minutes hours day-of-month month day-of-week year)` in the schedule's time zone, once in each minute it
  matches: numbers, names (JAN, MON), `*`, `?`, lists, ranges and `/` steps; day-of-week 1-7 is SUN-SAT as in
  EventBridge; `L` alone in day-of-month is the month's last day. Other uses of `L`, and `W` and `#`, are not
  supported: such a schedule is logged once and never fires.
A DISABLED schedule, one before its `StartDate` or after its `EndDate`, does
not fire. Targets: SQS queues (the target's `Input` is the message body), Lambda functions, Step Functions state
machines, SNS topics; the target's `Input` (default `{}`) is what they receive, with EventBridge Scheduler's context
attributes replaced as in AWS: `<aws.scheduler.scheduled-time>` (the occurrence's time, not the moment it fired),
`<aws.scheduler.schedule-arn>`, `<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>`.
"""

from __future__ import annotations

import calendar
import datetime
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from moto.scheduler.models import Schedule, scheduler_backends
from moto.utilities.arns import parse_arn

from datapipe.local import events

LOG = logging.getLogger(__name__)
TICK_SECONDS = 0.5
AT_EXPRESSION = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
RATE_EXPRESSION = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MISSED = datetime.timedelta(minutes=1)  # EventBridge Scheduler's precision: an occurrence older than this is missed
CONTEXT_ATTRIBUTE = re.compile(r"<aws\.scheduler\.(scheduled-time|schedule-arn|execution-id|attempt-number)>")
CRON_EXPRESSION = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (lowest, highest, names from lowest on) of minutes, hours, day of month, month, day of week, year
CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (1, 7, WEEKDAYS), (1970, 2199, ()))


def _cron_value(text: str, lowest: int, names: tuple[str, ...]) -> int:
    upper = text.upper()
    return lowest + names.index(upper) if upper in names else int(text)


def cron_field(text: str, lowest: int, highest: int, names: tuple[str, ...] = ()) -> set[int]:
    """The values one field of an EventBridge cron expression allows; ValueError for what it cannot read."""
    allowed: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            first, last = lowest, highest
        elif "-" in span:
            start_text, end_text = span.split("-", 1)
            first, last = _cron_value(start_text, lowest, names), _cron_value(end_text, lowest, names)
        else:
            first = _cron_value(span, lowest, names)
            last = highest if step_text else first
        if step < 1 or not lowest <= first <= last <= highest:
            raise ValueError(f"cron field {text!r} is outside {lowest}-{highest} or not supported")
        allowed.update(range(first, last + 1, step))
    return allowed


def cron_matches(expression: str, moment: datetime.datetime) -> bool:
    """Whether the minute of `moment` (in the schedule's time zone) is one the cron expression names."""
    fields = CRON_EXPRESSION.match(expression)
    if fields is None:
        raise ValueError(f"{expression!r} is not cron(minutes hours day-of-month month day-of-week year)")
    texts = list(fields.groups())
    last_day = texts[2] == "L"
    if last_day:
        texts[2] = "*"
    minutes, hours, days, months, weekdays, years = (
        cron_field(text, *limits) for text, limits in zip(texts, CRON_FIELDS, strict=True)
    )
    if last_day:
        days = {calendar.monthrange(moment.year, moment.month)[1]}
    weekday = (moment.weekday() + 1) % 7 + 1  # Monday is 0 in Python, 2 in EventBridge (SUN is 1)
    return (
        moment.minute in minutes
        and moment.hour in hours
        and moment.day in days
        and moment.month in months
        and weekday in weekdays
        and moment.year in years
    )


@dataclass
class _Tracked:
    first_seen: datetime.datetime
    last_fired: datetime.datetime | None = None
    broken: bool = False  # its expression or time zone cannot be read: logged once, then left alone


def _parse_date(value: Any) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def next_fire(schedule: Schedule, tracked: _Tracked, now: datetime.datetime) -> datetime.datetime | None:
    """When `schedule` fires next (None: not now for cron, never again, or an expression the emulator does not run)."""
    expression = schedule.schedule_expression.strip()
    if expression.startswith("cron("):
        zone = ZoneInfo(schedule.schedule_expression_timezone or "UTC")
        minute = now.astimezone(zone).replace(second=0, microsecond=0)
        if not cron_matches(expression, minute):
            return None
        if tracked.last_fired is not None and tracked.last_fired >= minute:
            return None  # fired in this minute already
        return minute.astimezone(datetime.UTC)
    at = AT_EXPRESSION.match(expression)
    if at:
        if tracked.last_fired is not None:
            return None
        zone = ZoneInfo(schedule.schedule_expression_timezone or "UTC")
        return datetime.datetime.fromisoformat(at.group(1)).replace(tzinfo=zone).astimezone(datetime.UTC)
    rate = RATE_EXPRESSION.match(expression)
    if rate:
        period = datetime.timedelta(seconds=int(rate.group(1)) * RATE_UNIT_SECONDS[rate.group(2).rstrip("s")])
        start = _parse_date(schedule.start_date)
        if start is None:
            return (tracked.last_fired or tracked.first_seen) + period
        if now < start:
            return start
        latest = start + (now - start) // period * period  # occurrences are StartDate + k periods
        if (tracked.last_fired is not None and tracked.last_fired >= latest) or latest < tracked.first_seen - MISSED:
            return latest + period
        return latest
    return None


class ScheduleRunner:
    def __init__(self, invoke_lambda: Any) -> None:
        self._invoke_lambda = invoke_lambda
        self._tracked: dict[str, _Tracked] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick(datetime.datetime.now(datetime.UTC))

    def tick(self, now: datetime.datetime, *, only: frozenset[str] | None = None) -> None:
        """Fire every schedule due at `now`; `only`: the ARNs of the schedules to look at (a test's clock moves on for
        its own schedules only)."""
        for account_backends in list(scheduler_backends.values()):
            for backend in list(account_backends.values()):
                for group in list(backend.schedule_groups.values()):
                    for schedule in list(group.schedules.values()):
                        if only is None or schedule.arn in only:
                            self._consider(backend, group.name, schedule, now)

    def _consider(self, backend: Any, group_name: str, schedule: Schedule, now: datetime.datetime) -> None:
        tracked = self._tracked.setdefault(schedule.arn, _Tracked(first_seen=now))
        if schedule.state != "ENABLED" or tracked.broken:
            return
        try:
            end = _parse_date(schedule.end_date)
            start = _parse_date(schedule.start_date)
            due = next_fire(schedule, tracked, now)
        except (ValueError, KeyError) as error:  # a bad date or time zone: this schedule never fires, the others do
            tracked.broken = True
            LOG.error("schedule %s cannot be run: %s", schedule.arn, error)
            return
        if due is None or due > now or (end is not None and due > end):
            return
        if start is not None and due < start:
            return
        tracked.last_fired = now
        self._invoke(schedule, due)
        if AT_EXPRESSION.match(schedule.schedule_expression.strip()) and schedule.action_after_completion == "DELETE":
            backend.delete_schedule(group_name, schedule.name)
            self._tracked.pop(schedule.arn, None)

    def _invoke(self, schedule: Schedule, due: datetime.datetime) -> None:
        target = schedule.target
        arn = parse_arn(target["Arn"])
        payload = with_context(str(target.get("Input") or "{}"), schedule.arn, due)
        try:
            events.deliver(
                arn.service, target["Arn"], payload, account=arn.account, region=arn.region, invoke=self._invoke_lambda
            )
        except Exception:
            LOG.exception("schedule %s could not invoke %s", schedule.arn, target["Arn"])


def with_context(text: str, schedule_arn: str, due: datetime.datetime) -> str:
    """The target's input with the context attributes EventBridge Scheduler fills in."""
    values = {
        "scheduled-time": due.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schedule-arn": schedule_arn,
        "execution-id": str(uuid.uuid4()),
        "attempt-number": "1",
    }
    return CONTEXT_ATTRIBUTE.sub(lambda match: values[match.group(1)], text)
