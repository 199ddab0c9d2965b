"""A RedshiftCopyActivity reading a prefix of the run's time, as the corpus sample billing does (its synthesized states:
tests/importer/test_databases.py, its run: tests/e2e/test_redshift_sign_in_e2e.py):
`#{myS3StagingLoc}/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}`. The run-values Lambda computes each value
of the run in the COPY's FROM literal through a pattern the definition fixes and checks it before any SQL runs; a
pattern that could write a quote, backslash, semicolon, blank or text, and any value given when the run starts, are
refused at import time, naming the object and field.
"""

from __future__ import annotations

from typing import Any

import pytest

from datapipe.importer.expressions import RuntimePath, Text
from datapipe.importer.plan import Plan

from .test_databases import HOST, LOAD, ORDERS, TSV, WAREHOUSE, plan_of

PREFIX = "#{myStage}/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}"
STAGING: dict[str, Any] = {"id": "Input", "type": "S3DataNode", "dataFormat": {"ref": "Tsv"},
           "directoryPath": PREFIX}
PARAMETERS = [{"id": "myStage", "type": "String", "default": "s3://stage/billing"}]


def copy_plan(path: str, parameters: list[dict[str, Any]] = PARAMETERS) -> Plan:
    return plan_of(WAREHOUSE, {**STAGING, "directoryPath": path}, TSV, ORDERS, LOAD, HOST, parameters=parameters)


def value(name: str) -> RuntimePath:
    return RuntimePath(f"$.runtime.{name}")


def test_the_run_values_of_the_prefix_are_computed_and_checked_by_the_lambda() -> None:
    plan = copy_plan(PREFIX)
    assert plan.deployable, plan.errors
    assert plan.activities[0].sql is not None
    work = plan.activities[0].sql.redshift
    assert work is not None
    # each part of the run's time as the Lambda prints it: 'YYYY', 'MM', ... of the scheduled start
    start = {"time": "scheduledStartTime"}
    assert plan.run_expressions == {f"value{n}": {"function": "format", "arguments": [start, letters]}
                                    for n, letters in enumerate(("YYYY", "MM", "dd", "HH", "mm", "ss"), start=1)}
    assert work.checked_values == [f"value{n}" for n in range(1, 7)]
    assert work.run_time_sqls == {2: Text.of("COPY staging FROM 's3://stage/billing/", value("value1"), "-",
                                             value("value2"), "-", value("value3"), "-", value("value4"), "-",
                                             value("value5"), "-", value("value6"), "/' IAM_ROLE default "
                                             "DELIMITER '\\t'")}
    assert work.sqls[2] == ("COPY staging FROM 's3://stage/billing/{$.runtime.value1}-{$.runtime.value2}-"
                            "{$.runtime.value3}-{$.runtime.value4}-{$.runtime.value5}-{$.runtime.value6}/' IAM_ROLE "
                            "default DELIMITER '\\t'")


def test_a_pattern_the_lambda_evaluates_is_one_checked_value() -> None:
    plan = copy_plan("s3://stage/#{format(minusDays(@scheduledStartTime, 1), 'YYYY/DDD')}/")
    assert plan.deployable, plan.errors
    assert plan.activities[0].sql is not None
    work = plan.activities[0].sql.redshift
    assert work is not None
    assert work.checked_values == ["value1"] and plan.run_expressions["value1"]["arguments"][1] == "YYYY/DDD"
    assert work.sqls[2].startswith("COPY staging FROM 's3://stage/{$.runtime.value1}/' IAM_ROLE default")


FORMATTED_ONLY = "the COPY's SQL may hold the run's time formatted only with digits and literal characters: "
PLAIN_SOURCE = "which the COPY's source may not (a quote, backslash, semicolon or blank)"


@pytest.mark.parametrize(("path", "expected"), [
    # patterns the Lambda evaluates (DDD, E, MMM: not the run's split time)
    ("s3://stage/#{format(@scheduledStartTime, 'YYYY;DDD')}", FORMATTED_ONLY + "the pattern's literal text holds ';'"),
    ("s3://stage/#{format(@scheduledStartTime, 'DDD\\\\MM')}",
     FORMATTED_ONLY + "the pattern's literal text holds '\\\\'"),
    ("s3://stage/#{format(@scheduledStartTime, 'DDD MM')}", FORMATTED_ONLY + "the pattern's literal text holds ' '"),
    ('s3://stage/#{format(@scheduledStartTime, "YYYY\'\'DDD")}',
     FORMATTED_ONLY + "the pattern's literal text holds \"'\""),
    ("s3://stage/#{format(@scheduledStartTime, 'YYYY-EEE')}", FORMATTED_ONLY + "the pattern letters 'EEE' print text"),
    ("s3://stage/#{format(@scheduledStartTime, 'dd-MMM')}", FORMATTED_ONLY + "the pattern letters 'MMM' print text"),
    # patterns of the run's split time: their literal text is the definition's text in the path
    ("s3://stage/#{format(@scheduledStartTime, 'YYYY;MM')}", f"holds ';', {PLAIN_SOURCE}"),
    ("s3://stage/#{format(@scheduledStartTime, 'YYYY\\\\MM')}", f"holds '\\\\', {PLAIN_SOURCE}"),
    ("s3://stage/#{format(@scheduledStartTime, 'YYYY MM')}", f"holds ' ', {PLAIN_SOURCE}"),
    ('s3://stage/#{format(@scheduledStartTime, "YYYY\'\'MM")}', f"holds \"'\", {PLAIN_SOURCE}"),
    ("s3://stage/x;y/#{format(@scheduledStartTime, 'YYYY')}", f"holds ';', {PLAIN_SOURCE}"),
])
def test_a_pattern_that_could_write_more_than_digits_and_plain_characters_is_refused(path: str, expected: str) -> None:
    plan = copy_plan(path)
    assert not plan.deployable and plan.errors[0].startswith(f"Input.directoryPath: {expected}"), plan.errors


def test_a_value_given_when_the_run_starts_never_reaches_the_copy() -> None:
    plan = copy_plan(PREFIX, parameters=[{"id": "myStage", "type": "String"}])
    assert plan.errors[0] == ("Input.directoryPath: must be known at import time (it is part of the COPY's SQL): give "
                              "myStage a value with --values or a default; only the run's time, through a format "
                              "pattern of the definition, may be computed when the run starts")


def test_a_source_with_thousands_of_run_values_is_refused_at_once() -> None:
    import time

    started = time.perf_counter()
    plan = copy_plan("s3://stage/" + "#{format(@scheduledStartTime, 'YYYY')}-#{format(@scheduledStartTime, 'DDD')}/"
                     * 1000)
    assert time.perf_counter() - started < 5
    assert plan.errors[0] == ("Input.directoryPath: holds 2000 values of the run; a COPY's source takes at most 20 "
                              "(each is one argument of the statement's States.Format)")
