"""Where requests go (datapipe.aws): the options, the environment, and only a running emulator of this project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.aws import LOCAL_STATE_FILE, local_state_record, process_start, resolve_target, write_local_state
from datapipe.cli import cli
from datapipe.errors import DatapipeError

ENDPOINT = "http://127.0.0.1:5999"


@pytest.fixture(autouse=True)
def no_endpoint_in_environment(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


def make_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cdk.json").write_text("{}")
    (folder / "app.py").write_text("")
    return folder


def write_state(project: Path, record: Any, mode: int = 0o600) -> Path:
    path = project / LOCAL_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    path.chmod(mode)
    return path


def running_emulator_record(project: Path, **changes: Any) -> dict[str, Any]:
    """What `datapipe local up` writes; this test process stands for the emulator's (it runs, as this user)."""
    return {**local_state_record(endpoint_url=ENDPOINT, region="us-east-2", project_dir=project), **changes}


def test_precedence_option_environment_emulator_aws(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(clean_cwd / "project")
    nested = project / "some" / "folder"
    nested.mkdir(parents=True)
    assert resolve_target(start=nested).source == "aws"

    write_state(project, running_emulator_record(project))
    emulator = resolve_target(start=nested)
    assert (emulator.source, emulator.endpoint_url, emulator.region) == ("emulator", ENDPOINT, "us-east-2")

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:6000")
    assert resolve_target(start=nested).endpoint_url == "http://127.0.0.1:6000"
    option = resolve_target("http://127.0.0.1:7000", "ap-south-1", start=nested)
    assert (option.endpoint_url, option.region, option.source) == ("http://127.0.0.1:7000", "ap-south-1", "option")


def test_what_local_up_writes_is_private_and_trusted(clean_cwd: Path) -> None:
    project = make_project(clean_cwd / "project")
    path = project / LOCAL_STATE_FILE
    write_local_state(path, running_emulator_record(project))
    assert path.stat().st_mode & 0o777 == 0o600
    assert resolve_target(start=project).source == "emulator"


def test_a_state_file_in_a_folder_above_the_project_is_not_used(clean_cwd: Path) -> None:
    """Issue 11 §6: a .datapipe/local.json in any parent folder redirected every command."""
    above = clean_cwd / "shared"
    write_state(above, running_emulator_record(above))
    assert resolve_target(start=above / "somewhere" / "else").source == "aws"  # no project at all

    make_project(above)  # even when that folder is a project itself, a project below it has its own file
    write_state(above, running_emulator_record(above))
    inner = make_project(above / "inner")
    assert resolve_target(start=inner).source == "aws"
    assert resolve_target(start=above).source == "emulator"


def test_a_state_file_copied_from_another_project_is_not_used(clean_cwd: Path) -> None:
    original = make_project(clean_cwd / "original")
    copy = make_project(clean_cwd / "copy")
    write_state(copy, running_emulator_record(original))
    assert resolve_target(start=copy).source == "aws"


def test_a_state_file_of_a_stopped_emulator_or_a_reused_pid_is_not_used(clean_cwd: Path) -> None:
    project = make_project(clean_cwd / "project")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_state(project, running_emulator_record(project, pid=int(ended.stdout)))
    assert resolve_target(start=project).source == "aws"

    assert process_start(os.getpid()) is not None  # Linux: /proc tells when a process started
    write_state(project, running_emulator_record(project, processStart="1"))  # our pid, but not our start
    assert resolve_target(start=project).source == "aws"

    write_state(project, {"endpointUrl": ENDPOINT, "region": "us-east-2"})  # no process named at all
    assert resolve_target(start=project).source == "aws"

    write_state(project, {"endpointUrl": ENDPOINT, "pid": os.getpid(), "projectDir": str(project)})  # no start time
    assert resolve_target(start=project).source == "aws"


def test_a_state_file_others_may_write_is_refused(clean_cwd: Path) -> None:
    project = make_project(clean_cwd / "project")
    write_state(project, running_emulator_record(project), mode=0o646)
    with pytest.raises(DatapipeError, match="is not trusted: it belongs to another user or others may write it"):
        resolve_target(start=project)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("{", "local.json is not JSON: Expecting property name"),
        ("[" * 100_000 + "]" * 100_000, "local.json nests arrays or objects too deeply to be read"),
        ({"region": "eu-west-1"}, "must hold an object with 'endpointUrl'"),
        ({"endpointUrl": "not a url"}, "'endpointUrl' in "),
        ({"endpointUrl": ENDPOINT, "region": "../../x"}, "'region' in "),
    ],
)
def test_a_broken_state_file_is_one_line(clean_cwd: Path, record: Any, message: str) -> None:
    project = make_project(clean_cwd / "project")
    write_state(project, record)
    os.chdir(project)
    result = CliRunner().invoke(cli, ["schedule", "ls"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "environment", "message"),
    [
        (["--endpoint-url", "not a url"], {}, "--endpoint-url must be an http:// or https:// URL"),
        (["--endpoint-url", "http://127.0.0.1:99999"], {}, "--endpoint-url must be an http:// or https:// URL"),
        (["--region", "../../x"], {}, "--region must be a region name such as eu-west-1, got '../../x'"),
        ([], {"AWS_ENDPOINT_URL": "ftp://host"}, "AWS_ENDPOINT_URL must be an http:// or https:// URL"),
        ([], {"AWS_REGION": "eu west 1"}, "AWS_REGION must be a region name"),
    ],
)
def test_bad_endpoints_and_regions_name_where_they_came_from(
    args: list[str], environment: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for command in (["start", "emr-workflow"], ["graph", "emr-workflow"], ["schedule", "ls"]):
        result = CliRunner().invoke(cli, [*command, *args])
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith(f"Error: {message}"), (command, result.output)
        assert result.output.count("\n") == 1
