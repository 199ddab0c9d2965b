"""Secrets and run-time parameters in imported pipelines (issue 11, sections 3 and 2): a secret parameter is a
reference, never a value; values a run is started with reach commands as variables, never as shell text."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.importer import import_file
from datapipe.importer.expressions import RuntimePath, Text
from datapipe.importer.plan import shell_code

DEFAULT = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345"}
PASSWORD = "pa55-w0rd-in-plain-text"
PARAMETERS = [{"id": "*myPassword", "type": "String"}, {"id": "myWord", "type": "String"}]


def definition(command: str, **extra: Any) -> list[dict[str, Any]]:
    return [DEFAULT, {"id": "Say", "type": "ShellCommandActivity", "command": command, **extra}]


def run_json(path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(cli, ["import", str(path), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.output), result.output


def values_file(tmp_path: Path, values: dict[str, str]) -> str:
    path = tmp_path / "values.json"
    path.write_text(json.dumps({"values": values}))
    return str(path)


def test_a_secret_given_as_a_value_is_refused_without_repeating_it(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_definition(definition("login #{*myPassword}"), parameters=PARAMETERS)
    code, report, output = run_json(path, "--values", values_file(tmp_path, {"*myPassword": PASSWORD}))
    assert code == 1 and PASSWORD not in output
    assert "*myPassword.value: give a reference to the secret, never the secret itself: 'secretsmanager:<name>', a " \
        "Secrets Manager secret ARN or 'ssm:<SecureString parameter name>'" in report["errors"]


def test_a_secret_never_comes_from_the_execution_input(write_definition: Callable[..., Path]) -> None:
    code, report, _ = run_json(write_definition(definition("login #{*myPassword}"), parameters=PARAMETERS))
    assert code == 1 and report["runtimeParameters"] == []
    assert report["errors"] == ["Say.command: '#{*myPassword}' cannot be mapped: the secret *myPassword has no "
                                "reference: give 'secretsmanager:<name>', a Secrets Manager secret ARN or "
                                "'ssm:<SecureString name>' with --values (a secret never comes from the execution "
                                "input)"]


def test_a_secret_outside_a_command_is_refused(write_definition: Callable[..., Path], tmp_path: Path) -> None:
    objects = [*definition("true", onFail={"ref": "Tell"}),
               {"id": "Tell", "type": "SnsAlarm", "topicArn": "arn:aws:sns:us-east-1:123456789012:t",
                "subject": "s", "message": "password #{*myPassword}"}]
    code, report, _ = run_json(write_definition(objects, parameters=PARAMETERS), "--values",
                               values_file(tmp_path, {"*myPassword": "secretsmanager:prod/db"}))
    assert code == 1 and report["errors"] == [
        "Tell.message: '#{*myPassword}' cannot be mapped: the secret *myPassword can be used only in the command of a "
        "shell activity, which reads it at run time as the variable $myPassword"]


@pytest.mark.parametrize("reference", [
    "secretsmanager:prod/db-password", "ssm:/prod/db/password",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-AbCdEf",
])
def test_a_reference_is_accepted_and_only_the_reference_reaches_the_plan(
    write_definition: Callable[..., Path], tmp_path: Path, reference: str
) -> None:
    path = write_definition(definition("login #{*myPassword}"), parameters=PARAMETERS)
    plan = import_file(path, values_path=Path(values_file(tmp_path, {"*myPassword": reference})))
    assert plan.deployable, plan.errors
    [activity] = plan.activities
    assert activity.shell is not None and activity.shell.command == 'login "${myPassword}"'
    assert activity.shell.secrets == {"myPassword": reference.removeprefix("secretsmanager:")}


def test_a_value_the_run_is_started_with_is_a_variable_of_the_command(write_definition: Callable[..., Path]) -> None:
    plan = import_file(write_definition(definition("echo #{myWord}; ls '#{myWord}'; echo \"x#{myWord}\""),
                                        parameters=PARAMETERS))
    [activity] = plan.activities
    assert activity.shell is not None
    assert activity.shell.command == """echo "${myWord}"; ls ''"${myWord}"''; echo "x${myWord}\""""
    assert activity.shell.environment == {"myWord": Text.of(RuntimePath("$.parameters.myWord"))}
    assert plan.runtime_parameters == ["myWord"]


def test_the_variable_keeps_a_hostile_value_one_word_in_bash(tmp_path: Path) -> None:
    """Bare, in single quotes and in double quotes, bash prints the value as it is and runs none of it."""
    word = RuntimePath("$.parameters.myWord")
    code = shell_code(Text.of("printf '[%s]' ", word, " '", word, "' \"", word, "\""))
    assert code.text == """printf '[%s]' "${myWord}" ''"${myWord}"'' "${myWord}\""""
    hostile = "a b; touch pwned $(touch pwned) `touch pwned` '\" *"
    result = subprocess.run(["bash", "-c", code.text], env={"myWord": hostile, "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    assert result.stdout == f"[{hostile}]" * 3 and not (tmp_path / "pwned").exists()


def test_code_cannot_depend_on_a_parameter_given_at_run_time(write_definition: Callable[..., Path]) -> None:
    objects = [DEFAULT, {"id": "Say", "type": "ShellCommandActivity", "scriptUri": "s3://code/#{myWord}.sh"}]
    code, report, _ = run_json(write_definition(objects, parameters=PARAMETERS))
    assert code == 1 and report["errors"] == [
        "Say.scriptUri: the code that runs may not depend on myWord, a parameter given when the run starts; give it "
        "a value with --values or a default, or pass it as an argument"]


def test_a_starter_may_give_only_text_among_the_allowed_values(
    write_definition: Callable[..., Path], tmp_path: Path
) -> None:
    parameters = [{"id": "myMode", "type": "String", "allowedValues": ["full", "delta"]}]
    path = write_definition(definition("backup --mode #{myMode}"), parameters=parameters)
    out = tmp_path / "asl.json"
    result = CliRunner().invoke(cli, ["import", str(path), "--asl", str(out)])
    assert result.exit_code == 0, result.output
    states = json.loads(out.read_text())["States"]
    [choice] = states["Check_Parameter_Values"]["Choices"]
    assert choice["Or"] == [
        {"Not": {"Variable": "$.parameters.myMode", "IsString": True}},
        {"Not": {"Or": [{"Variable": "$.parameters.myMode", "StringEquals": "full"},
                        {"Variable": "$.parameters.myMode", "StringEquals": "delta"}]}},
    ]
    assert states[choice["Next"]] == {"Type": "Fail", "Error": "InvalidParameters",
                                      "Cause": "the parameters must be text: myMode (one of: full, delta)"}
