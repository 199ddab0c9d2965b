"""HiveCopyActivity: one Hive script, generated from the input and output data nodes, run as an EMR step.

The script declares an external table over each node (an S3DataNode's folder in the delimited text of its data
format; a DynamoDBDataNode through EMR's DynamoDB storage handler), then copies with
`INSERT OVERWRITE TABLE <output> SELECT * FROM <input>`, with `WHERE <filterSql>` when the definition gives one.

The columns are those of the input's data format (`column`, "name TYPE"), else of the output's; without any, a row is
the whole DynamoDB item as one `item map<string,string>` column (the form EMR documents for copies without a column
mapping). Everything the script holds is fixed at import: filterSql is definition text and may not depend on a
parameter given when the run starts (the run's time may appear: its parts are digits); names, types, paths and table
names are checked to be plain, so no value can end a quoted string or an identifier early.

With `generatedScriptsPath`, a first step writes the script there (the script travels as an argument, never as shell
text) and Hive runs that file; otherwise the script goes inline (`hive -e`) through command-runner.jar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datapipe.importer.expressions import MAX_EXPANDED_LENGTH, Text
from datapipe.importer.laxjson import printable
from datapipe.importer.model import PipelineObject
from datapipe.importer.preconditions import TABLE_NAME  # DynamoDB's own rule for table names
from datapipe.importer.reader import Problem

if TYPE_CHECKING:
    from datapipe.importer.plan import EmrStep, _Planner

DYNAMODB_STORAGE_HANDLER = "org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler"
NODE_TYPES = ("S3DataNode", "DynamoDBDataNode")
ITEM_COLUMNS = "item map<string,string>"

_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HIVE_TYPE = re.compile(
    r"string|bigint|int|smallint|tinyint|double|float|boolean|binary|timestamp|date"
    r"|decimal(\([0-9]{1,2}(,[0-9]{1,2})?\))?|varchar\([0-9]{1,5}\)|array<(string|bigint|double)>|map<string,string>",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\s*(0?\.[0-9]{1,6}|1(\.0{1,6})?|0)\s*")
# The node's share of the table's throughput -> the connector's table property that applies it, by side.
_THROUGHPUT = {"input": ("readThroughputPercent", "dynamodb.throughput.read.percent"),
               "output": ("writeThroughputPercent", "dynamodb.throughput.write.percent")}
# Characters that could end the quoted LOCATION, start a Hive variable or break the line: never in a path.
_UNSAFE_IN_PATH = re.compile(r"['\"\\$`;\x00-\x1f\x7f]")
_SEPARATORS = {"CSV": ",", "TSV": "\\t"}  # as written inside a HiveQL string
_TAB = "\\t"
MAX_STEP_ARGUMENT = 10280  # characters in one argument of an EMR step (HadoopJarStepConfig Args)
_VALUE_ROOM = 64  # what a value read at run time may take in an argument (the parts of a time: a few digits)
# Writes its arguments but the last, joined, to the S3 object the last names.
WRITE_SCRIPT = 'printf "%s" "${@:1:$#-1}" | aws s3 cp - "${@: -1}"'


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    def declared(self) -> str:
        return f"`{self.name}` {self.type}"


def table_base(object_id: str) -> str:
    """A plain Hive identifier from an object id (Hive names are case-insensitive, so lower case)."""
    return "copy_" + re.sub(r"[^a-z0-9]+", "_", object_id.lower()).strip("_")[:60]


class _Generator:
    def __init__(self, planner: _Planner, obj: PipelineObject) -> None:
        self.planner = planner
        self.obj = obj
        self.failed = False
        self.tables: dict[str, str] = {}  # "input"/"output" -> the DynamoDB table of that side

    def problem(self, object_id: str, key: str, message: str) -> None:
        self.planner.problems.append(Problem(object_id, key, message))
        self.failed = True

    def node(self, key: str) -> PipelineObject | None:
        targets = self.obj.refs(key)
        if len(targets) != 1:
            self.problem(self.obj.id, key, f"HiveCopyActivity copies exactly one {key} data node, got {len(targets)}")
            return None
        node = self.planner.pipeline.objects[targets[0]]
        if node.type not in NODE_TYPES:
            self.problem(self.obj.id, key, f"{node.id} is a {node.type}; HiveCopyActivity copies between "
                         "S3DataNode and DynamoDBDataNode")
            return None
        return node

    def data_format(self, node: PipelineObject) -> PipelineObject | None:
        return self.planner.pipeline.objects.get(node.ref("dataFormat") or "")

    def columns(self, node: PipelineObject) -> list[Column]:
        data_format = self.data_format(node)
        if data_format is None:
            return []
        texts = self.planner.evaluator.field_texts(data_format, "column")
        if texts is None:
            self.failed = True
            return []
        columns: list[Column] = []
        seen: set[str] = set()
        for text in texts:
            if not text.is_static:
                self.problem(data_format.id, "column", "must be known at import time (it declares a column of the "
                             "generated Hive table)")
                return []
            name, _, kind = text.static.strip().partition(" ")
            kind = kind.strip() or "string"
            if not _COLUMN_NAME.fullmatch(name) or not _HIVE_TYPE.fullmatch(kind):
                self.problem(data_format.id, "column", f"{printable(text.static)!r} is not a column such as "
                             "'timeStamp BIGINT': a name of letters, digits and _, then a Hive type")
                return []
            if name.lower() in seen:
                self.problem(data_format.id, "column", f"{name} is declared twice (Hive names ignore case)")
                return []
            seen.add(name.lower())
            columns.append(Column(name, kind.lower()))
        return columns

    def separator(self, node: PipelineObject) -> str:
        """The field separator of an S3 node's text, as written inside a HiveQL string."""
        data_format = self.data_format(node)
        if data_format is None or data_format.type in ("DynamoDBDataFormat", "DynamoDBExportDataFormat"):
            return _TAB  # the tab-separated text of EMR's DynamoDB exports
        if data_format.type in _SEPARATORS:
            return _SEPARATORS[data_format.type]
        if data_format.type == "Custom":
            separator = self.planner.evaluator.static_field(data_format, "columnSeparator",
                                                            purpose="it separates the fields of the Hive table")
            if separator == "\t":
                return _TAB
            if separator is not None and (len(separator) != 1 or _UNSAFE_IN_PATH.search(separator)):
                self.problem(data_format.id, "columnSeparator", f"must be a tab or one printable character other than "
                             f"quotes, backslash, $, ` and ;, got {printable(separator)!r}")
            return separator or ","
        self.problem(node.id, "dataFormat", f"{data_format.id} is a {data_format.type}; a HiveCopyActivity's S3 table "
                     "is read as CSV, TSV, Custom (columnSeparator) or DynamoDB export text")
        return ","

    def location(self, node: PipelineObject) -> Text:
        if not node.fields.get("directoryPath"):
            self.problem(node.id, "directoryPath" if not node.fields.get("filePath") else "filePath",
                         "a Hive table reads and writes a folder: give directoryPath")
            return Text.of("")
        text = self.planner.code_field(node, "directoryPath")
        if text is None:
            self.failed = True
            return Text.of("")
        literal = [part for part in text.parts if isinstance(part, str)]
        if not text.parts or not isinstance(text.parts[0], str) or not text.parts[0].startswith("s3://"):
            self.problem(node.id, "directoryPath", f"must be an s3:// folder, got {printable(text.describe())!r}")
        elif any(_UNSAFE_IN_PATH.search(part) for part in literal):
            self.problem(node.id, "directoryPath", "may not hold quotes, backslash, $, `, ; or control characters "
                         "(it is written into the generated Hive script)")
        return text

    def dynamodb_table(self, node: PipelineObject) -> str:
        name = self.planner.evaluator.static_field(node, "tableName", purpose="the generated Hive script names it")
        if name is None:
            self.failed = True
            return ""
        if not TABLE_NAME.fullmatch(name):
            self.problem(node.id, "tableName", f"{printable(name)!r} is not a DynamoDB table name (3 to 255 letters, "
                         "digits, _ . -)")
        return name

    def throughput(self, node: PipelineObject, side: str) -> str | None:
        key = _THROUGHPUT[side][0]
        if not node.fields.get(key):
            return None
        text = self.planner.evaluator.static_field(node, key, purpose="it is a property of the generated Hive table")
        if text is None:
            self.failed = True
            return None
        if not _PERCENT.fullmatch(text) or not 0.1 <= float(text) <= 1.0:
            self.problem(node.id, key, f"must be a number from 0.1 to 1.0, got {printable(text)!r}")
            return None
        return text.strip()

    def table(self, side: str, name: str, node: PipelineObject, columns: list[Column]) -> Text:
        declared = ", ".join(c.declared() for c in columns) if columns else ITEM_COLUMNS
        head = f"DROP TABLE IF EXISTS {name}; CREATE EXTERNAL TABLE {name} ({declared})"
        if node.type == "DynamoDBDataNode":
            self.tables[side] = self.dynamodb_table(node)
            properties = f'"dynamodb.table.name" = "{self.tables[side]}"'
            if columns:
                mapping = ",".join(f"{c.name}:{c.name}" for c in columns)
                properties += f', "dynamodb.column.mapping" = "{mapping}"'
            share = self.throughput(node, side)
            if share is not None:
                properties += f', "{_THROUGHPUT[side][1]}" = "{share}"'
            return Text.of(f"{head} STORED BY '{DYNAMODB_STORAGE_HANDLER}' TBLPROPERTIES ({properties});")
        separator = self.separator(node)
        lines = " LINES TERMINATED BY '\\n'" if not columns else ""
        return Text.of(f"{head} ROW FORMAT DELIMITED FIELDS TERMINATED BY '{separator}'{lines} LOCATION '",
                       *self.location(node).parts, "';")

    def filter(self) -> Text | None:
        if not (self.obj.text("filterSql") or "").strip():
            return None
        text = self.planner.code_field(self.obj, "filterSql")
        if text is None:
            self.failed = True
            return None
        if re.match(r"\s*where\b", text.describe(), re.IGNORECASE):
            self.problem(self.obj.id, "filterSql", "give only the predicates: the WHERE is added to them")
        return text

    def script(self) -> Text | None:
        source, target = self.node("input"), self.node("output")
        if source is None or target is None:
            return None
        columns = self.columns(source)
        output_columns = self.columns(target)
        if columns and output_columns and [(c.name.lower(), c.type) for c in columns] != \
                [(c.name.lower(), c.type) for c in output_columns]:
            self.problem(target.id, "dataFormat", f"its columns differ from those of the input {source.id}; the copy "
                         "is SELECT *: declare the columns once, on the input's data format")
        columns = columns or output_columns
        base = table_base(self.obj.id)
        source_table, target_table = f"{base}_input", f"{base}_output"
        copy = Text.of(f"INSERT OVERWRITE TABLE {target_table} SELECT * FROM {source_table}")
        condition = self.filter()
        if condition is not None:
            copy = copy + Text.of(" WHERE ") + condition
        script = Text.of(*self.table("input", source_table, source, columns).parts, " ",
                         *self.table("output", target_table, target, columns).parts, " ", *copy.parts, ";")
        return None if self.failed else script


def hive_copy_steps(planner: _Planner, obj: PipelineObject) -> list[EmrStep]:
    """The EMR steps of a HiveCopyActivity: the script inline, or written to generatedScriptsPath and run from there."""
    from datapipe.importer.plan import COMMAND_RUNNER, EmrStep

    generator = _Generator(planner, obj)
    script = generator.script()
    if script is None:
        return []
    if _room(script) > MAX_EXPANDED_LENGTH:  # the script travels in the run's data, which Step Functions bounds
        planner.problems.append(Problem(obj.id, "filterSql" if obj.fields.get("filterSql") else "input",
                                        f"the generated Hive script would be {_room(script)} characters, more than "
                                        f"the {MAX_EXPANDED_LENGTH} a Step Functions task's input may carry"))
        return []
    read = [generator.tables["input"]] if "input" in generator.tables else []
    written = [generator.tables["output"]] if "output" in generator.tables else []
    if not obj.fields.get("generatedScriptsPath"):
        if _room(script) > MAX_STEP_ARGUMENT:
            planner.problems.append(Problem(obj.id, "generatedScriptsPath", f"not given, and the generated Hive script "
                                            f"({script.length} characters) is longer than the {MAX_STEP_ARGUMENT} an "
                                            "EMR step argument may hold: give an s3:// folder to write it to"))
            return []
        return [EmrStep(name=obj.id, jar=Text.of(COMMAND_RUNNER), args=[Text.of("hive"), Text.of("-e"), script],
                        tables_read=read, tables_written=written)]
    folder = planner.code_field(obj, "generatedScriptsPath")
    if folder is None:
        return []
    parts = list(folder.parts)
    if not parts or not isinstance(parts[0], str) or not parts[0].startswith("s3://"):
        planner.problems.append(Problem(obj.id, "generatedScriptsPath",
                                        f"must be an s3:// folder, got {printable(folder.describe())!r}"))
        return []
    if isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip("/")
    uri = Text.of(*parts, f"/{table_base(obj.id)}.q")
    write = EmrStep(name=f"{obj.id}-script", jar=Text.of(COMMAND_RUNNER),
                    args=[Text.of("bash"), Text.of("-c"), Text.of(WRITE_SCRIPT), Text.of("datapipe"),
                          *_pieces(script, MAX_STEP_ARGUMENT), uri])
    run = EmrStep(name=obj.id, jar=Text.of(COMMAND_RUNNER),
                  args=[Text.of("hive-script"), Text.of("--run-hive-script"), Text.of("--args"), Text.of("-f"), uri],
                  tables_read=read, tables_written=written)
    return [write, run]


def _room(text: Text) -> int:
    """The most characters a text may take once its run-time values are in."""
    return sum(len(part) if isinstance(part, str) else _VALUE_ROOM for part in text.parts)


def _pieces(text: Text, limit: int) -> list[Text]:
    """The text cut into consecutive pieces that each fit one step argument (a run-time value is never cut)."""
    pieces: list[Text] = []
    current: list = []
    room = limit
    for part in text.parts:
        if not isinstance(part, str):
            if room < _VALUE_ROOM:
                pieces.append(Text.of(*current))
                current, room = [], limit
            current.append(part)
            room -= _VALUE_ROOM
            continue
        while part:
            if room == 0:
                pieces.append(Text.of(*current))
                current, room = [], limit
            current.append(part[:room])
            part = part[room:]
            room -= len(current[-1])
    if current:
        pieces.append(Text.of(*current))
    return pieces
