"""The validated model: objects with `parent`/Default inheritance applied, checked against the schema.

Every problem is collected (unknown types and fields, dangling or misdirected references, missing required
fields, inheritance and dependency cycles), each naming the object id and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapipe.importer import schema
from datapipe.importer.laxjson import printable
from datapipe.importer.reader import Parameter, Problem, RawDefinition, RawObject, Ref, Value
from datapipe.importer.secrets import SECRET_REFERENCE_HINT, secret_reference

DEFAULT_ID = "Default"


class ReadFields(dict[str, list[Value]]):
    """An object's fields that remember which keys were looked up (`read`): what the planner reads, it applies.

    The field accounting (`datapipe.importer.fields`) reports every field nobody read as not applied, so a planner
    that reads a field through the model is accounted for without doing anything more.
    """

    def __init__(self, values: dict[str, list[Value]]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> list[Value]:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)


@dataclass
class PipelineObject:
    id: str
    name: str
    type: str
    own: dict[str, list[Value]]
    fields: ReadFields  # own fields over inherited ones
    unapplied: dict[str, str] = field(default_factory=dict)  # field -> why a planner that read it did not apply it

    def not_applied(self, key: str, reason: str) -> None:
        """Say that a field was read but has no effect here, and why; the report lists it with the reason."""
        self.unapplied.setdefault(key, reason)

    @property
    def spec(self) -> schema.ObjectType | None:
        return schema.TYPES.get(self.type)

    @property
    def kind(self) -> str:
        spec = self.spec
        return spec.kind if spec else ("default" if self.id == DEFAULT_ID else "unknown")

    def text(self, key: str) -> str | None:
        values = self.fields.get(key, [])
        return values[0] if values and isinstance(values[0], str) else None

    def texts(self, key: str) -> list[str]:
        return [v for v in self.fields.get(key, []) if isinstance(v, str)]

    def refs(self, key: str) -> list[str]:
        return [v.target for v in self.fields.get(key, []) if isinstance(v, Ref)]

    def ref(self, key: str) -> str | None:
        targets = self.refs(key)
        return targets[0] if targets else None


@dataclass
class Pipeline:
    source: str
    objects: dict[str, PipelineObject]
    parameters: dict[str, Parameter]
    values: dict[str, list[str]]
    problems: list[Problem] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[PipelineObject]:
        return [o for o in self.objects.values() if o.kind == kind]

    def activity_dependencies(self) -> dict[str, list[str]]:
        """Activity id -> activities it waits for: its dependsOn, and the producers of the data it reads."""
        activities = {o.id: o for o in self.of_kind(schema.ACTIVITY)}
        producers: dict[str, list[str]] = {}
        for activity in activities.values():
            for node in activity.refs("output"):
                producers.setdefault(node, []).append(activity.id)
        result: dict[str, list[str]] = {}
        for activity in activities.values():
            wanted = [target for target in activity.refs("dependsOn") if target in activities]
            data_nodes = [t for t in activity.refs("dependsOn") if t not in activities] + activity.refs("input")
            for node in data_nodes:  # reading data means waiting for whatever writes it (not for itself)
                wanted.extend(p for p in producers.get(node, []) if p != activity.id)
            result[activity.id] = list(dict.fromkeys(wanted))
        return result


def build_model(raw: RawDefinition) -> Pipeline:
    problems = list(raw.problems)
    by_id: dict[str, RawObject] = {}
    for item in raw.objects:
        if item.id in by_id:
            problems.append(Problem(item.id, "id", "this id is used by more than one object"))
            continue
        by_id[item.id] = item
    resolved: dict[str, dict[str, list[Value]]] = {}
    for object_id in by_id:
        _inherit(object_id, by_id, resolved, problems)
    objects: dict[str, PipelineObject] = {}
    for raw_object in by_id.values():
        effective = resolved.get(raw_object.id, raw_object.fields)
        type_values = raw_object.fields.get("type") or effective.get("type") or []
        object_type = type_values[0] if type_values and isinstance(type_values[0], str) else ""
        objects[raw_object.id] = PipelineObject(
            raw_object.id, raw_object.name, object_type, raw_object.fields, ReadFields(effective)
        )
    pipeline = Pipeline(raw.source, objects, dict(raw.parameters), dict(raw.values), problems)
    for obj in objects.values():
        _check_object(obj, pipeline)
    _check_parameters(pipeline)
    _check_cycles(pipeline)
    for obj in objects.values():  # what validation looked at is not applied: only what the planner reads counts
        obj.fields.read.clear()
    return pipeline


def _parent_of(object_id: str, by_id: dict[str, RawObject]) -> str | None:
    """The object whose fields this one inherits: its `parent`, else Default."""
    parent_values = by_id[object_id].fields.get("parent", [])
    if parent_values:
        first = parent_values[0]
        return first.target if isinstance(first, Ref) and first.target in by_id else None
    return DEFAULT_ID if object_id != DEFAULT_ID and DEFAULT_ID in by_id else None


def _inherit(
    object_id: str,
    by_id: dict[str, RawObject],
    resolved: dict[str, dict[str, list[Value]]],
    problems: list[Problem],
) -> None:
    """Resolve the fields of `object_id` and of its ancestors, walking up the chain without recursion.

    Each object is resolved once (`resolved` keeps it), so a long chain costs its length, in any listing order.
    """
    chain: list[str] = []
    on_chain: dict[str, int] = {}
    current: str | None = object_id
    while current is not None and current not in resolved:
        if current in on_chain:  # the chain comes back to an object on it
            cycle = chain[on_chain[current] :]
            shown = " -> ".join([*cycle, current]) if len(cycle) <= 10 else f"{' -> '.join(cycle[:10])} -> ..."
            problems.append(Problem(chain[-1], "parent", f"inheritance cycle: {shown}"))
            resolved[chain[-1]] = dict(by_id[chain[-1]].fields)  # inherits nothing: the cycle is broken here
            chain.pop()
            break
        on_chain[current] = len(chain)
        chain.append(current)
        current = _parent_of(current, by_id)
    for child in reversed(chain):
        parent = _parent_of(child, by_id)
        inherited = resolved.get(parent, {}) if parent is not None else {}
        own = by_id[child].fields
        resolved[child] = {**{k: v for k, v in inherited.items() if k not in ("id", "name", "parent")}, **own}


def _check_object(obj: PipelineObject, pipeline: Pipeline) -> None:
    problems = pipeline.problems
    spec = obj.spec
    if obj.id == DEFAULT_ID and "type" not in obj.own:
        allowed = frozenset().union(*(t.fields for t in schema.TYPES.values()))
    elif not obj.type:
        problems.append(Problem(obj.id, "type", "every object needs a type"))
        return
    elif spec is None:
        problems.append(Problem(obj.id, "type", f"unknown type '{obj.type}'"))
        return
    else:
        allowed = spec.fields
    for key, values in obj.own.items():
        if key.startswith("@"):
            problems.append(Problem(obj.id, key, "runtime fields (starting with '@') are set by the service, not in "
                                    "a definition"))
            continue
        if key not in allowed and not schema.is_user_field(key):
            hint = " (user-defined fields start with 'my', e.g. 'myValue')"
            problems.append(Problem(obj.id, key, f"unknown field for {obj.type or 'Default'}{hint}"))
            continue
        _check_values(obj, key, values, pipeline)
    if spec is None:
        return
    for key in spec.required:
        if not obj.fields.get(key):
            problems.append(Problem(obj.id, key, f"required field of {obj.type} is missing"))
    for group in spec.one_of:
        if not any(obj.fields.get(key) for key in group):
            problems.append(Problem(obj.id, group[0], f"{obj.type} needs one of: {', '.join(group)}"))
    for key, kinds in spec.refs.items():
        for target in obj.refs(key):
            other = pipeline.objects.get(target)
            if other is not None and other.kind not in kinds and other.kind != "unknown":
                problems.append(
                    Problem(obj.id, key, f"refers to '{target}', {_article(other.kind)}; it must be "
                            f"{_article(' or '.join(kinds))}")
                )


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _check_values(obj: PipelineObject, key: str, values: list[Value], pipeline: Pipeline) -> None:
    problems = pipeline.problems
    if key not in schema.LIST_FIELDS and len(values) > 1 and not schema.is_user_field(key):
        problems.append(Problem(obj.id, key, f"takes one value, got {len(values)}"))
    for value in values:
        if isinstance(value, Ref):
            if value.target not in pipeline.objects:
                problems.append(Problem(obj.id, key, f"refers to '{value.target}', which is not defined"))
            elif key not in schema.REFERENCE_FIELDS and not schema.is_user_field(key):
                problems.append(Problem(obj.id, key, "takes text, not a reference"))
        elif key in schema.REFERENCE_FIELDS:
            problems.append(
                Problem(obj.id, key, f'must be a reference {{"ref": "<id>"}}, got text {printable(value)!r}'))


def _check_parameters(pipeline: Pipeline) -> None:
    for name in pipeline.values:
        if name not in pipeline.parameters:
            pipeline.problems.append(Problem("(values)", name, "a value for a parameter that is not declared"))
    for parameter in pipeline.parameters.values():
        if not schema.is_user_field(parameter.id.lstrip("*")):
            pipeline.problems.append(
                Problem(parameter.id, "id", "parameter ids start with 'my' (or '*my' for secrets), e.g. 'myInput'")
            )
        given = pipeline.values.get(parameter.id)
        if parameter.id.startswith("*"):
            for value in [*(given or []), *(parameter.default or [])]:
                if secret_reference(value) is None:  # never repeat the value: it may be the secret
                    pipeline.problems.append(Problem(parameter.id, "value", SECRET_REFERENCE_HINT))
                    break
        if given and parameter.allowed_values:
            for value in given:
                if value not in parameter.allowed_values:
                    allowed = ", ".join(parameter.allowed_values)
                    pipeline.problems.append(Problem(parameter.id, "value", f"{value!r} is not one of: {allowed}"))


def _check_cycles(pipeline: Pipeline) -> None:
    """Report each dependency cycle once; a depth-first walk with an explicit stack, as chains may be long."""
    graph = pipeline.activity_dependencies()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    reported: set[frozenset[str]] = set()
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        position = {root: 0}
        pending = [iter(graph.get(root, []))]
        state[root] = 1
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                done = path.pop()
                del position[done]
                state[done] = 2
                pending.pop()
                continue
            if state.get(nxt) == 1:
                cycle = path[position[nxt] :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    shown = cycle if len(cycle) <= 10 else [*cycle[:10], "..."]
                    text = " -> ".join([*shown, nxt])
                    pipeline.problems.append(Problem(cycle[0], "dependsOn", f"dependency cycle: {text}"))
            elif nxt not in state:
                state[nxt] = 1
                position[nxt] = len(path)
                path.append(nxt)
                pending.append(iter(graph.get(nxt, [])))
