"""`datapipe import FILE`: what a Data Pipeline definition becomes here, object by object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from datapipe.errors import DatapipeError
from datapipe.importer import import_file
from datapipe.importer.plan import MAPPED, Plan

_STATUS_STYLE = {"mapped": "green", "unsupported": "yellow", "error": "red"}


def plan_as_dict(plan: Plan) -> dict[str, Any]:
    return {
        "pipeline": plan.name,
        "source": plan.source,
        "deployable": plan.deployable,
        "mappedShare": round(plan.mapped_share, 4),
        "stages": [[activity.id for activity in stage] for stage in plan.stages],
        "schedule": plan.schedule.expression if plan.schedule else None,
        "runtimeParameters": [p.lstrip("*") for p in plan.runtime_parameters],
        "objects": [o.as_dict() for o in plan.objects],
        "errors": plan.errors,
    }


def _summary(plan: Plan) -> str:
    mapped = sum(o.status == MAPPED for o in plan.objects)
    verdict = "can be deployed" if plan.deployable else "cannot be deployed"
    return f"{plan.source}: pipeline '{plan.name}' {verdict}; {mapped} of {len(plan.objects)} objects mapped"


def _print_report(plan: Plan, console: Console) -> None:
    table = Table(title=f"{plan.source} -> pipeline-{plan.name}", show_lines=False)
    for column in ("id", "type", "status", "becomes / reason", "fields applied"):
        table.add_column(column, overflow="fold")
    for report in plan.objects:
        style = _STATUS_STYLE.get(report.status, "")
        detail = report.target if report.status == MAPPED else report.reason
        if report.status == MAPPED and report.reason:
            detail = f"{detail} (note: {report.reason})"
        table.add_row(escape(report.id), escape(report.type), f"[{style}]{report.status}[/{style}]", escape(detail),
                      escape(", ".join(report.fields.applied)))
    console.print(table)
    skipped = Table(title="Fields not applied", show_lines=False)
    for column in ("id", "field", "why"):
        skipped.add_column(column, overflow="fold")
    for report in plan.objects:
        for key, reason in report.fields.not_applied:
            skipped.add_row(escape(report.id), escape(key), escape(reason))
    if skipped.rows:
        console.print(skipped)
    if plan.stages:
        order = " -> ".join("[" + ", ".join(a.id for a in stage) + "]" for stage in plan.stages)
        console.print(f"Order: {order}", markup=False)
    if plan.runtime_parameters:
        names = ", ".join(p.lstrip("*") for p in plan.runtime_parameters)
        console.print(f"Parameters given when a run starts (input 'parameters'): {names}", markup=False)


def write_asl(plan: Plan, out: Path, *, account: str, region: str) -> None:
    """Synthesize the state machine of this one pipeline and write its Amazon States Language definition."""
    from datapipe.importer.asl import pipeline_definition  # the CDK is imported only when asked for

    out.write_text(json.dumps(pipeline_definition(plan, account=account, region=region), indent=2) + "\n")


@click.command("import")
@click.argument("definition", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--values", "values_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A values file ({\"values\": {...}}) for the definition's parameters.")
@click.option("--parameters", "parameters_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A parameters file, when the parameters are not in the definition.")
@click.option("--report", "show_report", is_flag=True, help="List every object with its mapping or the reason.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--asl", "asl_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the state machine definition (Amazon States Language) to this file.")
@click.option("--account", default="123456789012", show_default=True, help="Account id used in ARNs of --asl.")
@click.option("--region", default="us-east-1", show_default=True, help="Region used in ARNs of --asl.")
def import_command(
    definition: Path,
    values_path: Path | None,
    parameters_path: Path | None,
    show_report: bool,
    as_json: bool,
    asl_out: Path | None,
    account: str,
    region: str,
) -> None:
    """Read a Data Pipeline definition and report what each object becomes; exit 1 if it cannot be deployed."""
    plan = import_file(definition, values_path=values_path, parameters_path=parameters_path)
    if asl_out is not None:
        if not plan.deployable:
            raise DatapipeError(f"--asl: {_summary(plan)}; see the errors with --report", exit_code=1)
        write_asl(plan, asl_out, account=account, region=region)
    if as_json:
        click.echo(json.dumps(plan_as_dict(plan), indent=2))
    else:
        console = Console(soft_wrap=True)
        if show_report:
            _print_report(plan, console)
        click.echo(_summary(plan))
        for error in plan.errors:
            click.echo(f"  error: {error}")
        if not show_report:
            for report in plan.objects:
                if report.status == "unsupported":
                    click.echo(f"  unsupported: {report.id} ({report.type}): {report.reason}")
        if asl_out is not None:
            click.echo(f"Wrote the state machine definition to {asl_out}")
    if not plan.deployable:
        raise SystemExit(1)
