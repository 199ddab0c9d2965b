"""Reading both definition forms, inheritance, parameters and values, and validation that reports everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from datapipe.importer.model import build_model
from datapipe.importer.reader import Ref, parse_definition, read_definition

SHELL = {"id": "Hello", "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "echo hi"}


def problems_of(text: str) -> list[str]:
    return [str(p) for p in build_model(parse_definition(text, source="p.json")).problems]


def test_repeated_keys_and_arrays_are_lists_and_refs_are_references() -> None:
    text = """{"objects": [
        {"id": "Cluster", "type": "EmrCluster"},
        {"id": "Job", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         "step": "a.jar,1", "step": "b.jar,2", "preStepCommand": ["x", "y"]}]}"""
    pipeline = build_model(parse_definition(text))
    job = pipeline.objects["Job"]
    assert job.texts("step") == ["a.jar,1", "b.jar,2"]
    assert job.texts("preStepCommand") == ["x", "y"]
    assert job.fields["runsOn"] == [Ref("Cluster")]
    assert pipeline.problems == []


def test_the_api_fields_form_reads_like_the_objects_form() -> None:
    api = {
        "pipelineObjects": [
            {"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg-1"}]},
            {"id": "Hello", "name": "Hello", "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": "echo #{myWord}"},
                {"key": "scriptArgument", "stringValue": "a"},
                {"key": "scriptArgument", "stringValue": "b"},
                {"key": "onFail", "refValue": "Alarm"}]},
            {"id": "Alarm", "name": "Alarm", "fields": [
                {"key": "type", "stringValue": "SnsAlarm"}, {"key": "topicArn", "stringValue": "arn:aws:sns:x"},
                {"key": "subject", "stringValue": "s"}, {"key": "message", "stringValue": "m"}]},
        ],
        "parameterObjects": [{"id": "myWord", "attributes": [{"key": "type", "stringValue": "String"},
                                                              {"key": "default", "stringValue": "hi"}]}],
        "parameterValues": [{"id": "myWord", "stringValue": "hello"}],
    }
    pipeline = build_model(parse_definition(json.dumps(api)))
    hello = pipeline.objects["Hello"]
    assert hello.texts("scriptArgument") == ["a", "b"]
    assert hello.ref("onFail") == "Alarm"
    assert hello.text("workerGroup") == "wg-1"  # from Default
    assert pipeline.parameters["myWord"].default == ["hi"]
    assert pipeline.values == {"myWord": ["hello"]}
    assert pipeline.problems == []


def test_default_and_parent_inheritance_with_own_fields_winning() -> None:
    text = json.dumps({"objects": [
        {"id": "Default", "workerGroup": "wg-default", "maximumRetries": "3"},
        {"id": "Base", "type": "ShellCommandActivity", "command": "echo base", "workerGroup": "wg-base"},
        {"id": "Child", "type": "ShellCommandActivity", "parent": {"ref": "Base"}, "maximumRetries": "1"},
        {"id": "Plain", "type": "ShellCommandActivity", "command": "echo plain"},
    ]})
    pipeline = build_model(parse_definition(text))
    child, plain = pipeline.objects["Child"], pipeline.objects["Plain"]
    assert (child.text("command"), child.text("workerGroup"), child.text("maximumRetries")) == ("echo base",
                                                                                                "wg-base", "1")
    assert (plain.text("workerGroup"), plain.text("maximumRetries")) == ("wg-default", "3")
    assert "command" not in child.own  # inherited, not its own
    assert pipeline.problems == []


def test_every_problem_is_reported_at_once_naming_object_and_field() -> None:
    text = json.dumps({"objects": [
        {"id": "Default", "scheduleType": "cron"},
        {"id": "Odd", "type": "TeleportActivity"},
        {"id": "Typo", "type": "ShellCommandActivity", "workerGroup": "wg", "comand": "echo"},
        {"id": "Dangling", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x",
         "dependsOn": {"ref": "Nowhere"}},
        {"id": "A", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "dependsOn": {"ref": "B"}},
        {"id": "B", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "dependsOn": {"ref": "A"}},
        {"id": "NoTopic", "type": "SnsAlarm", "subject": "s", "message": "m"},
        {"id": "Wrong", "type": "ShellCommandActivity", "command": "x", "runsOn": {"ref": "NoTopic"}},
        {"id": "Twice", "type": "ShellCommandActivity", "workerGroup": "wg", "command": "x", "schedule": "daily"},
    ]})
    found = problems_of(text)
    expected = [
        "Odd.type: unknown type 'TeleportActivity'",
        "Typo.comand: unknown field for ShellCommandActivity",
        "Typo.command: ShellCommandActivity needs one of: command, scriptUri",
        "Dangling.dependsOn: refers to 'Nowhere', which is not defined",
        "A.dependsOn: dependency cycle: A -> B -> A",
        "NoTopic.topicArn: required field of SnsAlarm is missing",
        "Wrong.runsOn: refers to 'NoTopic', an action; it must be a resource",
        "Twice.schedule: must be a reference {\"ref\": \"<id>\"}, got text 'daily'",
    ]
    for message in expected:
        assert any(f.startswith(message) for f in found), (message, found)


def test_parent_cycles_and_duplicate_ids_are_errors() -> None:
    text = """{"objects": [
        {"id": "X", "type": "Schedule", "period": "1 day", "parent": {"ref": "Y"}},
        {"id": "Y", "type": "Schedule", "period": "1 day", "parent": {"ref": "X"}},
        {"id": "X", "type": "Schedule", "period": "2 days"}]}"""
    found = problems_of(text)
    assert "X.id: this id is used by more than one object" in found
    assert any(f.startswith(("X.parent: inheritance cycle", "Y.parent: inheritance cycle")) for f in found)


def test_values_and_parameters_files_are_read_and_checked(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    definition = write_definition([SHELL])
    parameters = tmp_path / "parameters.json"
    parameters.write_text('{"parameters": [{"id": "myColor", "type": "String", "allowedValues": ["red", "blue"]}]}')
    values = tmp_path / "values.json"
    values.write_text('{"values": {"myColor": "green", "myUnknown": "x",}}')  # lax JSON here too
    pipeline = build_model(read_definition(definition, values_path=values, parameters_path=parameters))
    found = [str(p) for p in pipeline.problems]
    assert "myColor.value: 'green' is not one of: red, blue" in found
    assert "(values).myUnknown: a value for a parameter that is not declared" in found
