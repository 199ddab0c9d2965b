"""What a synthesis does before building constructs (issue 15): the imports Python makes while Node loads aws-cdk-lib
and cdk-nag, and settings checks that stay off the file system.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zoneinfo
from pathlib import Path

import pytest

from stacks.config import SettingsError, load_settings
from stacks.synthesis import BackgroundImports, import_for_synthesis, stack_dependencies

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_stack_dependencies_are_the_modules_the_stack_files_import(tmp_path: Path) -> None:
    (tmp_path / "one.py").write_text(
        "import json\n"
        "import aws_cdk as cdk\n"
        "from aws_cdk import aws_s3 as s3\n"
        "from aws_cdk import aws_iam as iam, aws_kms\n"
        "from aws_cdk import Duration\n"
        "from constructs import Construct\n"
        "from datapipe.importer.plan import (\n    Plan,\n)\n"
        "from stacks.config import StorageSettings\n"
        "from stacks.common import nag_arn\n"
        "    from aws_cdk import aws_ec2 as ec2  # indented: imported only when a function runs\n"
    )
    (tmp_path / "two.py").write_text("from aws_cdk import aws_s3 as s3\nfrom datapipe.naming import Naming\n")
    (tmp_path / "notes.txt").write_text("from aws_cdk import aws_sqs as sqs\n")

    pure_python, aws_cdk_modules = stack_dependencies(tmp_path)

    assert pure_python == ["datapipe.importer.plan", "stacks.config", "datapipe.naming"]
    assert aws_cdk_modules == ["aws_cdk.aws_s3", "aws_cdk.aws_iam", "aws_cdk.aws_kms"]


def test_the_background_thread_calls_nothing_in_node_and_the_imports_are_left_frozen() -> None:
    """jsii's Node process takes one request at a time: a thread that called it while the main thread waits on it
    would mix their messages. A fresh process runs `import_for_synthesis`, noting the thread of every request to
    Node; then whether everything the stacks import is there, and what the garbage collector was left with."""
    probe = (
        "import gc, json, sys, threading\n"
        "from jsii._kernel.providers import process\n"
        "threads = []\n"
        "original = process._NodeProcess.send\n"
        "def send(self, request, response_type):\n"
        "    threads.append(threading.current_thread().name)\n"
        "    return original(self, request, response_type)\n"
        "process._NodeProcess.send = send\n"
        "from stacks.synthesis import import_for_synthesis, stack_dependencies\n"
        "import_for_synthesis()\n"
        "pure_python, aws_cdk_modules = stack_dependencies()\n"
        "frozen = gc.get_freeze_count()\n"
        "import_for_synthesis()\n"
        "print(json.dumps({'threads': sorted(set(threads)), 'missing': [m for m in pure_python + aws_cdk_modules"
        " if m not in sys.modules], 'collecting': gc.isenabled(), 'frozen': frozen,"
        " 'frozen again': gc.get_freeze_count() - frozen}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("frozen") > 100_000  # the bindings' classes and functions
    assert result == {"threads": ["MainThread"], "missing": [], "collecting": True, "frozen again": 0}


def test_a_module_the_background_cannot_import_fails_where_the_main_thread_imports_it() -> None:
    BackgroundImports(["datapipe.no_such_module"], ["stacks.no_such_module"]).join()

    with pytest.raises(ModuleNotFoundError, match=r"datapipe\.no_such_module"):
        __import__("datapipe.no_such_module")


def test_when_aws_cdk_will_not_import_the_error_is_raised_and_no_thread_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stack.py").write_text("from aws_cdk import aws_s3 as s3\nfrom datapipe.naming import Naming\n")
    monkeypatch.setitem(sys.modules, "aws_cdk", None)  # what an install without the [cdk] extra does

    with pytest.raises(ImportError, match="aws_cdk"):
        import_for_synthesis(tmp_path)

    assert [thread for thread in threading.enumerate() if thread.name == "stack-imports"] == []


def test_importing_the_app_leaves_aws_cdk_cdk_nag_and_the_stacks_to_build_app() -> None:
    """Else they would be imported one after the other before `build_app` could overlap them."""
    probe = (
        "import json, sys\n"
        "import app\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'cdk_nag', 'jsii')} | {m for m in sys.modules if m.startswith('stacks.')})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["stacks.synthesis"]


def test_a_known_time_zone_is_checked_without_listing_every_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing the zones reads some 600 files (50 ms of every synthesis); loading the one named reads one."""

    def listing_every_zone() -> set[str]:
        raise AssertionError("listed every time zone to check one")

    monkeypatch.setattr(zoneinfo, "available_timezones", listing_every_zone)
    settings = load_settings({"triggers.schedules": '{"nightly": {"timeZone": "Europe/Paris"}}'})
    assert settings.triggers.schedules["nightly"].time_zone == "Europe/Paris"


@pytest.mark.parametrize("name", ["Paris", "posix/Europe/Paris", "right/UTC", "posixrules", "../Europe/Paris", "/UTC"])
def test_what_is_not_a_zone_name_of_the_list_is_still_refused(name: str) -> None:
    if name not in zoneinfo.available_timezones() and not zoneinfo.available_timezones():
        pytest.skip("no time zone data on this machine: the service judges")
    with pytest.raises(SettingsError, match="must be an IANA time zone such as Europe/Paris"):
        load_settings({"triggers.schedules": json.dumps({"nightly": {"timeZone": name}})})
