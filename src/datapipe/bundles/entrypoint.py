"""What runs inside the transform's container (and in the fresh process of `datapipe run --backend local`).

    python -m datapipe.bundles.entrypoint --transform module.Class --backend batch|local \\
        --remote s3://bucket/prefix --context CTX --input NAME --input-version UUID \\
        --output NAME --output-version UUID --output-tags '{"KEY": "VALUE"}' --parameters '{"NAME": "VALUE"}'

A transform's job definition fixes this command, the transform and the backend included; each run fills only the
values (names.JOB_PARAMETERS) through AWS Batch parameters, and every value is checked here as data: names, uuids,
the remote's URL, and tags and parameters as JSON objects of strings (parameters only those the transform declares).

It assumes no persistent local storage: it pulls the input version from the remote into a context under the
working folder, runs the transform, and pushes the output version. When the transform raises, nothing is pushed,
so no new output version ever appears. The last line on stderr is then `Error: ...`, and the exit code is 1; bad
values give one `Error: ...` line naming the option, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from datapipe.bundles.manifest import InputRef, Lineage, check_name, check_uuid, parse_tags
from datapipe.bundles.names import ENTRYPOINT_MODULE, JOB_PARAMETERS, check_class_path, option_name
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import DATA_DIR_ENV, FILES_DIR, LocalContext
from datapipe.bundles.transform import (
    InputBundle,
    OutputBundle,
    check_parameters,
    code_version,
    load_transform,
    resolved_parameters,
)
from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown

MODULE = ENTRYPOINT_MODULE
BACKENDS = ("batch", "local")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one DatapipeError line instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise DatapipeError(f"{self.prog}: {message}")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--transform", required=True)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    for name in JOB_PARAMETERS:
        parser.add_argument(f"--{option_name(name)}", required=True)
    args = parser.parse_args(argv)
    for name in JOB_PARAMETERS:
        if getattr(args, option_name(name).replace("-", "_")) == f"Ref::{name}":
            raise DatapipeError(f"--{option_name(name)}: the job was submitted without its parameter '{name}'")
    return args


def string_object(text: str, *, what: str) -> dict[str, str]:
    """A JSON object whose values are all strings (`{"key": "value", ...}`), or a one-line error naming `what`."""
    value = parse_json(text, what=what)
    if not isinstance(value, dict):
        raise DatapipeError(f"{what} must be a JSON object of strings, got {shown(text)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise DatapipeError(f"{what}: the value of {shown(key)} must be a string, got {shown(item)}")
    return value


def run(args: argparse.Namespace) -> dict[str, object]:
    check_class_path(args.transform)
    for name in ("context", "input", "output"):
        check_name(getattr(args, name), what=f"--{name}")
    args.input_version, args.output_version = check_uuid(args.input_version), check_uuid(args.output_version)
    output_tags = parse_tags(
        f"{key}:{value}" for key, value in string_object(args.output_tags, what="--output-tags").items()
    )
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / ".datapipe")
    remote = Remote(args.remote, args.context, show_progress=False)
    context = LocalContext(data_dir, args.context)
    context.set_remote(args.remote)

    transform = load_transform(args.transform)
    given = check_parameters(transform, args.transform, string_object(args.parameters, what="--parameters"))
    input_manifest = remote.find(args.input, version=args.input_version)
    remote.pull(context, input_manifest)

    lineage = Lineage(
        transform=args.transform,
        inputs=(InputRef(name=input_manifest.name, uuid=input_manifest.uuid),),
        code_version=code_version(transform),
        parameters=given,
        backend=args.backend,
    )
    with context.staging() as staged:
        outputs = OutputBundle(args.output, staged / FILES_DIR, output_tags)
        inputs = InputBundle(input_manifest, context.files_dir(input_manifest))
        try:
            transform().run(inputs, outputs, resolved_parameters(transform, given))
        except Exception as error:  # the user's code: report it, push nothing
            traceback.print_exc()
            raise DatapipeError(
                f"transform '{args.transform}' raised {type(error).__name__}: {error}; no output was pushed",
                exit_code=1,
            ) from None
        output = context.seal(staged, args.output, tags=outputs.tags, lineage=lineage, version=args.output_version)
    remote.push(context, output)
    return {"output": output.name, "uuid": output.uuid, "files": len(output.files), "bytes": output.size}


def main(argv: list[str] | None = None) -> int:
    try:
        summary = run(parse_arguments(sys.argv[1:] if argv is None else argv))
    except DatapipeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
