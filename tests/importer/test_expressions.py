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
    activity = {"id": "Job", "type": "ShellCommandActivity", "workerGroup": "wg", "command": value,
                "input": {"ref": "In"}, **(extra or {})}
    objects = [activity, {"id": "In", "type": "S3DataNode", "directoryPath": "s3://bucket/in/#{myDay}/"}]
    document: dict[str, Any] = {"objects": objects, "parameters": parameters or [
        {"id": "myDay", "type": "String", "default": "monday"}, {"id": "myOpen", "type": "String"}]}
    if values:
        document["values"] = values
    pipeline = build_model(parse_definition(json.dumps(document)))
    evaluator = Evaluator(pipeline)
    text = evaluator.field_text(pipeline.objects["Job"], "command")
    return text, [str(p) for p in evaluator.problems]


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
        ("#{minusDays(@scheduledStartTime, 1)}", "date arithmetic"),
        ("#{day(@scheduledStartTime)}", "unpadded number"),
        ("#{@scheduledEndTime}", "end of the interval"),
        ("#{format(@scheduledStartTime, 'hh:mm a')}", "pattern letters 'hh'"),
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
