"""Data Pipeline expressions (`#{...}`) -> values known at import time, or parts resolved when the workflow runs.

What maps, and to what:
- `#{myParameter}`: its value (values file, else its default); with neither, the execution input's
  `parameters.myParameter`, checked when the run starts;
- `#{field}`, `#{input.directoryPath}`, `#{node.field}`: the field of this object, of a referenced object, or
  (in an alarm or precondition) of the object that uses it;
- `@scheduledStartTime` (and `node.@scheduledStartTime`): the run's time: the `scheduledStartTime` of the
  execution input (the schedule passes it), else the execution's start time; `@scheduledEndTime` is it plus the
  object's schedule period, `@actualStartTime` the execution's start;
- `format(time, 'pattern')` with only the padded fields YYYY/yyyy, MM, dd, HH, mm, ss of the run's time (and of its
  `midnight` or `firstOfMonth`), and `year(time)`: the run's time split into parts once per run (no function call);
- every other date function and Joda-Time pattern on the run's times: a tree of the expression (`datefunctions`),
  fixed here and evaluated once when the run starts by the run-values Lambda (`$.runtime.valueN`);
- every date function on dates known at import time (`makeDate(2024,1,31)`, `minusDays(makeDate(...), 1)`, ...),
  computed here with the same `datefunctions`;
- `parent.@id` (a run's parent is its object: the object's own id), `'text' + myList` (a list), `1 + 2 * 3` and the
  other mathematical functions on whole numbers known here.
What has no value is reported with its reason; nothing is passed through unevaluated.

Hostile definitions end in a problem on the object and field, never in a traceback or a long wait: functions nest
at most `MAX_NESTING` deep, references at most `MAX_REFERENCE_DEPTH` deep, each field is evaluated once per object
(so fields that refer to each other many times cost their number, not the number of paths through them), and a value
may expand to at most `MAX_EXPANDED_LENGTH` characters. Dates stay within years 1 to 9999.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from datapipe import datefunctions
from datapipe.datefunctions import ExpressionError
from datapipe.importer.model import Pipeline, PipelineObject
from datapipe.importer.reader import Problem, Ref
from datapipe.importer.secrets import secret_reference

MAX_NESTING = 32  # functions inside functions; real definitions use three or four
MAX_REFERENCE_DEPTH = 20  # a field that refers to a field that refers to ...
MAX_EXPANDED_LENGTH = 256 * 1024  # Step Functions' limit on a task's input: no longer value can reach a task
MAX_NUMBER_DIGITS = 18

RUN_PATH = "$.run"  # where the workflow keeps the parts of the run's time
PARAMETERS_PATH = "$.parameters"  # where the execution input carries parameter values
RUN_VALUES_PATH = "$.runtime"  # where the run-values Lambda puts the values of expressions on the run's times
# The run-values Lambda's request (the trees' JSON) and its answer each take at most this much of the 256 KiB that a
# state's data may hold, so that a run never fails for their size.
MAX_RUN_VALUES_LENGTH = 64 * 1024


@dataclass(frozen=True)
class RuntimePath:
    """A value read from the execution state when the workflow runs."""

    path: str


@dataclass(frozen=True)
class Secret:
    """A secret parameter (`#{*myPassword}`): only its reference is known; the consumer reads the value at run time.

    `reference` is a Secrets Manager secret ARN or name, or `ssm:<SecureString parameter name>`.
    """

    parameter: str  # the id, with its '*'
    reference: str

    @property
    def variable(self) -> str:
        """The environment variable that carries the value to the command."""
        return self.parameter.lstrip("*")


Part = Union[str, RuntimePath, Secret]  # noqa: UP007 (a runtime alias, not only an annotation)


@dataclass(frozen=True)
class Text:
    """A field's value: literal text and parts resolved at run time, in order."""

    parts: tuple[Part, ...] = ()

    @staticmethod
    def of(*parts: Part) -> Text:
        merged: list[Part] = []
        pieces: list[str] = []  # consecutive literal text, joined once (adding one by one is quadratic)
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            if pieces and "".join(pieces):
                merged.append("".join(pieces))
            pieces = []
            merged.append(part)
        if pieces and "".join(pieces):
            merged.append("".join(pieces))
        return Text(tuple(merged))

    @property
    def length(self) -> int:
        """Characters, counting each part resolved at run time as one."""
        return sum(len(p) if isinstance(p, str) else 1 for p in self.parts)

    @property
    def is_static(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def static(self) -> str:
        """The text; only for static values."""
        return "".join(p for p in self.parts if isinstance(p, str))

    def __add__(self, other: Text) -> Text:
        return Text.of(*self.parts, *other.parts)

    def describe(self) -> str:
        return "".join(p if isinstance(p, str) else "{" + _describe_part(p) + "}" for p in self.parts)

    def runtime_paths(self) -> list[str]:
        return [p.path for p in self.parts if isinstance(p, RuntimePath)]

    @property
    def secrets(self) -> list[Secret]:
        return [p for p in self.parts if isinstance(p, Secret)]


def _describe_part(part: RuntimePath | Secret) -> str:
    return part.path if isinstance(part, RuntimePath) else f"secret {part.parameter}"


class Unmappable(Exception):
    """An expression that has no execution-time equivalent."""


_COMPONENTS = ("year", "month", "day", "hour", "minute", "second")


@dataclass(frozen=True)
class RunTime:
    """A date-time known only when the workflow runs: its tree for the run-values Lambda, and its zero-padded
    components when the run's split time gives them (the scheduled start, its midnight or first of the month)."""

    tree: Any
    components: tuple[tuple[str, Part], ...] | None = None

    @staticmethod
    def scheduled_start() -> RunTime:
        return RunTime({"time": "scheduledStartTime"},
                       tuple((name, RuntimePath(f"{RUN_PATH}.{name}")) for name in _COMPONENTS))

    def get(self, name: str) -> Part | None:
        return dict(self.components)[name] if self.components is not None else None

    def apply(self, function: str, *arguments: int, **parts: str) -> RunTime:
        """The date a function gives; `parts` says which components change, when it keeps the others."""
        tree = {"function": function, "arguments": [self.tree, *arguments]}
        if self.components is None or (not parts and function not in ("midnight", "firstOfMonth")):
            return RunTime(tree)
        return RunTime(tree, tuple((name, parts.get(name, part)) for name, part in self.components))


Evaluated = Union[Text, datetime, RunTime, int, list[Text]]  # noqa: UP007


@dataclass
class Scope:
    obj: PipelineObject
    node: PipelineObject | None = None  # the object that refers to an alarm or precondition
    depth: int = 0


# ----------------------------------------------------------------------------------------------------------------------
# Parsing


_TOKEN = re.compile(
    r"""\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<number>\d+)"""
    r"|(?P<name>\*?@?[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[(),.+@*/^-]))"
)


_BLANK_END = re.compile(r"\s*\Z")


def shown(expression: str, limit: int = 60) -> str:
    """An expression as a message quotes it: `#{...}`, shortened when long."""
    text = expression if len(expression) <= limit else expression[: limit - 3] + "..."
    return "'#{" + text + "}'"


def _tokens(expression: str) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression) and not _BLANK_END.match(expression, pos):
        match = _TOKEN.match(expression, pos)
        if not match:
            raise Unmappable(f"cannot read the expression near '{expression[pos:pos + 12]}'")
        kind = match.lastgroup or ""
        result.append((kind, match.group(kind)))
        pos = match.end()
    return result


@dataclass
class _Call:
    name: str
    args: list[_Node]


@dataclass
class _Path:
    names: list[str]


@dataclass
class _Literal:
    value: str | int


@dataclass
class _Concat:
    items: list[_Node]


@dataclass
class _Arithmetic:
    operator: str  # - * / ^ (and + in a chain with -)
    left: _Node
    right: _Node


_Node = Union[_Call, _Path, _Literal, _Concat, _Arithmetic]  # noqa: UP007


class _Parser:
    def __init__(self, expression: str) -> None:
        self.tokens = _tokens(expression)
        self.pos = 0
        self.nesting = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise Unmappable(f"expected '{value}' but found '{token[1] or 'the end'}'")
        self.pos += 1
        return token

    def parse(self) -> _Node:
        node = self.concat()
        if self.peek()[0] != "end":
            raise Unmappable(f"unexpected '{self.peek()[1]}'")
        return node

    def concat(self) -> _Node:
        """`a + b + ...` (text joined, or numbers added); with a `-`, the chain is arithmetic from the left."""
        items = [self.product()]
        operators: list[str] = []
        while self.peek()[1] in ("+", "-"):
            operators.append(self.take()[1])
            items.append(self.product())
        if "-" not in operators:
            return items[0] if len(items) == 1 else _Concat(items)
        node = items[0]
        for operator, item in zip(operators, items[1:], strict=True):
            node = _Arithmetic(operator, node, item)
        return node

    def product(self) -> _Node:
        node = self.power()
        while self.peek()[1] in ("*", "/"):
            operator = self.take()[1]
            node = _Arithmetic(operator, node, self.power())
        return node

    def power(self) -> _Node:
        base = self.unary()
        if self.peek()[1] != "^":
            return base
        self.take("^")
        self.enter()
        exponent = self.power()  # right to left, as in arithmetic
        self.nesting -= 1
        return _Arithmetic("^", base, exponent)

    def unary(self) -> _Node:
        if self.peek()[1] != "-":
            return self.term()
        self.take("-")
        self.enter()
        operand = self.unary()
        self.nesting -= 1
        if isinstance(operand, _Literal) and isinstance(operand.value, int):
            return _Literal(-operand.value)
        return _Arithmetic("-", _Literal(0), operand)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise Unmappable(f"functions are nested deeper than {MAX_NESTING} levels")

    def term(self) -> _Node:
        kind, value = self.take()
        if (kind, value) == ("op", "("):  # grouping: (1 + 2) * 3
            self.enter()
            inner = self.concat()
            self.take(")")
            self.nesting -= 1
            return inner
        if kind == "string":
            return _Literal(re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "number":
            if len(value) > MAX_NUMBER_DIGITS:
                raise Unmappable(f"the number {value[:12]}... has more than {MAX_NUMBER_DIGITS} digits")
            return _Literal(int(value))
        if kind == "op" and value == "@":  # "@ name" written apart
            kind, value = "name", "@" + self.take()[1]
        if kind != "name":
            raise Unmappable(f"unexpected '{value or 'end'}'")
        if self.peek()[1] == "(":
            self.take("(")
            self.enter()
            args: list[_Node] = []
            while self.peek()[1] != ")":
                args.append(self.concat())
                if self.peek()[1] == ",":
                    self.take(",")
                elif self.peek()[1] != ")":
                    raise Unmappable(f"expected ',' or ')' in the arguments of {value}")
            self.take(")")
            self.nesting -= 1
            return _Call(value, args)
        names = [value]
        while self.peek()[1] == ".":
            self.take(".")
            nxt = self.take()[1]
            if nxt == "@":
                nxt = "@" + self.take()[1]
            names.append(nxt)
        return _Path(names)


# ----------------------------------------------------------------------------------------------------------------------
# Evaluation

_QUOTED_OR_END = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\}""")  # a brace in quotes ends nothing


def _expressions(value: str) -> list[tuple[int, int, str]]:
    """Each `#{...}` of a value: (start, end, the expression), found in one pass; a `}` inside quotes is text."""
    found: list[tuple[int, int, str]] = []
    start = value.find("#{")
    while start >= 0:
        pos = start + 2
        while True:
            match = _QUOTED_OR_END.search(value, pos)
            if match is None:
                raise Unmappable("an expression '#{' is not closed with '}'")
            pos = match.end()
            if match.group() == "}":
                break
        found.append((start, pos, value[start + 2 : pos - 1]))
        start = value.find("#{", pos)
    return found


_PADDED_FIELDS = {
    "YYYY": "year", "yyyy": "year", "MM": "month", "dd": "day", "HH": "hour", "mm": "minute", "ss": "second"
}


@dataclass
class Evaluator:
    pipeline: Pipeline
    problems: list[Problem] = field(default_factory=list)
    runtime_parameters: set[str] = field(default_factory=set)
    uses_run_time: bool = False
    # name -> tree of each expression on the run's times that the run-values Lambda evaluates when a run starts
    run_expressions: dict[str, Any] = field(default_factory=dict)
    _run_value_names: dict[str, str] = field(default_factory=dict)  # a tree's JSON text -> its name
    _run_values_sizes: list[int] = field(default_factory=lambda: [0, 0])  # the trees' JSON, the longest answer
    # (object, name, node, secrets allowed) -> the value of a name there, or why it has none: each is evaluated once
    _known: dict[tuple[str, str, str | None, bool], Evaluated | Unmappable] = field(default_factory=dict)
    _evaluating: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    _secrets_allowed: bool = False

    # -- public -------------------------------------------------------------------------------------------------------

    def field_texts(
        self, obj: PipelineObject, key: str, *, node: PipelineObject | None = None, secrets: bool = False
    ) -> list[Text] | None:
        """Every value of a text field, evaluated; None (and a reported problem) when one cannot be mapped.

        Secret parameters may appear only where `secrets` says so: shell commands, which read them at run time.
        """
        result: list[Text] = []
        self._secrets_allowed = secrets
        try:
            for value in obj.fields.get(key, []):
                if isinstance(value, Ref):
                    continue
                result.extend(self.expand(value, Scope(obj, node)))
        except Unmappable as error:
            self.problems.append(Problem(obj.id, key, str(error)))
            return None
        finally:
            self._secrets_allowed = False
        return result

    def field_text(
        self, obj: PipelineObject, key: str, *, node: PipelineObject | None = None, secrets: bool = False
    ) -> Text | None:
        texts = self.field_texts(obj, key, node=node, secrets=secrets)
        return texts[0] if texts else None

    def static_field(self, obj: PipelineObject, key: str, *, purpose: str) -> str | None:
        """A field that must be known at import time (it shapes the deployed resources)."""
        text = self.field_text(obj, key)
        if text is None:
            return None
        if not text.is_static:
            self.problems.append(
                Problem(obj.id, key, f"must be known at import time ({purpose}); give its parameters a value with "
                        "--values or a default")
            )
            return None
        return text.static

    # -- evaluation ---------------------------------------------------------------------------------------------------

    def expand(self, value: str, scope: Scope) -> list[Text]:
        """A string with expressions -> one Text (or several, when it is exactly one list-valued expression)."""
        if "#{" not in value:
            return [Text.of(value)]
        found = _expressions(value)
        if len(found) == 1 and found[0][:2] == (0, len(value)):
            result = self._evaluate(found[0][2], scope)
            if isinstance(result, list):
                return result
            return [self._as_text(result)]
        parts: list[Part] = []
        pos = 0
        length = 0
        for start, end, expression in found:
            parts.append(value[pos:start])
            result = self._evaluate(expression, scope)
            if isinstance(result, list):
                if len(result) != 1:
                    raise Unmappable(f"{shown(expression)} is a list and cannot sit inside other text")
                result = result[0]
            text = self._as_text(result)
            length += start - pos + text.length
            if length > MAX_EXPANDED_LENGTH:
                raise Unmappable(f"expands to more than {MAX_EXPANDED_LENGTH} characters")
            parts.extend(text.parts)
            pos = end
        parts.append(value[pos:])
        return [Text.of(*parts)]

    def _evaluate(self, expression: str, scope: Scope) -> Evaluated:
        if scope.depth > MAX_REFERENCE_DEPTH:
            raise Unmappable(f"{shown(expression)}: references are nested deeper than {MAX_REFERENCE_DEPTH} levels")
        try:
            node = _Parser(expression).parse()
        except Unmappable as error:
            raise Unmappable(f"{shown(expression)}: {error}") from None
        try:
            return self._node(node, scope)
        except Unmappable as error:
            message = str(error)
            if message.startswith("'#{"):
                raise
            raise Unmappable(f"{shown(expression)} cannot be mapped: {message}") from None

    def _node(self, node: _Node, scope: Scope) -> Evaluated:
        if isinstance(node, _Literal):
            return node.value if isinstance(node.value, int) else Text.of(node.value)
        if isinstance(node, _Concat):
            return self._concat([self._node(item, scope) for item in node.items])
        if isinstance(node, _Arithmetic):
            return _arithmetic(node.operator, self._number(self._node(node.left, scope), node.operator),
                               self._number(self._node(node.right, scope), node.operator))
        if isinstance(node, _Path):
            return self._path(node.names, scope)
        return self._call(node, scope)

    def _single(self, value: Evaluated) -> Text | datetime | RunTime | int:
        if isinstance(value, list):
            if len(value) != 1:
                raise Unmappable("a list cannot be combined with other values")
            return value[0]
        return value

    def _path(self, names: list[str], scope: Scope) -> Evaluated:
        head, rest = names[0], names[1:]
        obj = scope.obj
        if head == "node":
            if scope.node is None:
                raise Unmappable("'node' is only known inside an alarm or precondition")
            return self._path(rest, Scope(scope.node, None, scope.depth + 1)) if rest else Text.of(scope.node.id)
        if head == "parent" and rest:
            # A run is an instance of its object, which is the instance's parent: `#{parent.@id}` is the object's id.
            return self._path(rest, Scope(obj, scope.node, scope.depth + 1))
        if head.startswith("@"):
            if rest:
                raise Unmappable(f"'{head}' has no fields")
            return self._runtime_field(head, obj)
        if rest:
            target = obj.ref(head)
            if target is None or target not in self.pipeline.objects:
                raise Unmappable(f"'{head}' is not a reference field of {obj.id}")
            return self._path(rest, Scope(self.pipeline.objects[target], scope.node, scope.depth + 1))
        return self._name(head, scope)

    def _name(self, head: str, scope: Scope) -> Evaluated:
        """A field or parameter name in `scope`, evaluated once; a name met again while it is evaluated is a cycle."""
        key = (scope.obj.id, head, scope.node.id if scope.node is not None else None, self._secrets_allowed)
        known = self._known.get(key)
        if isinstance(known, Unmappable):
            raise Unmappable(str(known))
        if known is not None:
            return known
        if key in self._evaluating:
            cycle = [name for _, name, _, _ in self._evaluating[self._evaluating.index(key) :]]
            raise Unmappable(f"'{head}' refers to itself: {' -> '.join([*cycle[:10], head])}")
        self._evaluating.append(key)
        try:
            value = self._name_value(head, scope)
        except Unmappable as error:
            self._known[key] = error
            raise
        finally:
            self._evaluating.pop()
        if (value.length if isinstance(value, Text) else 0) > MAX_EXPANDED_LENGTH or (
            isinstance(value, list) and sum(t.length for t in value) > MAX_EXPANDED_LENGTH
        ):
            self._known[key] = Unmappable(f"'{head}' expands to more than {MAX_EXPANDED_LENGTH} characters")
            raise Unmappable(str(self._known[key]))
        self._known[key] = value
        return value

    def _name_value(self, head: str, scope: Scope) -> Evaluated:
        obj = scope.obj
        if head in obj.fields:
            return self._field(obj, head, scope)
        parameter_id = head
        parameter = self.pipeline.parameters.get(parameter_id)
        if parameter is None:
            raise Unmappable(f"'{head}' is neither a field of {obj.id} nor a declared parameter")
        given = self.pipeline.values.get(parameter_id) or parameter.default
        if parameter_id.startswith("*"):
            return self._secret(parameter_id, given)
        if given:
            texts = [t for value in given for t in self.expand(value, Scope(obj, scope.node, scope.depth + 1))]
            return texts if parameter.is_array or len(texts) > 1 else texts[0]
        self.runtime_parameters.add(parameter_id)
        return Text.of(RuntimePath(f"{PARAMETERS_PATH}.{_path_key(parameter_id)}"))

    def _secret(self, parameter_id: str, given: list[str] | None) -> Text:
        variable = parameter_id.lstrip("*")
        if not self._secrets_allowed:
            raise Unmappable(f"the secret {parameter_id} can be used only in the command of a shell activity, which "
                             f"reads it at run time as the variable ${variable}")
        if not given:
            raise Unmappable(f"the secret {parameter_id} has no reference: give 'secretsmanager:<name>', a Secrets "
                             "Manager secret ARN or 'ssm:<SecureString name>' with --values (a secret never comes "
                             "from the execution input)")
        reference = secret_reference(given[0])
        if reference is None:  # the model reported it; the value itself is never repeated
            raise Unmappable(f"the secret {parameter_id} has a value that is not a reference")
        return Text.of(Secret(parameter_id, reference))

    def _field(self, obj: PipelineObject, key: str, scope: Scope) -> Evaluated:
        values = obj.fields[key]
        texts: list[Text] = []
        for value in values:
            if isinstance(value, Ref):
                texts.append(Text.of(value.target))
            else:
                texts.extend(self.expand(value, Scope(obj, scope.node, scope.depth + 1)))
        return texts if len(texts) != 1 else texts[0]

    def _number(self, value: Evaluated, operator: str) -> int:
        single = self._single(value)
        if isinstance(single, Text) and not single.is_static:
            raise Unmappable(f"'{operator}' needs numbers known at import time")
        if isinstance(single, datetime | RunTime):
            raise Unmappable(f"'{operator}' needs numbers; use the date functions on dates")
        return _int_arg(single, f"'{operator}'")

    def _concat(self, items: list[Evaluated]) -> Evaluated:
        """`a + b`: numbers added, else text joined; with a list, the list of each of its values joined with the rest
        (`'x' + myList`)."""
        if all(isinstance(item, int) for item in items):
            return _checked_number(sum(typing.cast(list[int], items)))
        lists = [item for item in items if isinstance(item, list) and len(item) != 1]
        if len(lists) > 1:
            raise Unmappable("only one of the values added together may be a list")
        rows = len(lists[0]) if lists else 1
        columns = [item if isinstance(item, list) and len(item) != 1 else [self._as_text(self._single(item))] * rows
                   for item in items]
        if sum(text.length for column in columns for text in column) > MAX_EXPANDED_LENGTH:
            raise Unmappable(f"expands to more than {MAX_EXPANDED_LENGTH} characters")
        joined = [Text.of(*(part for column in columns for part in column[row].parts)) for row in range(rows)]
        return joined if lists else joined[0]

    def _runtime_field(self, name: str, obj: PipelineObject) -> Evaluated:
        if name == "@scheduledStartTime":
            self.uses_run_time = True
            return RunTime.scheduled_start()
        if name == "@actualStartTime":
            self.uses_run_time = True
            return RunTime({"time": "actualStartTime"})
        if name == "@scheduledEndTime":
            self.uses_run_time = True
            function, amount = self._schedule_period(obj)
            return RunTime.scheduled_start().apply(function, amount)
        if name == "@id":
            return Text.of(obj.id)
        if name == "@pipelineId":
            return Text.of(RuntimePath("$$.StateMachine.Name"))
        raise Unmappable(f"the runtime field '{name}' has no equivalent in a workflow run")

    def _schedule_period(self, obj: PipelineObject) -> tuple[str, int]:
        """The shift from a run's scheduled start to its end: the period of the object's schedule."""
        schedule_id = obj.ref("schedule")
        schedule = self.pipeline.objects.get(schedule_id) if schedule_id else None
        if schedule is None:
            raise Unmappable(f"@scheduledEndTime needs a schedule on {obj.id}, whose period ends each run")
        period = self._name("period", Scope(schedule)) if "period" in schedule.fields else None
        shift = datefunctions.period_shift(period.static) if isinstance(period, Text) and period.is_static else None
        if shift is None:
            raise Unmappable(f"@scheduledEndTime needs a period such as '1 day' on the schedule {schedule.id}")
        return shift

    def _call(self, call: _Call, scope: Scope) -> Evaluated:
        name = call.name
        if name not in datefunctions.FUNCTIONS:
            raise Unmappable(f"unknown function '{name}'")
        args = [self._single(self._node(arg, scope)) for arg in call.args]
        if name == "format":
            if len(args) != 2 or not isinstance(args[1], Text) or not args[1].is_static:
                raise Unmappable("format takes a date and a literal pattern")
            return self._format(args[0], args[1].static)
        if not any(isinstance(arg, RunTime) for arg in args):
            try:
                value = datefunctions.call(name, [self._static_argument(arg, name) for arg in args])
            except ExpressionError as error:
                raise Unmappable(str(error)) from None
            return Text.of(value) if isinstance(value, str) else value
        when = args[0]
        if not isinstance(when, RunTime) or len(args) != (2 if name in datefunctions.SHIFTS else 1):
            raise Unmappable(f"{name} takes a date" + (" and a whole number" if name in datefunctions.SHIFTS else ""))
        if name in datefunctions.SHIFTS:
            amount = _int_arg(args[1], name)
            try:
                datefunctions.check_shift(name, amount)
            except ExpressionError as error:
                raise Unmappable(str(error)) from None
            return when.apply(name, amount)
        if name == "midnight":
            return when.apply(name, hour="00", minute="00", second="00")
        if name == "firstOfMonth":
            return when.apply(name, day="01")
        if name in datefunctions.DATE_RESULTS:
            return when.apply(name)
        year = when.get("year")
        if name == "year" and year is not None:
            return Text.of(year)  # four digits already, as years from 1000 on are
        return self.run_value({"function": name, "arguments": [when.tree]})

    def _static_argument(self, value: Text | datetime | RunTime | int, function: str) -> datefunctions.Value:
        if isinstance(value, datetime | int):
            return value
        if isinstance(value, Text) and not value.is_static:
            raise Unmappable(f"{function} needs dates and whole numbers known at import time or from the run's time")
        return _int_arg(value, function)

    def _format(self, when: Text | datetime | RunTime | int, pattern: str) -> Text:
        try:
            datefunctions.check_pattern(pattern)
            if isinstance(when, datetime):
                return Text.of(datefunctions.format_date(when, pattern))
        except ExpressionError as error:
            raise Unmappable(str(error)) from None
        if not isinstance(when, RunTime):
            raise Unmappable("format needs a date as its first argument")
        groups = datefunctions.pattern_groups(pattern)
        if when.components is None or any(kind == "letters" and text not in _PADDED_FIELDS for kind, text in groups):
            return self.run_value({"function": "format", "arguments": [when.tree, pattern]})
        parts = dict(when.components)
        return Text.of(*(text if kind == "literal" else parts[_PADDED_FIELDS[text]] for kind, text in groups))

    def run_value(self, tree: Any) -> Text:
        """A value the run-values Lambda computes from a tree of datapipe.datefunctions when the run starts; the same
        expression is evaluated once."""
        self.uses_run_time = True
        key = json.dumps(tree, separators=(",", ":"))
        name = self._run_value_names.get(key)
        if name is None:
            request, answer = self._run_values_sizes
            request, answer = request + len(key) + 16, answer + datefunctions.longest_text(tree) + 16
            if max(request, answer) > MAX_RUN_VALUES_LENGTH:
                raise Unmappable(f"the pipeline's expressions on the run's times pass {MAX_RUN_VALUES_LENGTH} "
                                 "characters (of the 256 KiB a run's state may hold)")
            self._run_values_sizes[:] = [request, answer]
            name = self._run_value_names[key] = f"value{len(self._run_value_names) + 1}"
            self.run_expressions[name] = tree
        return Text.of(RuntimePath(f"{RUN_VALUES_PATH}.{name}"))

    def _as_text(self, value: Text | datetime | RunTime | int) -> Text:
        if isinstance(value, Text):
            return value
        if isinstance(value, int):
            return Text.of(str(value))
        return self._format(value, datefunctions.DEFAULT_PATTERN)


def _checked_number(value: int) -> int:
    if abs(value) >= 10**MAX_NUMBER_DIGITS:
        raise Unmappable(f"a result has more than {MAX_NUMBER_DIGITS} digits")
    return value


def _arithmetic(operator: str, left: int, right: int) -> int | Text:
    """Data Pipeline's mathematical functions on whole numbers: division truncates, `^` gives a decimal (`4.0`)."""
    if operator == "+":
        return _checked_number(left + right)
    if operator == "-":
        return _checked_number(left - right)
    if operator == "*":
        return _checked_number(left * right)
    if operator == "/":
        if right == 0:
            raise Unmappable("division by zero")
        quotient = abs(left) // abs(right)  # toward zero, as Java divides
        return quotient if (left < 0) == (right < 0) else -quotient
    if abs(right) > 64 or (right < 0 and left == 0):
        raise Unmappable(f"{left} ^ {right} is not a number a definition means")
    result = float(left) ** right
    if not 1e-3 <= abs(result) < 1e7 and result != 0:
        raise Unmappable(f"{left} ^ {right} is outside the decimals written without an exponent")
    return Text.of(repr(result))


def _path_key(name: str) -> str:
    """A parameter id as a JSONPath key (`*mySecret` cannot be a dotted key)."""
    return name.lstrip("*") if name.startswith("*") else name


def _int_arg(value: object, function: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, Text) and value.is_static and re.fullmatch(rf"\s*-?[0-9]{{1,{MAX_NUMBER_DIGITS}}}\s*",
                                                                    value.static):
        return int(value.static)
    raise Unmappable(f"{function} needs whole numbers known at import time")
