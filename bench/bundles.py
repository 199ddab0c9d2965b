"""Bundle push and pull against the AWS CLI (`aws s3 sync` / `aws s3 cp`) on the same emulator, in the same run.

Two data sets: many small files (default 1,000 of 4 KiB) and one large file (default 1 GiB). Both sides are
processes started the same way, talking to the same embedded emulator; the ratio is datapipe's median time over the
CLI's (goal: at most 1.0, i.e. at least as fast). A pull also verifies every file's sha256; the CLI checks nothing
beyond what S3 returns.

Run: `python -m bench.bundles [--small-files N] [--small-kib K] [--large-mib M] [--repeat R]`
(`--large-mib 64` tries it quickly; `python -m bench` runs it with the defaults).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.timing import describe, ratio
from datapipe.bundles.manifest import Manifest
from datapipe.bundles.remote import Remote
from datapipe.bundles.store import DATA_DIR_ENV, LocalContext
from datapipe.local.server import Emulator

GOAL = 1.0
BUCKET = "bench-bundles"
BIN = Path(sys.executable).parent


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bundles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=1000, help="number of small files [1000]")
    parser.add_argument("--small-kib", type=int, default=4, help="size of each small file in KiB [4]")
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the large file in MiB [1024]")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each small-file measurement [3]")
    parser.add_argument("--large-repeat", type=int, default=1, help="runs of each large-file measurement [1]")
    return parser.parse_args(argv)


def make_small_files(folder: Path, count: int, size: int) -> None:
    for index in range(count):
        path = folder / f"part-{index // 100:02d}" / f"file-{index:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def make_large_file(path: Path, mib: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as stream:
        for _ in range(mib):
            stream.write(block)


class Bench:
    def __init__(self, emulator: Emulator, workdir: Path) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.env = {**os.environ, **emulator.env()}
        self.s3 = emulator.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        self.remote_url = f"s3://{BUCKET}/bundles"
        self.context = self.new_context("source")
        self._runs = 0

    def new_context(self, label: str) -> LocalContext:
        context = LocalContext(self.workdir / f"data-{label}", "bench")
        context.set_remote(self.remote_url)
        return context

    def remote(self) -> Remote:
        return Remote(self.remote_url, "bench", client=self.s3, show_progress=False)

    def run(self, command: list[str], data_dir: Path | None = None) -> float:
        env = dict(self.env)
        if data_dir is not None:
            env[DATA_DIR_ENV] = str(data_dir)
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=self.workdir)
        return time.perf_counter() - start

    def empty_prefix(self, prefix: str) -> None:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})

    def measure(
        self, label: str, manifest: Manifest, source: Path, *, repeat: int, single_file: bool, report: bool = True
    ) -> None:
        datapipe = str(BIN / "datapipe")
        aws = str(BIN / "aws")
        pushes: list[float] = []
        cli_pushes: list[float] = []
        pulls: list[float] = []
        cli_pulls: list[float] = []
        for attempt in range(repeat):
            self._runs += 1
            cli_prefix = f"cli/{label}-{self._runs}/"
            cli_target = f"s3://{BUCKET}/{cli_prefix}"

            pushes.append(
                self.run(
                    [
                        datapipe,
                        "bundle",
                        "push",
                        manifest.name,
                        "--uuid",
                        manifest.uuid,
                        "-c",
                        "bench",
                        "--no-progress",
                    ],
                    self.context.data_dir,
                )
            )
            if single_file:
                cli_pushes.append(self.run([aws, "s3", "cp", str(source), cli_target, "--only-show-errors"]))
            else:
                cli_pushes.append(self.run([aws, "s3", "sync", str(source), cli_target, "--only-show-errors"]))

            puller = self.new_context(f"{label}-pull-{attempt}")
            pulls.append(
                self.run(
                    [
                        datapipe,
                        "bundle",
                        "pull",
                        manifest.name,
                        "--uuid",
                        manifest.uuid,
                        "-c",
                        "bench",
                        "--no-progress",
                    ],
                    puller.data_dir,
                )
            )
            assert puller.find(manifest.name).files == manifest.files
            destination = self.workdir / f"cli-{label}-{attempt}"
            if single_file:
                key = f"{cli_target}{source.name}"
                cli_pulls.append(self.run([aws, "s3", "cp", key, str(destination / source.name), "--only-show-errors"]))
            else:
                cli_pulls.append(self.run([aws, "s3", "sync", cli_target, str(destination), "--only-show-errors"]))

            # Leave the emulator and the disk as they were, and the version ready to be pushed again.
            shutil.rmtree(puller.data_dir)
            shutil.rmtree(destination)
            self.remote().delete(manifest)
            self.empty_prefix(cli_prefix)

        if not report:
            return
        peer = "aws s3 cp" if single_file else "aws s3 sync"
        mib = manifest.size / (1024 * 1024)
        for what, ours, theirs in (("push", pushes, cli_pushes), ("pull", pulls, cli_pulls)):
            value = ratio(ours, theirs)
            verdict = "met" if value <= GOAL else "NOT met"
            print(describe(f"  {what}: datapipe bundle {what}", ours))
            print(describe(f"  {what}: {peer} (peer)", theirs))
            print(f"  {what}: ratio datapipe/CLI {value:.2f}x (goal <= {GOAL:.1f}x) -> {verdict}")
            rates = [f"{mib / statistics.median(t):.1f} MiB/s, {len(manifest.files) / statistics.median(t):.0f} files/s"
                     for t in (ours, theirs)]  # fmt: skip
            print(f"  {what}: throughput datapipe {rates[0]}; CLI {rates[1]}")


def timed(step: str, action: Callable[[], object]) -> None:
    start = time.perf_counter()
    action()
    print(f"  ({step}: {time.perf_counter() - start:.1f} s, not measured)")


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv or [])
    with tempfile.TemporaryDirectory(prefix="bench-bundles-") as folder, Emulator(export_environment=False) as emulator:
        workdir = Path(folder)
        bench = Bench(emulator, workdir)

        # One untimed round of each tool first, so that neither pays the first-request costs for the other.
        warm = workdir / "warm-up"
        make_small_files(warm, 2, 1024)
        bench.measure(
            "warm-up", bench.context.commit("warm-up", [warm]), warm, repeat=1, single_file=False, report=False
        )

        small = workdir / "small"
        print(f"small files: {args.small_files} x {args.small_kib} KiB, {args.repeat} runs")
        timed("make files", lambda: make_small_files(small, args.small_files, args.small_kib * 1024))
        manifest = bench.context.commit("small", [small])
        bench.measure("small", manifest, small, repeat=args.repeat, single_file=False)
        shutil.rmtree(small)
        bench.context.remove(manifest)

        large = workdir / "large" / "large.bin"
        large.parent.mkdir()
        print(f"one large file: {args.large_mib} MiB, {args.large_repeat} runs")
        timed("make file", lambda: make_large_file(large, args.large_mib))
        manifest = bench.context.commit("large", [large])
        bench.measure("large", manifest, large, repeat=args.large_repeat, single_file=True)


if __name__ == "__main__":
    main(sys.argv[1:])
