"""Shared fixtures: fake AWS credentials everywhere, and one synthesis of the whole app per session."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stacks.synthesis import BUILTIN_CLOUDFORMATION_VALIDATION

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

# Tests never reach AWS: fake credentials, a fixed region, and no instance-metadata lookups. The one exception is
# the conformance suite run on purpose against a real account (DATAPIPE_CONFORMANCE_TARGET=aws, docs/emulator.md),
# which keeps the caller's own credentials and region.
if os.environ.get("DATAPIPE_CONFORMANCE_TARGET") != "aws":
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
_node = Path(sys.executable).with_name("node")
if _node.exists():
    os.environ.setdefault("JSII_NODE", str(_node))
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# Every App a test builds synthesizes as the project's do (decision 0001). jsii's Node process takes its environment
# (this, and JSII_NODE above) once, when aws_cdk is first imported: nothing above imports it.
if not BUILTIN_CLOUDFORMATION_VALIDATION:
    os.environ.setdefault("CDK_VALIDATION", "false")

# Real database servers, one of each per session for every test folder (started only when a test asks).
pytest_plugins = ["tests.database_servers"]

TEST_CONTEXT = {"account": "123456789012", "region": "eu-west-1"}


@pytest.fixture(scope="session")
def cdk_json_context() -> dict[str, object]:
    return dict(json.loads((PROJECT_DIR / "cdk.json").read_text())["context"])


@pytest.fixture(scope="session")
def assembly_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole app synthesized once, with cdk.json's context (feature flags) and cdk-nag registered.

    Synthesis fails if cdk-nag reports a finding that is not acknowledged.
    """
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(context=TEST_CONTEXT, outdir=str(outdir)).synth()
    return outdir


@pytest.fixture(scope="session")
def templates(assembly_dir: Path) -> dict[str, dict[str, object]]:
    """Every synthesized template by stack id (file name without .template.json)."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(assembly_dir.glob("*.template.json"))
    }


@pytest.fixture(scope="session")
def template_of(templates: dict[str, dict[str, object]]) -> Callable[[str], Template]:
    """`template_of("Storage")` -> aws_cdk.assertions.Template of that stack."""
    from aws_cdk.assertions import Template

    cache: dict[str, Template] = {}

    def get(stack_id: str) -> Template:
        if stack_id not in cache:
            cache[stack_id] = Template.from_json(templates[stack_id])
        return cache[stack_id]

    return get


@pytest.fixture()
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
