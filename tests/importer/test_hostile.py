"""Hostile definitions (issue 11, section 5): each ends in one line naming the object and field, and the importer's
time grows linearly with the size of the definition."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli

DEFAULT = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345"}


def say(command: str) -> list[dict[str, Any]]:
    return [DEFAULT, {"id": "Say", "type": "ShellCommandActivity", "command": command}]


def run_import(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output.strip().splitlines()


def the_error(path: Path) -> str:
    """The one error of a definition that cannot be deployed."""
    code, lines = run_import(path)
    errors = [line.removeprefix("  error: ") for line in lines if line.startswith("  error: ")]
    assert code == 1 and len(errors) == 1, lines
    return errors[0]


def nested(function: str, depth: int) -> str:
    return f"{function}(" * depth + "@scheduledStartTime" + ")" * depth


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (f"echo #{{{nested('midnight', 2000)}}}", "Say.command: '#{midnight(midnight(midnight(midnight(midnight("
         "midnight(mid...}': functions are nested deeper than 32 levels"),
        ("echo #{format(makeDate(2024,13,40),'YYYY')}", "Say.command: '#{format(makeDate(2024,13,40),'YYYY')}' "
         "cannot be mapped: makeDate(2024,13,40) is not a date: month must be in 1..12"),
        ("echo #{format(plusYears(makeDate(9000,1,1),1000),'YYYY')}", "Say.command: '#{format(plusYears(makeDate("
         "9000,1,1),1000),'YYYY')}' cannot be mapped: plusYears gives a date outside the years 1 to 9999"),
        ("echo #{format(plusDays(makeDate(2024,1,1), 999999999999),'YYYY')}", "Say.command: '#{format(plusDays("
         "makeDate(2024,1,1), 999999999999),'YYYY')}' cannot be mapped: plusDays gives a date outside the years 1 "
         "to 9999"),
        ("echo #{plusDays(@scheduledStartTime, 999999999999)}", "Say.command: '#{plusDays(@scheduledStartTime, "
         "999999999999)}' cannot be mapped: plusDays gives a date outside the years 1 to 9999"),
        ("echo #{plusDays(makeDate(2024,1,1), " + "9" * 5000 + ")}", "Say.command: '#{plusDays(makeDate(2024,1,1), "
         "9999999999999999999999999999...}': the number 999999999999... has more than 18 digits"),
    ],
    ids=["midnight-2000-deep", "makeDate-13-40", "plusYears-past-9999", "plusDays-huge-static",
         "plusDays-huge-run-time", "number-5000-digits"],
)
def test_hostile_expressions_give_one_line_on_the_object_and_field(
    write_definition: Callable[..., Path], command: str, expected: str
) -> None:
    assert the_error(write_definition(say(command))) == expected


def test_a_chain_of_3000_parents_listed_in_reverse_order_is_read(write_definition: Callable[..., Path]) -> None:
    count = 3000
    objects = [{"id": f"Base{i}", "type": "ShellCommandActivity", "workerGroup": "wg-12345", "command": f"echo {i}",
                "parent": {"ref": f"Base{i + 1}"}} for i in range(count - 1)]
    objects.append({"id": f"Base{count - 1}", "type": "ShellCommandActivity", "workerGroup": "wg-12345",
                    "command": "echo last", "myTop": "from the top"})
    objects.append({"id": "Uses", "type": "ShellCommandActivity", "parent": {"ref": "Base0"},
                    "command": "echo #{myTop}"})
    code, lines = run_import(write_definition([DEFAULT, *reversed(objects)]))
    assert code == 0 and lines == [f"pipeline.json: pipeline 'pipeline' can be deployed; {count + 2} of {count + 2} "
                                   "objects mapped"]


def test_a_parent_cycle_of_3000_objects_is_one_problem(write_definition: Callable[..., Path]) -> None:
    count = 3000
    objects = [{"id": f"P{i}", "type": "ShellCommandActivity", "workerGroup": "wg-12345", "command": "echo",
                "parent": {"ref": f"P{(i + 1) % count}"}} for i in range(count)]
    error = the_error(write_definition([DEFAULT, *reversed(objects)]))
    # Read from P2999 (listed first) up through P0, P1, ...: P2998's parent closes the cycle.
    assert error == ("P2998.parent: inheritance cycle: P2999 -> P0 -> P1 -> P2 -> P3 -> P4 -> P5 -> P6 -> P7 -> P8 "
                     "-> ...")


def dependency_chain(count: int, *, cycle: bool = False) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [{"id": f"A{i}", "type": "ShellCommandActivity", "command": f"echo {i}"}
                                     for i in range(count)]
    for i in range(1, count):
        objects[i]["dependsOn"] = {"ref": f"A{i - 1}"}
    if cycle:
        objects[0]["dependsOn"] = {"ref": f"A{count - 1}"}
    return [DEFAULT, *reversed(objects)]


def test_a_dependency_chain_of_3000_in_reverse_order_gives_3000_stages(
    write_definition: Callable[..., Path]
) -> None:
    result = CliRunner().invoke(cli, ["import", str(write_definition(dependency_chain(3000))), "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["stages"] == [[f"A{i}"] for i in range(3000)]


def test_a_dependency_cycle_of_3000_is_one_problem(write_definition: Callable[..., Path]) -> None:
    error = the_error(write_definition(dependency_chain(3000, cycle=True)))
    assert error.startswith("A2999.dependsOn: dependency cycle: A2999 -> A2998 -> ")
    assert error.endswith("A2990 -> ... -> A2999")


def test_arrays_nested_5000_deep_name_the_field(write_definition: Callable[..., Path]) -> None:
    text = '{"objects": [{"id": "Default", "myDeep": ' + "[" * 5000 + "]" * 5000 + "}]}"
    code, lines = run_import(write_definition(text=text))
    assert code == 2 and lines == ["Error: pipeline.json: objects[0].myDeep[0]...: nested deeper than 64 levels at "
                                   "line 1, column 103"]


def test_an_id_with_a_lone_surrogate_is_named(write_definition: Callable[..., Path]) -> None:
    text = ('{"objects": [{"id": "Default", "workerGroup": "wg-12345"}, {"id": "A\\ud800", '
            '"type": "ShellCommandActivity"}]}')
    code, lines = run_import(write_definition(text=text))
    assert code == 2 and lines == ["Error: pipeline.json: objects[1].id: a lone surrogate \\ud800 is not a character "
                                   "at line 1, column 69"]


def doubling(levels: int, leaf: str = "x") -> list[dict[str, Any]]:
    """User fields where each level refers to the next four times: 4**levels paths through them."""
    default: dict[str, Any] = dict(DEFAULT)
    for level in range(levels):
        default[f"myLevel{level}"] = "".join(f"#{{myLevel{level + 1}}}" for _ in range(4))
    default[f"myLevel{levels}"] = leaf
    return [default, {"id": "Say", "type": "ShellCommandActivity", "command": "echo #{myLevel0}"}]


def test_fields_that_double_per_level_are_bounded_and_quick(write_definition: Callable[..., Path]) -> None:
    started = time.perf_counter()
    error = the_error(write_definition(doubling(20)))
    # 4**10 = 1,048,576 characters at level 10 is the first value over the 256 KiB a task's input may hold.
    assert error == "Say.command: '#{myLevel10}' cannot be mapped: expands to more than 262144 characters"
    assert time.perf_counter() - started < 5  # was exponential: 10 levels took 7.3 s
    code, lines = run_import(write_definition(doubling(6), name="small.json"))  # 4**6 = 4096 characters: fine
    assert code == 0, lines


def test_a_field_that_refers_to_itself_is_a_cycle(write_definition: Callable[..., Path]) -> None:
    objects = [{**DEFAULT, "myA": "#{myB}", "myB": "x#{myA}"},
               {"id": "Say", "type": "ShellCommandActivity", "command": "echo #{myA}"}]
    assert the_error(write_definition(objects)) == (
        "Say.command: '#{myA}' cannot be mapped: 'myA' refers to itself: myA -> myB -> myA")


def test_a_control_character_in_a_value_stays_on_one_line(write_definition: Callable[..., Path]) -> None:
    objects = [DEFAULT, {"id": "Say\nEvil", "type": "ShellCommandActivity", "command": "echo",
                         "maximumRetries": "1\n2"}]
    assert the_error(write_definition(objects)) == (
        "Say\\nEvil.maximumRetries: must be a whole number from 0 to 999999999, got '1\\\\n2'")


def seconds_to_import(path: Path) -> float:
    """CPU seconds of the best of three imports; the cyclic garbage collector (whose passes grow with the live
    objects, not with the importer's work) is paused meanwhile."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            started = time.process_time()
            code, _ = run_import(path)
            best = min(best, time.process_time() - started)
            assert code == 0
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("shape", ["parents", "dependencies"])
def test_import_time_grows_linearly_with_the_definition(write_definition: Callable[..., Path], shape: str) -> None:
    def definition(count: int) -> list[dict[str, Any]]:
        if shape == "dependencies":
            return dependency_chain(count)
        objects = [{"id": f"P{i}", "type": "ShellCommandActivity", "command": "echo #{myTop}",
                    "parent": {"ref": f"P{i + 1}"}} for i in range(count - 1)]
        objects.append({"id": f"P{count - 1}", "type": "ShellCommandActivity", "command": "echo", "myTop": "t"})
        return [DEFAULT, *reversed(objects)]

    small = seconds_to_import(write_definition(definition(500), name="small.json"))
    large = seconds_to_import(write_definition(definition(2000), name="large.json"))
    # Four times the objects: linear work takes about 4 times as long, quadratic 16 times.
    assert large / small < 8, (small, large)


def test_a_timeout_longer_than_a_run_can_last_is_named(write_definition: Callable[..., Path]) -> None:
    objects = [DEFAULT, {"id": "Say", "type": "ShellCommandActivity", "command": "true",
                         "attemptTimeout": "999999999 years"}]
    assert the_error(write_definition(objects)) == (
        "Say.attemptTimeout: '999999999 years' is longer than a year, the longest a Step Functions run lasts")


def test_configurations_nested_3000_deep_are_named(write_definition: Callable[..., Path]) -> None:
    configurations = [{"id": f"C{i}", "type": "EmrConfiguration", "classification": "x",
                       "configuration": {"ref": f"C{i + 1}"}} for i in range(2999)]
    configurations.append({"id": "C2999", "type": "EmrConfiguration", "classification": "x"})
    objects = [{"id": "Default", "scheduleType": "ondemand"},
               {"id": "Cluster", "type": "EmrCluster", "configuration": {"ref": "C0"}},
               {"id": "Run", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"}, "jarUri": "s3://code/x.jar"},
               *configurations]
    # C0 is the first level, so C16 is the seventeenth.
    assert the_error(write_definition(objects)) == "C16.configuration: configurations are nested deeper than 16 levels"
