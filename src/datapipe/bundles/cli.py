"""`datapipe remote`, `datapipe bundle ls|show|commit|push|pull|rm` and `datapipe run`."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from datapipe.aws import resolve_target
from datapipe.bundles import backends
from datapipe.bundles.manifest import BundleError, InputRef, Lineage, Manifest, check_name, format_tags, parse_tags
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import CONTEXT_ENV, DATA_DIR_ENV, DEFAULT_CONTEXT, LocalContext, default_data_dir
from datapipe.bundles.transform import code_version, load_transform, parse_parameters
from datapipe.errors import DatapipeError
from datapipe.listing import print_listing
from datapipe.naming import NAME_PATTERN, Naming

F = TypeVar("F", bound=Callable[..., Any])


def context_options(function: F) -> F:
    """--context and --data-dir, shared by every bundle command."""
    function = click.option(
        "-c",
        "--context",
        "context_name",
        envvar=CONTEXT_ENV,
        default=DEFAULT_CONTEXT,
        show_default=True,
        help=f"Local context holding the bundles [env {CONTEXT_ENV}].",
    )(function)
    function = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default=None,
        help=f"Folder of the local contexts [env {DATA_DIR_ENV}; default ~/.local/share/datapipe].",
    )(function)
    return function


def aws_options(function: F) -> F:
    """--endpoint-url and --region, resolved as every datapipe command does (see datapipe.aws)."""
    function = click.option("--region", default=None, help="AWS region [the environment's, or the emulator's].")(
        function
    )
    function = click.option("--endpoint-url", default=None, help="Send requests here (an emulator) instead of AWS.")(
        function
    )
    return function


def tag_option(*names: str, help: str) -> Callable[[F], F]:
    return click.option(*names, "tags", multiple=True, metavar="KEY[:VALUE]", help=help)


def version_options(verb: str, *, every: str | None = None) -> Callable[[F], F]:
    """--uuid and --tag select the version to `verb`; with `every`, --all selects every version."""

    def decorate(function: F) -> F:
        if every is not None:
            function = click.option("--all", "every", is_flag=True, help=every)(function)
        function = tag_option("-t", "--tag", help="The newest version carrying this tag (repeatable).")(function)
        return click.option("--uuid", "version", help=f"The version to {verb} [default: the newest].")(function)

    return decorate


@dataclass(frozen=True)
class Stores:
    """Where a command finds bundles: the local context and the S3 remote it is set to, as the options name them."""

    context_name: str
    data_dir: Path | None
    endpoint_url: str | None
    region: str | None

    def context(self) -> LocalContext:
        return open_context(self.data_dir, self.context_name)

    def remote(self, context: LocalContext, show_progress: bool | None = None) -> Remote:
        return open_remote(context, self.endpoint_url, self.region, show_progress)


def store_options(function: Callable[..., None]) -> Callable[..., None]:
    """The AWS and context options, handed to the command as one `stores` argument."""

    @functools.wraps(function)
    def command(
        *args: Any,
        context_name: str,
        data_dir: Path | None,
        endpoint_url: str | None,
        region: str | None,
        **kwargs: Any,
    ) -> None:
        function(*args, stores=Stores(context_name, data_dir, endpoint_url, region), **kwargs)

    return aws_options(context_options(command))


def progress_option(function: F) -> F:
    return click.option(
        "--progress/--no-progress", default=None, help="Show a progress bar [default: when stderr is a terminal]."
    )(function)


def open_context(data_dir: Path | None, context_name: str) -> LocalContext:
    return LocalContext(data_dir or default_data_dir(), context_name)


def open_remote(
    context: LocalContext, endpoint_url: str | None, region: str | None, show_progress: bool | None = None
) -> Remote:
    url = context.require_remote()
    return Remote(url, context.name, target=resolve_target(endpoint_url, region), show_progress=show_progress)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def describe(manifest: Manifest) -> str:
    size = human_size(manifest.size)
    return f"bundle '{manifest.name}' version {manifest.uuid} ({len(manifest.files)} files, {size})"


# ---------------------------------------------------------------------------------------------------------------------
# datapipe remote


@click.command()
@click.argument("context_name", metavar="CONTEXT")
@click.argument("url", required=False)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar=DATA_DIR_ENV, default=None)
@aws_options
def remote(
    context_name: str,
    url: str | None,
    data_dir: Path | None,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Set (or show) the S3 remote of CONTEXT: `datapipe remote CONTEXT s3://BUCKET/PREFIX`.

    The context is created if it does not exist; the bucket must exist.
    """
    context = open_context(data_dir, context_name)
    if url is None:
        click.echo(context.require_remote())
        return
    remote_store = Remote(url, context.name, target=resolve_target(endpoint_url, region))
    remote_store.check_bucket()
    context.set_remote(str(remote_store.url))
    click.echo(f"Context '{context.name}' now pushes to and pulls from {context.remote}")


# ---------------------------------------------------------------------------------------------------------------------
# datapipe bundle ...


@click.group()
def bundle() -> None:
    """Named, immutable, versioned sets of files in a local context, pushed to and pulled from its S3 remote."""


@bundle.command("ls")
@click.argument("name", required=False)
@tag_option("-t", "--tag", help="Only versions carrying this tag (repeatable).")
@click.option("--remote", "on_remote", is_flag=True, help="List the remote instead of the local context.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_options
def list_bundles(name: str | None, tags: tuple[str, ...], on_remote: bool, as_json: bool, stores: Stores) -> None:
    """List bundles (the newest version of each), or every version of bundle NAME."""
    context = stores.context()
    wanted = parse_tags(tags)
    versions = stores.remote(context).versions(name) if on_remote else context.versions(name)
    versions = [m for m in versions if m.matches(wanted)]
    if not name:
        newest = {m.name: m for m in versions}  # oldest first, so the last one of each name wins
        versions = sorted(newest.values(), key=lambda m: m.name)
    if as_json:
        click.echo(json.dumps([m.to_json() | {"files": len(m.files), "size": m.size} for m in versions], indent=2))
        return
    print_listing(
        ("name", "version", "created", "files", "size", "tags", "transform"),
        [
            (m.name, m.uuid, m.created, str(len(m.files)), human_size(m.size), format_tags(m.tags),
             m.lineage.transform or "")
            for m in versions
        ],
    )  # fmt: skip


@bundle.command("show")
@click.argument("name")
@version_options("show")
@click.option("--remote", "on_remote", is_flag=True, help="Read the manifest from the remote.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@store_options
def show(
    name: str, version: str | None, tags: tuple[str, ...], on_remote: bool, as_json: bool, stores: Stores
) -> None:
    """Show one version of bundle NAME: tags, files, checksums and lineage."""
    context = stores.context()
    store = stores.remote(context) if on_remote else context
    manifest = store.find(name, version=version, tags=parse_tags(tags))
    if as_json:
        click.echo(manifest.dumps(), nl=False)
        return
    lineage = manifest.lineage
    click.echo(f"{manifest.name} {manifest.uuid}")
    click.echo(f"  created    {manifest.created}")
    click.echo(f"  tags       {format_tags(manifest.tags) or '-'}")
    click.echo(f"  transform  {lineage.transform or '- (committed by hand)'}")
    for ref in lineage.inputs:
        click.echo(f"  input      {ref.name} {ref.uuid}")
    if lineage.transform:
        click.echo(f"  code       {lineage.code_version}")
        click.echo(f"  parameters {', '.join(f'{k}={v}' for k, v in lineage.parameters.items()) or '-'}")
        click.echo(f"  backend    {lineage.backend}")
    click.echo(f"  files      {len(manifest.files)} ({human_size(manifest.size)})")
    for entry in manifest.files:
        click.echo(f"    {entry.sha256[:12]}  {entry.size:>12}  {entry.path}")


@bundle.command("commit")
@click.argument("name")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@tag_option("-t", "--tag", help="Tag the new version (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@context_options
def commit(
    name: str, paths: tuple[Path, ...], tags: tuple[str, ...], as_json: bool, context_name: str, data_dir: Path | None
) -> None:
    """Make a new version of bundle NAME from files and folders (a folder contributes what is inside it)."""
    context = open_context(data_dir, context_name)
    manifest = context.commit(name, paths, tags=parse_tags(tags))
    click.echo(manifest.dumps() if as_json else f"Committed {describe(manifest)}", nl=not as_json)


def _selected(
    store: LocalContext | Remote, name: str, version: str | None, tags: tuple[str, ...], every: bool
) -> list[Manifest]:
    if every:
        wanted = parse_tags(tags)
        found = [m for m in store.versions(name) if m.matches(wanted)]
        if not found:
            raise BundleError(f"bundle '{name}' has no version to select")
        return found
    return [store.find(name, version=version, tags=parse_tags(tags))]


@bundle.command("push")
@click.argument("name")
@version_options("push", every="Push every local version.")
@progress_option
@store_options
def push(
    name: str, version: str | None, tags: tuple[str, ...], every: bool, progress: bool | None, stores: Stores
) -> None:
    """Push a version of bundle NAME to the context's remote; its manifest goes last."""
    context = stores.context()
    target = stores.remote(context, progress)
    for manifest in _selected(context, name, version, tags, every):
        done = target.push(context, manifest)
        click.echo(f"{'Pushed' if done else 'Already on the remote:'} {describe(manifest)}")


@bundle.command("pull")
@click.argument("name", required=False)
@version_options("pull", every="Pull every remote version.")
@progress_option
@store_options
def pull(
    name: str | None, version: str | None, tags: tuple[str, ...], every: bool, progress: bool | None, stores: Stores
) -> None:
    """Pull a version of bundle NAME (or the newest of every bundle) from the remote, verifying every checksum."""
    context = stores.context()
    source = stores.remote(context, progress)
    if name is None:
        if version:
            raise BundleError("--uuid needs a bundle NAME")
        newest = {m.name: m for m in source.versions() if m.matches(parse_tags(tags))}
        selected = list(newest.values())
        if not selected:
            raise BundleError(f"remote {source.url} holds no bundle of context '{context.name}' to pull")
    else:
        try:
            selected = _selected(source, name, version, tags, every)
        except BundleError:
            # A version that a Batch run of this context was to make: say what became of that run instead.
            unfinished = backends.unfinished_run(context, name, version, source.target) if version else None
            if unfinished is not None:
                raise unfinished from None
            raise
    for manifest in selected:
        done = source.pull(context, manifest)
        click.echo(f"{'Pulled' if done else 'Already local:'} {describe(manifest)}")


@bundle.command("rm")
@click.argument("name")
@version_options("remove", every="Remove every version.")
@click.option("--remote", "also_remote", is_flag=True, help="Remove from the remote too.")
@store_options
def remove(
    name: str, version: str | None, tags: tuple[str, ...], every: bool, also_remote: bool, stores: Stores
) -> None:
    """Remove a version of bundle NAME from the local context (and, with --remote, from the remote)."""
    context = stores.context()
    target = stores.remote(context) if also_remote else None
    if target is not None and not context.versions(name):
        selected = _selected(target, name, version, tags, every)  # only on the remote
    else:
        selected = _selected(context, name, version, tags, every)
    for manifest in selected:
        if context.has(manifest.name, manifest.uuid):
            context.remove(manifest)
        if target is not None:
            target.delete(manifest)
        click.echo(f"Removed {describe(manifest)}{' (local and remote)' if target else ''}")


# ---------------------------------------------------------------------------------------------------------------------
# datapipe run


@click.command()
@click.argument("input_name", metavar="INPUT_BUNDLE")
@click.argument("output_name", metavar="OUTPUT_BUNDLE")
@click.argument("transform", metavar="module.Class")
@click.argument("params", nargs=-1, metavar="[NAME=VALUE]...")
@click.option("--backend", type=click.Choice(["local", "batch"]), default="local", show_default=True)
@click.option("--no-push-input", is_flag=True, help="Use the input as it already is on the remote.")
@click.option("-it", "--input-tag", "input_tags", multiple=True, metavar="KEY[:VALUE]", help="Select the input.")
@click.option("-ot", "--output-tag", "output_tags", multiple=True, metavar="KEY[:VALUE]", help="Tag the output.")
@click.option("--force", is_flag=True, help="Run even if the same run already made an output version.")
@click.option(
    "--pipe-root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder the transform's module is imported from.",
)
@click.option("--prefix", envvar="DATAPIPE_PREFIX", default="datapipe", show_default=True, help="Deployed prefix.")
@click.option("--stage", envvar="DATAPIPE_STAGE", default="dev", show_default=True, help="Deployed stage.")
@click.option("--image", help="Container image for --backend batch [default: the transform's ECR repository:latest].")
@click.option("--vcpus", type=click.FloatRange(min=0.25), default=1, show_default=True, help="vCPUs of the Batch job.")
@click.option("--memory", type=click.IntRange(min=128), default=2048, show_default=True, help="MiB of the Batch job.")
@click.option("--fargate", is_flag=True, help="Register a Fargate job definition when none exists yet.")
@click.option(
    "--wait", is_flag=True, help="With --backend batch: wait for the job, pull its output, exit 1 if it failed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@store_options
def run(
    input_name: str,
    output_name: str,
    transform: str,
    params: tuple[str, ...],
    backend: str,
    no_push_input: bool,
    input_tags: tuple[str, ...],
    output_tags: tuple[str, ...],
    force: bool,
    pipe_root: Path,
    prefix: str,
    stage: str,
    image: str | None,
    vcpus: float,
    memory: int,
    fargate: bool,
    wait: bool,
    as_json: bool,
    stores: Stores,
) -> None:
    """Run transform module.Class on INPUT_BUNDLE, making a new version of OUTPUT_BUNDLE.

    --backend local runs it in a fresh process and folder, as the container would, and pulls the output back;
    --backend batch submits it through the transform state machine and returns at once (pull the output later
    with `datapipe bundle pull OUTPUT_BUNDLE --uuid VERSION`), or with --wait waits for the job and pulls it.
    """
    if wait and backend != "batch":
        raise DatapipeError("--wait goes with --backend batch (a local run always waits)")
    for option, value in (("--prefix", prefix), ("--stage", stage)):
        if re.fullmatch(NAME_PATTERN, value) is None:
            raise DatapipeError(f"{option} '{value}' must be a lower-case name (letters, digits, '-'; at most 20)")
    context = stores.context()
    target = resolve_target(stores.endpoint_url, stores.region)
    remote_store = stores.remote(context)
    check_name(output_name)
    transform_class = load_transform(transform, pipe_root.resolve())
    parameters = parse_parameters(transform_class, transform, params)
    tags_out = parse_tags(output_tags)
    backends.check_values_fit(tags_out, parameters)

    if no_push_input:
        input_manifest = remote_store.find(input_name, tags=parse_tags(input_tags))
    else:
        input_manifest = context.find(input_name, tags=parse_tags(input_tags))
        remote_store.push(context, input_manifest)

    planned = Lineage(
        transform=transform,
        inputs=(InputRef(name=input_manifest.name, uuid=input_manifest.uuid),),
        code_version=code_version(transform_class),
        parameters=parameters,
    )
    if not force:
        existing = _same_run(context, remote_store, output_name, planned)
        if existing is not None:
            remote_store.pull(context, existing)
            _report(as_json, {"status": "up-to-date", "output": output_name, "uuid": existing.uuid},
                    f"Up to date: {describe(existing)} came from the same input, code and parameters "
                    "(use --force to run again)")  # fmt: skip
            return

    plan = backends.RunPlan(
        context=context,
        remote=remote_store,
        transform=transform,
        input=input_manifest,
        output_name=output_name,
        output_tags=tags_out,
        parameters=parameters,
    )
    if backend == "local":
        output, log_path = backends.run_local(plan, pipe_root=pipe_root, target=target)
        _report(
            as_json,
            {"status": "done", "output": output.name, "uuid": output.uuid, "log": str(log_path)},
            f"Made {describe(output)} from {input_manifest.name} {input_manifest.uuid}",
        )
        return

    options = backends.BatchOptions(
        naming=Naming(prefix=prefix, stage=stage), image=image, vcpus=vcpus, memory_mib=memory, fargate=fargate
    )
    submission = backends.submit_batch(plan, options, target)
    backends.record_submission(context, output_name, submission)
    if wait:
        backends.wait_for_run(submission, target)
        output = remote_store.find(output_name, version=submission.output_version)
        remote_store.pull(context, output)
        _report(
            as_json,
            {"status": "done", "output": output.name, "uuid": output.uuid, "executionArn": submission.execution_arn,
             "jobId": submission.job_id},
            f"Made {describe(output)} from {input_manifest.name} {input_manifest.uuid} on AWS Batch "
            f"(job {submission.job_id or 'unknown'})",
        )  # fmt: skip
        return
    _report(
        as_json,
        {
            "status": "submitted",
            "executionArn": submission.execution_arn,
            "jobId": submission.job_id,
            "jobDefinitionArn": submission.job_definition_arn,
            "jobDefinitionRegistered": submission.job_definition_registered,
            "output": output_name,
            "uuid": submission.output_version,
        },
        "\n".join(
            [
                f"Submitted {transform} to AWS Batch",
                f"  execution       {submission.execution_arn}",
                f"  job             {submission.job_id or '(not submitted yet; see the execution)'}",
                f"  job definition  {submission.job_definition_arn}"
                + (" (new revision)" if submission.job_definition_registered else ""),
                f"  output          {output_name} {submission.output_version}",
                f"When the job is done: datapipe bundle pull {output_name} --uuid {submission.output_version}"
                " (or run with --wait)",
            ]
        ),
    )


def _same_run(context: LocalContext, remote_store: Remote, output_name: str, planned: Lineage) -> Manifest | None:
    """The newest output version (local or remote) that the planned run would only repeat."""
    candidates = context.versions(output_name)
    with contextlib.suppress(DatapipeError):  # an unreadable remote fails the run later with a clearer message
        candidates += remote_store.versions(output_name)
    matching = [m for m in candidates if m.lineage.same_run_as(planned)]
    return max(matching, key=lambda m: (m.created, m.uuid)) if matching else None


def _report(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)
