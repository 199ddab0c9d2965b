"""Expressions: values known at import time, parts resolved when the workflow runs, and what cannot be mapped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapipe.importer.expressions import Evaluator, RuntimePath, Text
from datapipe.importer.model import build_model
from datapipe.importer.reader import parse_definition


def evaluate(value: str, *, extra: dict[str, Any] | None = None, parameters: list[dict[str, Any]] | None = None,
             values: dict[str, Any] | None = None) -> tuple[Text | None, list[str]]:
    text, problems, _ = evaluate_with_runs(value, extra=extra, parameters=parameters, values=values)
    return text, problems


def evaluate_with_runs(
    value: str, *, extra: dict[str, Any] | None = None, parameters: list[dict[str, Any]] | None = None,
    values: dict[str, Any] | None = None, objects: list[dict[str, Any]] | None = None,
) -> tuple[Text | None, list[str], dict[str, Any]]:
    """The command's text, the problems, and the expressions the run-values Lambda would evaluate."""
    activity = {"id": "Job", "type": "ShellCommandActivity", "workerGroup": "wg", "command": value,
                "input": {"ref": "In"}, "myList": ["one", "two"], **(extra or {})}
    objects = [activity, {"id": "In", "type": "S3DataNode", "directoryPath": "s3://bucket/in/#{myDay}/"},
               *(objects or [])]
    document: dict[str, Any] = {"objects": objects, "parameters": parameters or [
        {"id": "myDay", "type": "String", "default": "monday"}, {"id": "myOpen", "type": "String"}]}
    if values:
        document["values"] = values
    pipeline = build_model(parse_definition(json.dumps(document)))
    evaluator = Evaluator(pipeline)
    text = evaluator.field_text(pipeline.objects["Job"], "command")
    return text, [str(p) for p in evaluator.problems], evaluator.run_expressions


def run(path: str) -> RuntimePath:
    return RuntimePath(f"$.run.{path}")


def test_parameters_use_values_then_defaults_then_the_execution_input() -> None:
    assert evaluate("day #{myDay}")[0] == Text.of("day monday")
    assert evaluate("day #{myDay}", values={"myDay": "friday"})[0] == Text.of("day friday")
    text, problems = evaluate("open #{myOpen}")
    assert text == Text(("open ", RuntimePath("$.parameters.myOpen")))
    assert problems == []


def test_fields_of_this_object_and_of_referenced_objects() -> None:
    assert evaluate("ls #{input.directoryPath}")[0] == Text.of("ls s3://bucket/in/monday/")
    assert evaluate("#{myLabel}-#{@id}", extra={"myLabel": "x"})[0] == Text.of("x-Job")


def test_the_runs_time_maps_to_zero_padded_parts_of_the_execution_state() -> None:
    text, problems = evaluate("cp #{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}")
    assert problems == []
    assert text == Text.of("cp ", run("year"), "-", run("month"), "-", run("day"), "-", run("hour"), "-",
                           run("minute"), "-", run("second"))
    assert evaluate("#{@scheduledStartTime}")[0] == Text.of(run("year"), "-", run("month"), "-", run("day"), "T",
                                                          run("hour"), ":", run("minute"), ":", run("second"))
    assert evaluate("#{format(midnight(@scheduledStartTime), 'HH:mm')}")[0] == Text.of("00:00")
    assert evaluate("#{format(firstOfMonth(@scheduledStartTime), 'dd')}")[0] == Text.of("01")


def test_date_functions_on_dates_known_at_import_time_are_computed() -> None:
    assert evaluate("#{format(minusDays(makeDate(2024,3,1),1), 'YYYY-MM-dd')}")[0] == Text.of("2024-02-29")
    assert evaluate("#{format(plusMonths(makeDate(2024,1,31),1), 'YYYY-MM-dd')}")[0] == Text.of("2024-02-29")
    assert evaluate("#{day(makeDateTime(2011,5,24,17,10))} #{dayOfYear(makeDate(2011,5,24))}")[0] == Text.of("24 144")
    assert evaluate("#{format(sunday(makeDate(2011,5,24)), 'YYYY-MM-dd')}")[0] == Text.of("2011-05-22")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("#{@scheduledEndTime}", "@scheduledEndTime needs a schedule on Job, whose period ends each run"),
        ("#{format(@scheduledStartTime, 'hh:mm o')}", "the pattern letter 'o' is not one of Joda-Time's"),
        ("#{format(makeDate(2024,1,1), 'YYYY-MM-dd q')}", "the pattern letter 'q' is not one of Joda-Time's"),
        ("#{format(@scheduledStartTime, 'YYYY \\'T')}", "a quote in the format pattern is not closed"),
        ("#{minusDays(@scheduledStartTime, myOpen)}", "minusDays needs whole numbers known at import time"),
        ("#{minusYears(@scheduledStartTime, 10000)}", "minusYears gives a date outside the years 1 to 9999"),
        ("#{plusMinutes(@scheduledStartTime, 99999999999)}", "plusMinutes gives a date outside the years 1 to 9999"),
        ("#{format(@scheduledStartTime, '" + "x" * 40000 + "')}", "the format pattern is longer than 37449"),
        ("#{myList + myList}", "only one of the values added together may be a list"),
        ("#{myNothing}", "neither a field of Job nor a declared parameter"),
        ("#{output.directoryPath}", "'output' is not a reference field of Job"),
        ("#{node.@scheduledStartTime}", "only known inside an alarm or precondition"),
        ("#{format(@scheduledStartTime", "not closed"),
        ("#{unknownFunction(1)}", "unknown function"),
    ],
)
def test_an_expression_that_cannot_be_mapped_is_reported_with_its_reason(expression: str, reason: str) -> None:
    text, problems = evaluate(f"echo {expression}")
    assert text is None
    assert len(problems) == 1 and problems[0].startswith("Job.command: ") and reason in problems[0], problems


def test_node_in_an_alarm_reads_the_object_that_uses_it() -> None:
    document = {"objects": [
        {"id": "Job", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "onFail": {"ref": "Tell"},
         "myTeam": "data"},
        {"id": "Tell", "type": "SnsAlarm", "topicArn": "arn:aws:sns:eu-west-1:123456789012:t", "subject": "s",
         "message": "#{node.myTeam}: #{node.@id} failed at #{format(node.@scheduledStartTime, 'HH:mm')}"},
    ]}
    pipeline = build_model(parse_definition(json.dumps(document)))
    evaluator = Evaluator(pipeline)
    text = evaluator.field_text(pipeline.objects["Tell"], "message", node=pipeline.objects["Job"])
    assert text == Text.of("data: Job failed at ", run("hour"), ":", run("minute"))


# ----------------------------------------------------------------------------------------------------------------------
# The whole language, on dates known at import time and on the run's own times. Expected values are the examples of
# Data Pipeline's reference (myDateTime is May 24, 2011, 5:10 pm UTC, a Tuesday) or worked out by hand.

REFERENCE_TIME = "2011-05-24T17:10:00Z"
REFERENCE_DATE = "makeDateTime(2011,5,24,17,10)"


def run_value(expression: str, time: str, *, objects: list[dict[str, Any]] | None = None,
              extra: dict[str, Any] | None = None, actual: str | None = None) -> str:
    """`expression` on `@scheduledStartTime` as a run at `time` gets it: split parts, and the run-values Lambda."""
    from lambdas.run_values.handler import run_values

    text, problems, expressions = evaluate_with_runs(expression, objects=objects, extra=extra)
    assert text is not None and problems == [], problems
    values = run_values({"time": time, "actualStartTime": actual or time, "expressions": json.dumps(expressions)})
    digits = time.replace("-", " ").replace("T", " ").replace(":", " ").replace("Z", "").split()
    parts = dict(zip(("year", "month", "day", "hour", "minute", "second"), digits, strict=True))
    resolved = []
    for part in text.parts:
        if isinstance(part, str):
            resolved.append(part)
        elif not isinstance(part, RuntimePath):
            raise AssertionError(f"a secret in {expression}")
        elif part.path.startswith("$.runtime."):
            resolved.append(values[part.path.removeprefix("$.runtime.")])
        else:
            resolved.append(parts[part.path.removeprefix("$.run.")])
    return "".join(resolved)


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("day(T)", "24"), ("dayOfYear(T)", "144"), ("hour(T)", "17"), ("minute(T)", "10"), ("month(T)", "5"),
        ("year(T)", "2011"),
        ("firstOfMonth(T)", "2011-05-01T17:10:00"), ("midnight(T)", "2011-05-24T00:00:00"),
        ("minusDays(T,1)", "2011-05-23T17:10:00"), ("minusHours(T,1)", "2011-05-24T16:10:00"),
        ("minusMinutes(T,1)", "2011-05-24T17:09:00"), ("minusMonths(T,1)", "2011-04-24T17:10:00"),
        ("minusWeeks(T,1)", "2011-05-17T17:10:00"), ("minusYears(T,1)", "2010-05-24T17:10:00"),
        ("plusDays(T,1)", "2011-05-25T17:10:00"), ("plusHours(T,1)", "2011-05-24T18:10:00"),
        ("plusMinutes(T,1)", "2011-05-24T17:11:00"), ("plusMonths(T,1)", "2011-06-24T17:10:00"),
        ("plusWeeks(T,1)", "2011-05-31T17:10:00"), ("plusYears(T,1)", "2012-05-24T17:10:00"),
        ("sunday(T)", "2011-05-22T17:10:00"), ("yesterday(T)", "2011-05-23T17:10:00"),
        ("format(T,'YYYY-MM-dd HH:mm:ss z')", "2011-05-24 17:10:00 UTC"),
        ("format(minusMinutes(T,30),'YYYY-MM-dd hh:mm:ss')", "2011-05-24 04:40:00"),
    ],
)
def test_each_function_of_the_reference_gives_its_example_at_import_and_at_run_time(
    function: str, expected: str
) -> None:
    assert evaluate("#{" + function.replace("T", REFERENCE_DATE, 1) + "}") == (Text.of(expected), [])
    assert run_value("#{" + function.replace("T", "@scheduledStartTime", 1) + "}", REFERENCE_TIME) == expected


@pytest.mark.parametrize(
    ("time", "pattern", "expected"),
    [
        # Tuesday 24 May 2011: day 31+28+31+30+24 = 144 of the year; ISO week 21 (week 1 began Monday 3 January).
        (REFERENCE_TIME, "E EEE EEEE e D w ww", "Tue Tue Tuesday 2 144 21 21"),
        (REFERENCE_TIME, "M MM MMM MMMM d dd", "5 05 May May 24 24"),
        (REFERENCE_TIME, "y yy yyyy Y YY YYYY x xx C G", "2011 11 2011 2011 11 2011 2011 11 20 AD"),
        (REFERENCE_TIME, "Z ZZ ZZZ z zzzz", "+0000 +00:00 UTC UTC Coordinated Universal Time"),
        ("2024-03-31T13:05:00Z", "hh a", "01 PM"),
        ("2024-03-31T13:05:00Z", "h:m K k H", "1:5 1 13 13"),
        ("2024-03-31T00:30:00Z", "hh:mm a K k HH", "12:30 AM 0 24 00"),
        ("2024-03-31T12:00:00Z", "hh a K k", "12 PM 0 12"),
        ("2024-09-02T08:07:06.250Z", "MMM MMMM EEEE s ss S SSS", "Sep September Monday 6 06 2 250"),
        # Friday 1 January 2021 belongs to week 53 of the ISO week-year 2020.
        ("2021-01-01T00:00:00Z", "xxxx-'W'ww-e D", "2020-W53-5 1"),
        (REFERENCE_TIME, "'at' HH'h' 'o''clock' ''", "at 17h o'clock '"),
    ],
)
def test_every_joda_pattern_letter_prints_as_data_pipeline_prints_it(time: str, pattern: str, expected: str) -> None:
    assert run_value("#{format(@scheduledStartTime, '" + pattern.replace("'", "\\'") + "')}", time) == expected
    date = time.removesuffix("Z").replace(".250", "")
    static = f"makeDateTime({int(date[:4])},{int(date[5:7])},{int(date[8:10])},{int(date[11:13])},{int(date[14:16])})"
    if date.endswith(":00"):  # makeDateTime has no seconds
        assert evaluate("#{format(" + static + ", '" + pattern.replace("'", "\\'") + "')}") == (Text.of(expected), [])


def test_a_month_back_from_the_31st_clamps_to_the_last_day_of_february() -> None:
    assert run_value("#{format(minusMonths(@scheduledStartTime,1),'YYYY-MM')}", "2024-03-31T00:00:00Z") == "2024-02"
    assert run_value("#{format(minusMonths(@scheduledStartTime,1),'YYYY-MM-dd')}", "2024-03-31T00:00:00Z") == (
        "2024-02-29")
    assert run_value("#{format(plusYears(@scheduledStartTime,1),'YYYY-MM-dd')}", "2024-02-29T00:00:00Z") == (
        "2025-02-28")
    assert run_value("#{format(minusDays(@scheduledStartTime,1),'YYYY-MM-dd')}", "2024-03-01T00:00:00Z") == (
        "2024-02-29")


def test_unpadded_numbers_of_the_run_time() -> None:
    assert run_value("#{year(@scheduledStartTime)}/#{month(@scheduledStartTime)}/#{day(@scheduledStartTime)} "
                     "#{hour(@scheduledStartTime)}:#{minute(@scheduledStartTime)}", "2024-03-05T07:09:00Z") == (
        "2024/3/5 7:9")


def test_the_scheduled_end_is_the_start_plus_the_schedules_period() -> None:
    schedule = [{"id": "Every15", "type": "Schedule", "period": "15 Minutes", "startDateTime": "2024-01-01T00:00:00"}]
    assert run_value("#{@scheduledStartTime}..#{@scheduledEndTime}", "2024-03-31T23:50:00Z", objects=schedule,
                     extra={"schedule": {"ref": "Every15"}}) == "2024-03-31T23:50:00..2024-04-01T00:05:00"
    monthly = [{"id": "Monthly", "type": "Schedule", "period": "1 month", "startDateTime": "2024-01-31T00:00:00"}]
    assert run_value("#{format(@scheduledEndTime, 'YYYY-MM-dd')}", "2024-01-31T00:00:00Z", objects=monthly,
                     extra={"schedule": {"ref": "Monthly"}}) == "2024-02-29"


def test_the_actual_start_is_the_executions_start() -> None:
    assert run_value("#{format(@actualStartTime, 'HH:mm:ss')} for #{format(@scheduledStartTime, 'HH:mm')}",
                     "2024-03-31T06:00:00Z", actual="2024-03-31T06:02:03.456Z") == "06:02:03 for 06:00"


def test_an_alarm_reads_the_run_time_of_the_object_that_uses_it_with_arithmetic() -> None:
    document = {"objects": [
        {"id": "Job", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "onFail": {"ref": "Tell"},
         "schedule": {"ref": "Hourly"}},
        {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2024-01-01T00:00:00"},
        {"id": "Tell", "type": "SnsAlarm", "topicArn": "arn:aws:sns:eu-west-1:123456789012:t", "subject": "s",
         "message": "#{node.@id}: #{format(minusMinutes(node.@scheduledStartTime,30),'hh:mm a')}.."
                    "#{format(node.@scheduledEndTime,'hh:mm a')}"},
    ]}
    pipeline = build_model(parse_definition(json.dumps(document)))
    evaluator = Evaluator(pipeline)
    text = evaluator.field_text(pipeline.objects["Tell"], "message", node=pipeline.objects["Job"])
    assert evaluator.problems == [] and text is not None
    assert text.parts[0] == "Job: " and [p for p in text.parts if isinstance(p, str)] == ["Job: ", ".."]
    trees = list(evaluator.run_expressions.values())
    assert trees == [
        {"function": "format", "arguments": [
            {"function": "minusMinutes", "arguments": [{"time": "scheduledStartTime"}, 30]}, "hh:mm a"]},
        {"function": "format", "arguments": [
            {"function": "plusHours", "arguments": [{"time": "scheduledStartTime"}, 1]}, "hh:mm a"]},
    ]


def test_parent_id_and_list_concatenation() -> None:
    # The reference's example: the filePath "s3://mybucket/#{parent.@id}.csv" of ExampleDataNode evaluates to
    # "s3://mybucket/ExampleDataNode.csv" (a run's parent is its object), with or without a parent to inherit from.
    objects = [{"id": "Base", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "myBucket": "b"}]
    assert evaluate("cp #{parent.@id}.csv") == (Text.of("cp Job.csv"), [])
    assert evaluate_with_runs("cp s3://#{parent.myBucket}/#{parent.@id}.csv", objects=objects,
                              extra={"parent": {"ref": "Base"}})[:2] == (Text.of("cp s3://b/Job.csv"), [])
    pipeline = build_model(parse_definition(json.dumps({"objects": [
        {"id": "Job", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "myList": ["one", "two"],
         "scriptArgument": "#{'this is ' + myList}"}]})))
    evaluator = Evaluator(pipeline)
    # The reference: "myList":["one","two"] in #{'this is ' + myList} is ["this is one", "this is two"].
    assert evaluator.field_texts(pipeline.objects["Job"], "scriptArgument") == [
        Text.of("this is one"), Text.of("this is two")]


def test_one_expression_used_many_times_is_evaluated_once_per_run() -> None:
    command = " ".join(["#{format(minusDays(@scheduledStartTime,1),'YYYY-MM-dd')}"] * 50)
    text, problems, expressions = evaluate_with_runs(command)
    assert problems == [] and len(expressions) == 1 and text is not None
    assert {p for p in text.parts if not isinstance(p, str)} == {RuntimePath("$.runtime.value1")}


def test_strings_in_double_quotes_and_braces_inside_quotes() -> None:
    # The reference's string example: #{"hel" + "lo"} is "hello".
    assert evaluate('say #{"hel" + "lo"}') == (Text.of("say hello"), [])
    # A '}' inside a quoted pattern does not end the expression (it was passed through as text before).
    assert evaluate("#{format(makeDate(2024,1,2),'{YYYY}')} ${HOME}") == (Text.of("{2024} ${HOME}"), [])
    assert evaluate("x #{format(makeDate(2024,1,2),'}')") == (None, [
        "Job.command: an expression '#{' is not closed with '}'"])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The reference's mathematical functions: #{1 + 2} is 3, #{1 - 2} is -1, #{1 * 2} is 2, #{1 / 2} is 0
        # (whole numbers divide truncated), #{2 ^ 2} is 4.0.
        ("1 + 2", "3"), ("1 - 2", "-1"), ("1 * 2", "2"), ("1 / 2", "0"), ("2 ^ 2", "4.0"),
        ("-7 / 2", "-3"), ("2 + 3 * 4", "14"), ("(2 + 3) * 4", "20"), ("2 ^ 3", "8.0"), ("2 ^ -1", "0.5"),
        ("10 - 2 - 3", "5"), ("day(makeDate(2024,3,5)) + 1", "6"), ("'day ' + (day(makeDate(2024,3,5)) + 1)", "day 6"),
        ("format(minusDays(makeDate(2024,3,1), 3 - 1 * 2), 'dd')", "29"),
    ],
)
def test_arithmetic_on_whole_numbers_as_the_reference_gives_it(expression: str, expected: str) -> None:
    assert evaluate("#{" + expression + "}") == (Text.of(expected), [])


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("1 / 0", "division by zero"),
        ("999999999999999999 * 10", "a result has more than 18 digits"),
        ("2 ^ 100", "is not a number a definition means"),
        ("10 ^ 9", "outside the decimals written without an exponent"),
        ("day(@scheduledStartTime) - 1", "'-' needs numbers known at import time"),
        ("@scheduledStartTime - 1", "'-' needs numbers; use the date functions on dates"),
        ("'a' * 2", "'*' needs whole numbers known at import time"),
        ("-" * 40 + "1", "nested deeper than 32 levels"),
    ],
)
def test_arithmetic_that_has_no_whole_number_value_is_reported(expression: str, reason: str) -> None:
    text, problems = evaluate("#{" + expression + "}")
    assert text is None and len(problems) == 1 and reason in problems[0], problems


def test_many_distinct_run_time_expressions_stop_at_the_size_a_run_can_carry_in_linear_time() -> None:
    import time

    def command(count: int) -> str:
        return " ".join(f"#{{format(minusMinutes(@scheduledStartTime,{n}),'HH:mm')}}" for n in range(count))

    started = time.perf_counter()
    text, problems, expressions = evaluate_with_runs(command(300))
    small = time.perf_counter() - started
    assert problems == [] and len(expressions) == 300 and text is not None
    started = time.perf_counter()
    text, problems, expressions = evaluate_with_runs(command(3000))
    large = time.perf_counter() - started
    assert text is None and problems == ["Job.command: '#{format(minusMinutes(@scheduledStartTime,"
                                         f"{len(expressions)}),'HH:mm')}}' cannot be mapped: the pipeline's "
                                         "expressions on the run's times pass 65536 characters (of the 256 KiB a "
                                         "run's state may hold)"]
    assert large < 10 * small + 0.5, (small, large)  # ten times the expressions, stopped early: no blow-up
    long_pattern = "#{format(@scheduledStartTime, '" + "E" * 10_000 + "')}"
    assert "pass 65536 characters" in evaluate(long_pattern)[1][0]
