"""`datapipe synth`: write the cloud assembly through app.py, without the CDK CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from datapipe.errors import DatapipeError
from datapipe.project import find_project_dir, jsii_environment


def parse_context_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise DatapipeError(f"context '{pair}' must be KEY=VALUE")
        context[key] = value
    return context


def synthesize(project_dir: Path, outdir: Path, context: dict[str, str] | None = None) -> Path:
    """Run app.py in its own process (jsii holds a Node child per process) and return the assembly folder."""
    env = jsii_environment()
    env["CDK_OUTDIR"] = str(outdir)
    if context:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    result = subprocess.run(
        [sys.executable, str(project_dir / "app.py")], cwd=project_dir, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        message = next((line for line in lines if line.startswith("Error: ")), lines[-1] if lines else "")
        raise DatapipeError(f"synth failed: {message.removeprefix('Error: ')}", exit_code=result.returncode or 1)
    return outdir


@click.command()
@click.option("-c", "--context", "pairs", multiple=True, metavar="KEY=VALUE", help="A context value, as for cdk synth.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Assembly folder [cdk.out].")
def synth(pairs: tuple[str, ...], output: Path | None) -> None:
    """Synthesize every stack into a cloud assembly (what `cdk synth` writes)."""
    project_dir = find_project_dir()
    outdir = (output or project_dir / "cdk.out").resolve()
    synthesize(project_dir, outdir, parse_context_pairs(pairs))
    templates = sorted(outdir.glob("*.template.json"))
    click.echo(f"Wrote {len(templates)} templates to {outdir}")
    for template in templates:
        click.echo(f"  {template.name}")
