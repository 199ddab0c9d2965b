"""A command of an extra that the install left out answers in one line naming the extra."""

from __future__ import annotations

import sys

import click
import pytest
from click.testing import CliRunner

from datapipe.cli import COMMANDS, cli
from datapipe.extras import missing_extra


@click.command()
def needs_the_emulator() -> None:
    import moto  # noqa: F401


@click.command()
def needs_something_else() -> None:
    import some_module_nobody_ships  # noqa: F401


def test_a_missing_module_of_an_extra_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # what an install without [local] looks like to `import moto`
    monkeypatch.setitem(COMMANDS, "emulate", f"{__name__}:needs_the_emulator")
    result = CliRunner().invoke(cli, ["emulate"])
    assert result.exit_code == 2
    assert result.output == (
        "Error: datapipe emulate needs the [local] extra (moto is not installed): pip install 'datapipe[local]'\n"
    )


def test_any_other_missing_module_is_not_blamed_on_an_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "other", f"{__name__}:needs_something_else")
    result = CliRunner().invoke(cli, ["other"])
    assert isinstance(result.exception, ModuleNotFoundError)


@pytest.mark.parametrize(("module", "extra"), [("aws_cdk.aws_s3", "cdk"), ("cdk_nag", "cdk"), ("moto.core", "local")])
def test_each_module_of_an_extra_maps_to_it(module: str, extra: str) -> None:
    problem = missing_extra(ModuleNotFoundError(f"No module named '{module}'", name=module), "synth")
    assert problem is not None and f"[{extra}]" in str(problem)
