"""Definition files -> raw objects, parameters and values, before any validation.

Both forms that people hold are read:
- the objects form (`{"objects": [{"id": ..., "type": ..., "field": "value" | {"ref": id} | [...]}], "parameters",
  "values"}`), where a repeated key or an array means a list;
- the API form (`{"pipelineObjects": [{"id", "name", "fields": [{"key", "stringValue" | "refValue"}]}],
  "parameterObjects": [{"id", "attributes": [{"key", "stringValue"}]}], "parameterValues": [{"id", "stringValue"}]}`).
Problems are collected, not raised, so that the user sees all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datapipe.errors import DatapipeError
from datapipe.importer.laxjson import JsonObject, loads, printable


@dataclass(frozen=True)
class Ref:
    """A reference to another object by id."""

    target: str


Value = str | Ref


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the definition, naming the object and field it is about."""

    object_id: str
    field: str
    message: str

    def __str__(self) -> str:
        where = printable(self.object_id) + (f".{printable(self.field)}" if self.field else "")
        return f"{where}: {printable(self.message, limit=None)}"  # one line, whatever the definition holds


@dataclass
class RawObject:
    id: str
    fields: dict[str, list[Value]] = field(default_factory=dict)

    @property
    def type(self) -> str | None:
        values = self.fields.get("type", [])
        return values[0] if values and isinstance(values[0], str) else None

    @property
    def name(self) -> str:
        values = self.fields.get("name", [])
        return values[0] if values and isinstance(values[0], str) else self.id


@dataclass
class Parameter:
    id: str
    type: str = "String"
    description: str = ""
    default: list[str] | None = None
    optional: bool = False
    is_array: bool = False
    allowed_values: list[str] = field(default_factory=list)


@dataclass
class RawDefinition:
    source: str
    objects: list[RawObject] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DatapipeError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise DatapipeError(f"{path} is not UTF-8 text") from None


def read_definition(
    path: Path, *, values_path: Path | None = None, parameters_path: Path | None = None
) -> RawDefinition:
    """Read a definition file and, optionally, a values file and a separate parameters file."""
    definition = parse_definition(read_text(path), source=path.name)
    if parameters_path is not None:
        extra = parse_definition(read_text(parameters_path), source=parameters_path.name)
        definition.parameters.update(extra.parameters)
        definition.values.update(extra.values)
        definition.problems.extend(extra.problems)
    if values_path is not None:
        extra = parse_definition(read_text(values_path), source=values_path.name)
        definition.values.update(extra.values)
        definition.problems.extend(extra.problems)
    return definition


def parse_definition(text: str, *, source: str = "<definition>") -> RawDefinition:
    document = loads(text, source=source)
    if not isinstance(document, JsonObject):
        raise DatapipeError(f"{source}: a definition must be a JSON object with 'objects'")
    known = {"objects", "pipelineObjects", "parameters", "parameterObjects", "values", "parameterValues", "metadata"}
    if not any(key in document for key in known - {"metadata"}):
        raise DatapipeError(
            f"{source}: no 'objects', 'parameters' or 'values' here; is this a Data Pipeline definition?"
        )
    definition = RawDefinition(source=source)
    for key in document.keys():  # noqa: SIM118 (a JsonObject, not a dict)
        if key not in known:
            definition.problems.append(Problem("(definition)", key, f"unknown top-level key in {source}"))
    for section in ("objects", "pipelineObjects"):
        for index, item in enumerate(_items(document, section)):
            raw = _read_object(item, index, definition.problems)
            if raw is not None:
                definition.objects.append(raw)
    for section in ("parameters", "parameterObjects"):
        for index, item in enumerate(_items(document, section)):
            parameter = _read_parameter(item, index, definition.problems)
            if parameter is not None:
                definition.parameters[parameter.id] = parameter
    _read_values(document, definition)
    return definition


def _items(document: JsonObject, section: str) -> list[Any]:
    items: list[Any] = []
    for value in document.get_all(section):
        items.extend(value if isinstance(value, list) else [value])
    return items


def _scalar(value: Any) -> str | None:
    """Numbers and booleans in a definition mean their text, as Data Pipeline stores every field as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _values_of(value: Any, *, object_id: str, key: str, problems: list[Problem]) -> list[Value]:
    if isinstance(value, list):
        result: list[Value] = []
        for item in value:
            result.extend(_values_of(item, object_id=object_id, key=key, problems=problems))
        return result
    if isinstance(value, JsonObject):
        target = value.get("ref")
        if isinstance(target, str) and value.keys() == ["ref"]:
            return [Ref(target)]
        problems.append(Problem(object_id, key, 'an object value must be a reference {"ref": "<id>"}'))
        return []
    text = _scalar(value)
    if text is None:
        problems.append(Problem(object_id, key, "null is not a value; leave the field out instead"))
        return []
    return [text]


def _entry_id(item: Any, where: str, what: str, problems: list[Problem]) -> str | None:
    """The id of list entry `where` (`objects[3]`), a `what`; None, with a problem, if it has none."""
    if not isinstance(item, JsonObject):
        problems.append(Problem(where, "", f"each {what} must be a JSON object"))
        return None
    entry_id = _scalar(item.get("id"))
    if not entry_id:
        problems.append(Problem(where, "id", f"every {what.rsplit(' ', 1)[-1]} needs an id"))
        return None
    return entry_id


def _read_object(item: Any, index: int, problems: list[Problem]) -> RawObject | None:
    object_id = _entry_id(item, f"objects[{index}]", "pipeline object", problems)
    if object_id is None:
        return None
    raw = RawObject(id=object_id)
    if "fields" in item:  # the API form
        name = _scalar(item.get("name"))
        if name is not None:
            raw.fields["name"] = [name]
        for entry in _items(item, "fields"):
            key = entry.get("key") if isinstance(entry, JsonObject) else None
            if not isinstance(key, str):
                problems.append(Problem(object_id, "fields", "each field needs a 'key'"))
                continue
            if "refValue" in entry:
                value: Value = Ref(str(entry.get("refValue")))
            elif "stringValue" in entry:
                value = _scalar(entry.get("stringValue")) or ""
            else:
                problems.append(Problem(object_id, key, "a field needs a 'stringValue' or a 'refValue'"))
                continue
            raw.fields.setdefault(key, []).append(value)
        return raw
    for key, value in item.pairs:
        if key == "id":
            continue
        raw.fields.setdefault(key, []).extend(_values_of(value, object_id=object_id, key=key, problems=problems))
    return raw


def _read_parameter(item: Any, index: int, problems: list[Problem]) -> Parameter | None:
    parameter_id = _entry_id(item, f"parameters[{index}]", "parameter", problems)
    if parameter_id is None:
        return None
    attributes: dict[str, list[str]] = {}
    if "attributes" in item:  # the API form
        for entry in _items(item, "attributes"):
            if isinstance(entry, JsonObject) and isinstance(entry.get("key"), str):
                attributes.setdefault(entry.get("key"), []).append(_scalar(entry.get("stringValue")) or "")
    else:
        for key, value in item.pairs:
            texts = _values_of(value, object_id=parameter_id, key=key, problems=problems)
            attributes.setdefault(key, []).extend(v for v in texts if isinstance(v, str))
    first = {key: values[0] for key, values in attributes.items() if values}
    return Parameter(
        id=parameter_id,
        type=first.get("type", "String"),
        description=first.get("description", ""),
        default=attributes.get("default"),
        optional=first.get("optional", "false").lower() == "true",
        is_array=first.get("isArray", "false").lower() == "true",
        allowed_values=attributes.get("allowedValues", []),
    )


def _read_values(document: JsonObject, definition: RawDefinition) -> None:
    for values in document.get_all("values"):
        if not isinstance(values, JsonObject):
            definition.problems.append(Problem("(values)", "", "'values' must be an object of parameter values"))
            continue
        for key, value in values.pairs:
            texts = _values_of(value, object_id="(values)", key=key, problems=definition.problems)
            definition.values.setdefault(key, []).extend(v for v in texts if isinstance(v, str))
    for entry in _items(document, "parameterValues"):  # the API form
        if isinstance(entry, JsonObject) and isinstance(entry.get("id"), str):
            definition.values.setdefault(entry.get("id"), []).append(_scalar(entry.get("stringValue")) or "")
        else:
            problem = Problem("(values)", "parameterValues", "each entry needs 'id' and 'stringValue'")
            definition.problems.append(problem)
