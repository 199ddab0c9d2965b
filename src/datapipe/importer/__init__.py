"""Import AWS Data Pipeline definitions: read, validate, map expressions, plan the workflow.

`import_file(path)` runs the whole chain and returns the plan, whose `objects` say what each object became and
whose `errors` say what stops it from being deployed.
"""

from __future__ import annotations

from pathlib import Path

from datapipe.importer.model import build_model
from datapipe.importer.plan import Plan, PlanOptions, make_plan
from datapipe.importer.reader import read_definition

__all__ = ["Plan", "PlanOptions", "companion_values", "import_file"]


def companion_values(definition: Path) -> Path | None:
    """`<name>.values.json` next to a definition, the values file the pipelines stack deploys it with."""
    candidate = definition.with_name(f"{definition.stem}.values.json")
    return candidate if candidate.is_file() else None


def import_file(
    path: Path,
    *,
    values_path: Path | None = None,
    parameters_path: Path | None = None,
    options: PlanOptions | None = None,
    name: str | None = None,
) -> Plan:
    raw = read_definition(path, values_path=values_path, parameters_path=parameters_path)
    return make_plan(build_model(raw), options=options, name=name)
