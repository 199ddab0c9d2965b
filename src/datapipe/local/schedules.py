"""EventBridge Scheduler schedules fire (moto stores schedules and never runs them).

One background thread looks at every schedule twice a second and invokes the target of each one that is due:
- `at(yyyy-mm-ddThh:mm:ss)` once, at that time in the schedule's `ScheduleExpressionTimezone` (UTC by default);
  with `ActionAfterCompletion: DELETE` the schedule is deleted afterwards, as in AWS;
- `rate(N minute|minutes|hour|hours|day|days)` every period, counted from `StartDate` or the moment the emulator
  first saw the schedule.
`cron(...)` schedules are not fired. A DISABLED schedule, one before its `StartDate` or after its `EndDate`, does
not fire. Targets: SQS queues (the target's `Input` is the message body), Lambda functions, Step Functions state
machines, SNS topics; the target's `Input` (default `{}`) is what they receive.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
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


def next_fire(schedule: Schedule, tracked: _Tracked) -> datetime.datetime | None:
    """When `schedule` fires next (None: never again, or an expression the emulator does not run)."""
    expression = schedule.schedule_expression.strip()
    at = AT_EXPRESSION.match(expression)
    if at:
        if tracked.last_fired is not None:
            return None
        zone = ZoneInfo(schedule.schedule_expression_timezone or "UTC")
        return datetime.datetime.fromisoformat(at.group(1)).replace(tzinfo=zone).astimezone(datetime.UTC)
    rate = RATE_EXPRESSION.match(expression)
    if rate:
        period = datetime.timedelta(seconds=int(rate.group(1)) * RATE_UNIT_SECONDS[rate.group(2).rstrip("s")])
        start = _parse_date(schedule.start_date) or tracked.first_seen
        return (tracked.last_fired or start) + period
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

    def tick(self, now: datetime.datetime) -> None:
        for account_backends in list(scheduler_backends.values()):
            for backend in list(account_backends.values()):
                for group in list(backend.schedule_groups.values()):
                    for schedule in list(group.schedules.values()):
                        self._consider(backend, group.name, schedule, now)

    def _consider(self, backend: Any, group_name: str, schedule: Schedule, now: datetime.datetime) -> None:
        tracked = self._tracked.setdefault(schedule.arn, _Tracked(first_seen=now))
        if schedule.state != "ENABLED" or tracked.broken:
            return
        try:
            end = _parse_date(schedule.end_date)
            start = _parse_date(schedule.start_date)
            due = next_fire(schedule, tracked)
        except (ValueError, KeyError) as error:  # a bad date or time zone: this schedule never fires, the others do
            tracked.broken = True
            LOG.error("schedule %s cannot be run: %s", schedule.arn, error)
            return
        if due is None or due > now or (end is not None and due > end):
            return
        if start is not None and due < start:
            return
        tracked.last_fired = now
        self._invoke(schedule)
        if AT_EXPRESSION.match(schedule.schedule_expression.strip()) and schedule.action_after_completion == "DELETE":
            backend.delete_schedule(group_name, schedule.name)
            self._tracked.pop(schedule.arn, None)

    def _invoke(self, schedule: Schedule) -> None:
        target = schedule.target
        arn = parse_arn(target["Arn"])
        payload = str(target.get("Input") or "{}")
        try:
            events.deliver(
                arn.service, target["Arn"], payload, account=arn.account, region=arn.region, invoke=self._invoke_lambda
            )
        except Exception:
            LOG.exception("schedule %s could not invoke %s", schedule.arn, target["Arn"])
