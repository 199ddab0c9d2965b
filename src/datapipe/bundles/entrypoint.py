"""What runs inside the transform's container (and in the fresh process of `datapipe run --backend local`).

    python -m datapipe.bundles.entrypoint --remote s3://bucket/prefix --context CTX \\
        --input NAME --input-version UUID --output NAME --output-version UUID --transform module.Class \\
        [--output-tag KEY:VALUE ...] [--param NAME=VALUE ...] [--backend local|batch]

It assumes no persistent local storage: it pulls the input version from the remote into a context under the
working folder, runs the transform, and pushes the output version. When the transform raises, nothing is pushed,
so no new output version ever appears. The last line on stderr is then `Error: ...`, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from datapipe.bundles.manifest import InputRef, Lineage, check_uuid, parse_tags
from datapipe.bundles.names import ENTRYPOINT_MODULE
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import DATA_DIR_ENV, FILES_DIR, LocalContext
from datapipe.bundles.transform import (
    InputBundle,
    OutputBundle,
    code_version,
    load_transform,
    parse_parameters,
    resolved_parameters,
)
from datapipe.errors import DatapipeError

MODULE = ENTRYPOINT_MODULE


def build_command(
    *,
    remote: str,
    context: str,
    input_name: str,
    input_version: str,
    output_name: str,
    output_version: str,
    transform: str,
    output_tags: dict[str, str],
    parameters: dict[str, str],
    backend: str,
    python: str = "python",
) -> list[str]:
    """The container command for one run; `python` is the interpreter inside the image."""
    command = [
        python, "-m", MODULE,
        "--remote", remote,
        "--context", context,
        "--input", input_name,
        "--input-version", input_version,
        "--output", output_name,
        "--output-version", output_version,
        "--transform", transform,
        "--backend", backend,
    ]  # fmt: skip
    for key, value in output_tags.items():
        command += ["--output-tag", f"{key}:{value}" if value else key]
    for key, value in parameters.items():
        command += ["--param", f"{key}={value}"]
    return command


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--input-version", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--output-version", required=True)
    parser.add_argument("--transform", required=True)
    parser.add_argument("--output-tag", action="append", default=[])
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--backend", default="batch")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, object]:
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / ".datapipe")
    context = LocalContext(data_dir, args.context)
    context.set_remote(args.remote)
    remote = Remote(args.remote, args.context, show_progress=False)

    transform = load_transform(args.transform)
    given = parse_parameters(transform, args.transform, args.param)
    input_manifest = remote.find(args.input, version=check_uuid(args.input_version))
    remote.pull(context, input_manifest)

    lineage = Lineage(
        transform=args.transform,
        inputs=(InputRef(name=input_manifest.name, uuid=input_manifest.uuid),),
        code_version=code_version(transform),
        parameters=given,
        backend=args.backend,
    )
    with context.staging() as staged:
        outputs = OutputBundle(args.output, staged / FILES_DIR, parse_tags(args.output_tag))
        inputs = InputBundle(input_manifest, context.files_dir(input_manifest))
        try:
            transform().run(inputs, outputs, resolved_parameters(transform, given))
        except Exception as error:  # the user's code: report it, push nothing
            traceback.print_exc()
            raise DatapipeError(
                f"transform '{args.transform}' raised {type(error).__name__}: {error}; no output was pushed",
                exit_code=1,
            ) from None
        output = context.seal(
            staged, args.output, tags=outputs.tags, lineage=lineage, version=check_uuid(args.output_version)
        )
    remote.push(context, output)
    return {"output": output.name, "uuid": output.uuid, "files": len(output.files), "bytes": output.size}


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        summary = run(args)
    except DatapipeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
