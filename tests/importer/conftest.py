"""Fixtures of the importer tests: where the Data Pipeline samples are, and a writer of small definitions."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datapipe.importer import Plan, import_file

# The samples sit beside the checkout (shared/corpus); tests that need them fail when they are absent in CI, and skip
# saying so elsewhere (a checkout on its own).
CORPUS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "data-pipeline-samples"
COMPANION_NAMES = {"values.json", "parameters.json", "example-parameters.json"}


def samples_absent() -> None:
    """Stop a test that needs the samples: a failure when CI=true, a skip naming where they were looked for."""
    reason = f"the Data Pipeline samples are not at {CORPUS_DIR}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def corpus_definitions() -> list[Path]:
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.rglob("*.json") if p.name not in COMPANION_NAMES)


def companions(definition: Path) -> dict[str, Path | None]:
    """The values and parameters files that sit next to a sample, as the samples ship them."""
    folder = definition.parent
    values = folder / "values.json" if (folder / "values.json").exists() else None
    if values is None and (folder / "example-parameters.json").exists():
        values = folder / "example-parameters.json"  # despite its name, a values file
    parameters = folder / "parameters.json" if (folder / "parameters.json").exists() else None
    return {"values_path": values, "parameters_path": parameters}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`corpus_definition`: each sample definition, by its folder and name."""
    if "corpus_definition" not in metafunc.fixturenames:
        return
    found = corpus_definitions()
    if found:
        metafunc.parametrize("corpus_definition", found, ids=[str(p.relative_to(CORPUS_DIR)) for p in found])
    else:  # one test that fails in CI, or skips, saying why
        metafunc.parametrize("corpus_definition", [None], ids=["samples-absent"])


def import_sample(definition: Path, *, name: str | None = None) -> Plan:
    found = companions(definition)
    return import_file(definition, values_path=found["values_path"], parameters_path=found["parameters_path"],
                       name=name)


# Values files of ours for samples that ship none: every parameter that fixes SQL or a database a value, every secret
# parameter a reference (`<sample folder>.values.json`).
CORPUS_VALUES_DIR = Path(__file__).resolve().parent / "corpus_values"


def import_with_values(definition: Path) -> Plan:
    """A sample imported with our values file when there is one (named after the sample's file, or its folder), else
    as it ships."""
    values = CORPUS_VALUES_DIR / f"{definition.stem}.values.json"
    if not values.is_file():
        values = CORPUS_VALUES_DIR / f"{definition.parent.name}.values.json"
    return import_file(definition, values_path=values) if values.is_file() else import_sample(definition)


@pytest.fixture()
def write_definition(tmp_path: Path) -> Callable[..., Path]:
    """Write a definition (objects form) and return its path; `text=` writes the text as it is."""

    def write(objects: list[dict[str, Any]] | None = None, *, name: str = "pipeline.json", text: str | None = None,
              **sections: Any) -> Path:
        path = tmp_path / name
        path.write_text(text if text is not None else json.dumps({"objects": objects or [], **sections}))
        return path

    return write
