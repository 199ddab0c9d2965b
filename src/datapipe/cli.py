"""The `datapipe` command line.

Sub-commands live in their own modules and are imported only when used, so `datapipe --help` and
`datapipe taskrunner` do not pay for importing the CDK or the emulator.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from datapipe import __version__
from datapipe.errors import DatapipeError
from datapipe.extras import missing_extra

# name -> "module:attribute" of a click command or group. One line per command.
COMMANDS: dict[str, str] = {
    "synth": "datapipe.synth:synth",
    "run": "datapipe.bundles.cli:run",
    "bundle": "datapipe.bundles.cli:bundle",
    "remote": "datapipe.bundles.cli:remote",
    "taskrunner": "datapipe.taskrunner.cli:taskrunner",
    "start": "datapipe.workflows:start",
    "graph": "datapipe.workflows:graph",
    "local": "datapipe.local.cli:local",
    "demo": "datapipe.local.cli:demo",
    "schedule": "datapipe.schedules:schedule",
    "import": "datapipe.importer.cli:import_command",
    "ls": "datapipe.operate.cli:list_workflows",
    "runs": "datapipe.operate.cli:list_runs",
    "status": "datapipe.operate.cli:status",
    "follow": "datapipe.operate.cli:follow",
    "stop": "datapipe.operate.cli:stop",
    "rerun": "datapipe.operate.cli:rerun",
    "logs": "datapipe.operate.cli:logs",
}


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatapipeError as error:
            fail(ctx, error)
        except RecursionError:  # a last resort: readers of user input name what they read (datapipe.jsontext)
            fail(ctx, DatapipeError("the input is nested too deeply to be read"))
        except ModuleNotFoundError as error:  # a command of an extra that this install left out
            problem = missing_extra(error, ctx.invoked_subcommand or "")
            if problem is None:
                raise
            fail(ctx, problem)
        except Exception as error:
            # AWS client set-up and connection errors, whichever command let them through: one line, what to do.
            from datapipe.aws import explain

            explained = explain(error)
            if explained is None:
                raise
            fail(ctx, explained)


def fail(ctx: click.Context, error: DatapipeError) -> None:
    """The one way a command fails: one line on stderr, and the error's exit code."""
    message = " ".join(str(error).split("\n"))
    click.echo(f"Error: {message}", err=True)
    ctx.exit(error.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="datapipe")
def cli() -> None:
    """Orchestrate EMR, Batch and worker-group work with Step Functions, in AWS or on this machine."""


def main() -> None:
    cli(prog_name="datapipe")


if __name__ == "__main__":
    main()
