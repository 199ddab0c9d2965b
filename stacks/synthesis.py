"""How every synthesis of the project runs (`cdk synth`, `datapipe synth`, the tests' and the benchmarks').

A module of its own, importing only the standard library, so that the benchmark's empty CDK app can take the same
setting without importing the stacks, and so that app.py can start the stacks' imports before aws_cdk's.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

# The CDK's built-in CloudFormation validation is off: cfn-lint and checkov check every synthesized template in the
# test suite instead (docs/decisions/0001-builtin-cloudformation-validation-off.md).
BUILTIN_CLOUDFORMATION_VALIDATION = False

STACKS_DIR = Path(__file__).resolve().parent
# `from aws_cdk import aws_s3 as s3`, `from datapipe.importer.plan import (`, `from stacks.config import ...`
_STACK_IMPORT = re.compile(r"^from (aws_cdk|datapipe(?:\.\w+)*|stacks\.config) import \(?([\w ,]*)", re.MULTILINE)


def stack_dependencies(stacks_dir: Path = STACKS_DIR) -> tuple[list[str], list[str]]:
    """The modules the stacks import that run no code in Node when imported, as (pure Python, aws_cdk's).

    Pure Python: the runtime package's modules and the settings. aws_cdk's: its service modules, generated bindings
    that only define Python classes (jsii calls Node when a construct is made, not when its class is defined).
    """
    pure: dict[str, None] = {}
    cdk: dict[str, None] = {}
    for path in sorted(stacks_dir.glob("*.py")):
        for package, names in _STACK_IMPORT.findall(path.read_text()):
            if package != "aws_cdk":
                pure[package] = None
                continue
            for name in names.split(","):  # `import (` names its modules on the lines after: those are not read
                module = name.split(" as ")[0].strip()
                if module.startswith("aws_"):
                    cdk[f"aws_cdk.{module}"] = None
    return list(pure), list(cdk)


class BackgroundImports:
    """Imports modules in a thread while the main thread waits on Node, so that the two processes work at once.

    A synthesis starts with Node loading aws-cdk-lib and then cdk-nag (0.4 s on a quiet machine), while Python sits
    waiting for each answer; Python then spends about as long importing the stacks, aws_cdk's service modules first,
    while Node sits idle. The thread imports the pure-Python modules while Node loads aws-cdk-lib, and aws_cdk's
    service modules once `aws_cdk_imported()` says the package is complete (so that no module is half-imported by two
    threads), while Node loads cdk-nag. Neither list calls into Node, which takes one request at a time.

    The main thread must `join()` before it imports anything but aws_cdk and cdk_nag, and `join(aws_cdk_failed=True)`
    when aws_cdk would not import (the thread then leaves its modules alone rather than fail on each). A module the
    thread fails to import is left alone: the main thread's own import of it then raises the error where it is used.
    """

    def __init__(self, pure_python: Iterable[str], aws_cdk_modules: Iterable[str]) -> None:
        self._aws_cdk_imported = threading.Event()
        self._aws_cdk_failed = False
        self._thread = threading.Thread(
            target=self._run, args=(list(pure_python), list(aws_cdk_modules)), name="stack-imports", daemon=True
        )
        self._thread.start()

    def _run(self, pure_python: list[str], aws_cdk_modules: list[str]) -> None:
        self._import(pure_python)
        self._aws_cdk_imported.wait()
        if not self._aws_cdk_failed:
            self._import(aws_cdk_modules)

    @staticmethod
    def _import(modules: list[str]) -> None:
        for module in modules:
            with contextlib.suppress(Exception):  # the main thread's own import of it reports the error
                importlib.import_module(module)

    def aws_cdk_imported(self) -> None:
        self._aws_cdk_imported.set()

    def join(self, *, aws_cdk_failed: bool = False) -> None:
        self._aws_cdk_failed = aws_cdk_failed
        self._aws_cdk_imported.set()  # the thread must not wait for what will not come
        self._thread.join()


def import_for_synthesis(stacks_dir: Path = STACKS_DIR) -> None:
    """Import aws_cdk and cdk_nag, and meanwhile in a thread what the stacks import (`BackgroundImports`).

    Call it before importing the stacks: they are then quick to import, and may call into Node when they are.

    The first time in a process, Python's cyclic garbage collector is off during these imports and what they made is
    frozen afterwards: they make some 260,000 objects (classes and functions of the bindings) and no garbage, yet the
    collector ran about 400 times over them while they grew, and each later full collection scanned them all again
    (0.18 s of a synthesis's 0.9 s of Python). Frozen objects are never collected, as modules never are anyway.
    """
    first = "aws_cdk" not in sys.modules
    collecting = gc.isenabled()
    if first:
        gc.disable()
    try:
        background = BackgroundImports(*stack_dependencies(stacks_dir))
        try:
            importlib.import_module("aws_cdk")
        except BaseException:
            background.join(aws_cdk_failed=True)
            raise
        background.aws_cdk_imported()
        try:
            importlib.import_module("cdk_nag")
        finally:
            background.join()
    finally:
        if first:
            gc.freeze()
            if collecting:
                gc.enable()
