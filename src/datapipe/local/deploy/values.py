"""Small conversions between template values and API parameters, shared by the evaluator and the resources."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def text(value: Any) -> str:
    """A template value as an API takes text (booleans as CloudFormation writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pick(source: Mapping[str, Any], keys: str) -> dict[str, Any]:
    """The entries of `source` named in the space-separated `keys` (CloudFormation and the API agree on them)."""
    return {key: source[key] for key in keys.split() if key in source}


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def tag_map(tags: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {tag["Key"]: tag["Value"] for tag in tags}


def tag_list(tags: Any) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tag_map(tags).items()]


def camel(value: Any, *, keep_values_of: frozenset[str] = frozenset({"Tags", "Parameters", "Options"})) -> Any:
    """CloudFormation's PascalCase keys -> the camelCase of the Batch/Step Functions APIs (user maps untouched)."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: item if key in keep_values_of else camel(item) for key, item in value.items()
        }
    return value
