"""The workflow plan: what each object of a validated pipeline becomes, in a form the CDK construct builds from.

Activities are ordered by dependsOn and by data (an activity that reads a data node waits for the one that writes
it) into stages; the activities of one stage are independent and run in parallel. Each activity gets a target:
- ShellCommandActivity / CopyActivity with a workerGroup -> an activity task for our task runner;
- ShellCommandActivity / CopyActivity on an Ec2Resource -> a Batch job;
- EmrActivity, HadoopActivity, HiveActivity, PigActivity, HiveCopyActivity (and shell commands) on an EmrCluster ->
  EMR steps on a cluster created once per EmrCluster, terminated at the end and on any failure.

An execution's input is data, never code: a value known only when the run starts (a parameter without a value, the
run's time) reaches a shell command as an environment variable that the command's text refers to, and a secret as a
reference the consumer reads at run time (`ShellCode`). What chooses the code that runs (a script or jar URI, an
inline Hive or Pig script) may not depend on a parameter given when the run starts. (The run's time may appear
there: the workflow accepts only a timestamp as `scheduledStartTime`, so its parts are digits.)
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from datapipe.importer import databases, schema
from datapipe.importer.actions import (
    ON_FAIL,
    ON_SUCCESS,
    Action,
    Lateness,
    actions,
    finish,
    lateness,
    progress_and_reruns,
)
from datapipe.importer.expressions import PARAMETERS_PATH, RUN_PATH, Evaluator, Secret, Text
from datapipe.importer.fields import RUNS_ON_WINS, FieldAccount, account, reason_for
from datapipe.importer.hivecopy import hive_copy_steps
from datapipe.importer.laxjson import printable
from datapipe.importer.model import DEFAULT_ID, Pipeline, PipelineObject
from datapipe.importer.preconditions import Precondition, preconditions
from datapipe.importer.reader import Problem
from datapipe.importer.resources import RUN_SCRIPT, BatchSize, batch_size, cluster, http_proxy, resize, task_config
from datapipe.importer.resources import Cluster as Cluster  # the construct reads the plan's types from here
from datapipe.importer.resources import EmrConfiguration as EmrConfiguration
from datapipe.importer.schedules import Schedule, max_active_runs, plan_schedules

MAPPED, UNSUPPORTED, ERROR = "mapped", "unsupported", "error"
ACTIVITY_TASK, BATCH_JOB, EMR_STEPS = "activity", "batch", "emr"
COMMAND_RUNNER = "command-runner.jar"
MAX_PERIOD_SECONDS = 365 * 86400  # a Standard workflow's run lasts at most a year: no timeout or delay is longer

_PERIOD = re.compile(r"^\s*([0-9]{1,9})\s*(minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)
_COUNT = re.compile(r"\s*[0-9]{1,9}\s*")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}


@dataclass(frozen=True)
class PlanOptions:
    """Choices the importer cannot take from a definition; the pipelines settings provide them."""

    default_release_label: str = "emr-7.5.0"
    default_instance_type: str = "m5.xlarge"
    precondition_interval_seconds: int = 60
    precondition_max_checks: int = 60
    batch_max_vcpus: int = 16  # the Batch compute environment's maxVcpus: no job may ask for more
    batch_fargate: bool = False


@dataclass
class EmrStep:
    name: str
    jar: Text
    args: list[Text]
    main_class: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> reference, read on the cluster
    tables_read: list[str] = field(default_factory=list)  # DynamoDB tables the step reads (HiveCopyActivity)
    tables_written: list[str] = field(default_factory=list)


@dataclass
class ShellCode:
    """Shell text fixed at import time; what is known only at run time reaches it as variables, never as text.

    `environment` maps a variable to its value (a parameter of the execution input, a part of the run's time);
    `secrets` maps a variable to the reference of a secret (a Secrets Manager ARN or name, or `ssm:<name>`), which
    the consumer reads with its own credentials just before the command starts.
    """

    text: str
    environment: dict[str, Text] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class Shell:
    """A shell command as the task runner and Batch run it: `command` or `script_uri`, positional arguments."""

    command: str | None
    script_uri: Text | None
    arguments: list[Text]
    stage: bool = False
    inputs: list[Text] = field(default_factory=list)  # S3 paths of input data nodes, in order
    outputs: list[Text] = field(default_factory=list)
    environment: dict[str, Text] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class Activity:
    id: str
    type: str
    target: str  # ACTIVITY_TASK, BATCH_JOB or EMR_STEPS
    worker_group: str | None = None
    resource: str | None = None  # the EmrCluster or Ec2Resource id
    shell: Shell | None = None
    steps: list[EmrStep] = field(default_factory=list)
    retries: int = 0
    retry_delay_seconds: int = 0
    attempt_timeout_seconds: int | None = None
    resource_timeout_seconds: int | None = None
    preconditions: list[Precondition] = field(default_factory=list)
    on_fail: list[Action] = field(default_factory=list)
    on_success: list[Action] = field(default_factory=list)
    late: Lateness | None = None
    heartbeat_seconds: int | None = None  # reportProgressTimeout, on worker-group tasks
    cascade_failed: list[str] = field(default_factory=list)  # failureAndRerunMode CASCADE: consumers not run
    sql: databases.SqlWork | None = None  # the database work of SqlActivity, RedshiftCopyActivity, SQL copies

    batch_size: BatchSize | None = None  # of the Ec2Resource's instance type
    resize_core_to: int | None = None  # resizeClusterBeforeRunning: core instances before the steps


@dataclass
class ObjectReport:
    id: str
    type: str
    status: str
    target: str = ""
    reason: str = ""
    fields: FieldAccount = field(default_factory=FieldAccount)  # each own field: applied, or not and why

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "status": self.status, "target": self.target, "reason": self.reason,
                "fields": self.fields.as_dict()}


@dataclass
class Plan:
    name: str
    source: str
    stages: list[list[Activity]] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)  # one per Schedule object an activity follows
    max_active_runs: int | None = None  # maxActiveInstances: at most this many runs at once
    runtime_parameters: list[str] = field(default_factory=list)
    allowed_values: dict[str, list[str]] = field(default_factory=dict)  # of runtime parameters that declare them
    uses_run_time: bool = False
    run_expressions: dict[str, Any] = field(default_factory=dict)  # the run-values Lambda's (expressions.Evaluator)
    # (data node, precondition or EmrCluster id; for a precondition the activity it gates, else "") -> its lateness
    late_objects: dict[tuple[str, str], Lateness] = field(default_factory=dict)
    objects: list[ObjectReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def deployable(self) -> bool:
        return not self.errors and all(o.status == MAPPED for o in self.objects) and bool(self.stages)

    @property
    def schedule(self) -> Schedule | None:
        """The first schedule (most pipelines have one); None when the pipeline is started on demand."""
        return self.schedules[0] if self.schedules else None

    @schedule.setter
    def schedule(self, value: Schedule | None) -> None:
        self.schedules = [] if value is None else [value]

    @property
    def activities(self) -> list[Activity]:
        return [activity for stage in self.stages for activity in stage]

    def secrets(self, target: str, worker_group: str | None = None) -> dict[str, str]:
        """Variable -> reference of the secrets that the activities of one target (and worker group) read."""
        found: dict[str, str] = {}
        for activity in self.activities:
            if activity.target != target or (worker_group is not None and activity.worker_group != worker_group):
                continue
            if activity.shell is not None:
                found.update(activity.shell.secrets)
            for step in activity.steps:
                found.update(step.secrets)
            if activity.sql is not None and activity.target == ACTIVITY_TASK:  # Batch: the SQL job role reads it
                found.update(activity.sql.secrets)
        return found

    @property
    def mapped_share(self) -> float:
        return sum(o.status == MAPPED for o in self.objects) / len(self.objects) if self.objects else 0.0


def parse_period(text: str) -> int | None:
    """Seconds in a Data Pipeline period ("2 Hours", "10 days"); months count 30 days and years 365."""
    match = _PERIOD.match(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()] if match else None


def pipeline_name(source: str) -> str:
    """A name fit for physical names: the file name without extension, lower-case, with dashes."""
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    name = re.sub(r"[^a-z0-9]+", "-", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", stem).lower()).strip("-")
    return (name or "pipeline")[:40].strip("-")


def split_commas(text: Text) -> list[Text]:
    """Split a Data Pipeline comma list ("jar,arg1,arg2"); a comma written as `\\,` stays inside its argument."""
    pieces: list[list] = [[]]
    for part in text.parts:
        if not isinstance(part, str):
            pieces[-1].append(part)
            continue
        buffer = ""
        index = 0
        while index < len(part):
            char = part[index]
            if char == "\\" and part[index + 1 : index + 2] == ",":
                buffer += ","
                index += 2
                continue
            if char == ",":
                pieces[-1].append(buffer)
                pieces.append([])
                buffer = ""
            else:
                buffer += char
            index += 1
        pieces[-1].append(buffer)
    result = [Text.of(*piece) for piece in pieces]
    return [_strip(t) for t in result]


_RUN_TIME_VARIABLES = {f"{RUN_PATH}.{part}": f"SCHEDULED_START_{part.upper()}"
                       for part in ("year", "month", "day", "hour", "minute", "second")}


def variable_name(path: str) -> str:
    """The environment variable of a value read at run time: a parameter keeps its name (`myDate`)."""
    if path.startswith(f"{PARAMETERS_PATH}."):
        return path.removeprefix(f"{PARAMETERS_PATH}.")
    if path in _RUN_TIME_VARIABLES:
        return _RUN_TIME_VARIABLES[path]
    if path == "$$.StateMachine.Name":
        return "PIPELINE_ID"
    return re.sub(r"[^A-Za-z0-9_]", "_", path).strip("_").upper() or "VALUE"


def _quoting_after(text: str, quoting: str) -> str:
    """The shell quoting in force after `text` (`'`, `"` or none), starting in `quoting`."""
    index = 0
    while index < len(text):
        char = text[index]
        if quoting == "'":
            quoting = "" if char == "'" else quoting
        elif char == "\\":
            index += 1  # the next character is escaped
        elif quoting == '"':
            quoting = "" if char == '"' else quoting
        elif char in "'\"":
            quoting = char
        index += 1
    return quoting


def _variable_reference(name: str, quoting: str) -> str:
    """`"${name}"` as it reads where it goes: one word, never parsed as shell code."""
    if quoting == '"':
        return "${" + name + "}"
    if quoting == "'":
        return "'\"${" + name + "}\"'"
    return '"${' + name + '}"'


def shell_code(command: Text) -> ShellCode:
    """Shell text where each value known at run time is a variable reference, with the variables' values."""
    pieces: list[str] = []
    code = ShellCode("")
    quoting = ""
    for part in command.parts:
        if isinstance(part, str):
            pieces.append(part)
            quoting = _quoting_after(part, quoting)
            continue
        if isinstance(part, Secret):
            name = part.variable
            code.secrets[name] = part.reference
        else:
            name = variable_name(part.path)
            code.environment[name] = Text.of(part)
        pieces.append(_variable_reference(name, quoting))
    code.text = "".join(pieces)
    return code


def _strip(text: Text) -> Text:
    parts = list(text.parts)
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    return Text.of(*parts)


class _Planner:
    def __init__(self, pipeline: Pipeline, options: PlanOptions, name: str) -> None:
        self.pipeline = pipeline
        self.options = options
        self.evaluator = Evaluator(pipeline)
        self.plan = Plan(name=name, source=pipeline.source)
        self.targets: dict[str, str] = {}  # object id -> what it became
        self.reasons: dict[str, str] = {}  # object id -> why it has no mapping
        self.notes: dict[str, list[str]] = {}

    @property
    def problems(self) -> list[Problem]:
        return self.evaluator.problems

    def note(self, object_id: str, text: str) -> None:
        self.notes.setdefault(object_id, []).append(text)

    def period(self, obj: PipelineObject, key: str) -> int | None:
        if not obj.fields.get(key):
            return None
        text = self.evaluator.static_field(obj, key, purpose="it sets a timeout or delay")
        if text is None:
            return None
        seconds = parse_period(text)
        if seconds is None:
            self.problems.append(
                Problem(obj.id, key, f"'{printable(text)}' is not a period such as '2 hours' or '15 minutes'"))
        elif seconds > MAX_PERIOD_SECONDS:
            self.problems.append(Problem(obj.id, key, f"'{printable(text)}' is longer than a year, the longest a "
                                         "Step Functions run lasts"))
            return None
        return seconds

    def integer(self, obj: PipelineObject, key: str, default: int) -> int:
        if not obj.fields.get(key):
            return default
        text = self.evaluator.static_field(obj, key, purpose="it is a count")
        if text is None:
            return default
        if not _COUNT.fullmatch(text):
            self.problems.append(Problem(obj.id, key, f"must be a whole number from 0 to 999999999, got "
                                         f"{printable(text)!r}"))
            return default
        return int(text)

    # -- the whole plan -----------------------------------------------------------------------------------------------

    def build(self) -> Plan:
        pipeline = self.pipeline
        clusters: dict[str, Cluster] = {}
        activities: dict[str, Activity] = {}
        for obj in pipeline.of_kind(schema.ACTIVITY):
            if obj.id in self.reasons:
                continue
            activity = self.activity(obj, clusters)
            if activity is not None:
                activities[obj.id] = activity
        self.plan.clusters = list(clusters.values())
        worker_groups = sorted({a.worker_group for a in activities.values() if a.worker_group})
        for proxy in pipeline.objects.values():
            if proxy.type == "HttpProxy":
                http_proxy(self, proxy, worker_groups)
        self.plan.stages = self.stages(activities)
        finish(self, activities)
        self.plan.schedules = plan_schedules(self)
        self.plan.max_active_runs = max_active_runs(self)
        self.plan.runtime_parameters = sorted(self.evaluator.runtime_parameters)
        declared = {name: pipeline.parameters[name].allowed_values for name in self.plan.runtime_parameters}
        self.plan.allowed_values = {name: values for name, values in declared.items() if values}
        self.plan.uses_run_time = self.evaluator.uses_run_time
        self.plan.run_expressions = self.evaluator.run_expressions
        if not pipeline.of_kind(schema.ACTIVITY):
            pipeline.problems.append(Problem("(definition)", "objects", "there is no activity to run"))
        self.report()
        return self.plan

    def stages(self, activities: dict[str, Activity]) -> list[list[Activity]]:
        graph = self.pipeline.activity_dependencies()
        level: dict[str, int] = {}
        on_path: set[str] = set()
        for root in graph:  # depth-first with an explicit stack: a level is known once those before it are
            pending = [root]
            while pending:
                node = pending[-1]
                if node in level:
                    pending.pop()
                    continue
                waiting = [d for d in graph.get(node, []) if d not in level and d not in on_path]
                if waiting:
                    on_path.add(node)
                    pending.extend(waiting)
                    continue
                # a dependency still on the path closes a cycle, already reported by the model: it counts as 0
                level[node] = max((level.get(d, -1) + 1 for d in graph.get(node, [])), default=0)
                on_path.discard(node)
                pending.pop()
        stages: dict[int, list[Activity]] = {}
        for activity_id, activity in activities.items():
            stages.setdefault(level.get(activity_id, 0), []).append(activity)
        return [stages[index] for index in sorted(stages)]

    # -- activities ---------------------------------------------------------------------------------------------------

    def activity(self, obj: PipelineObject, clusters: dict[str, Cluster]) -> Activity | None:
        resource = self.pipeline.objects.get(obj.ref("runsOn") or "")
        worker_group = obj.text("workerGroup")
        if databases.is_database_activity(obj, self.pipeline):
            sql_activity = databases.database_activity(self, obj, resource=resource, worker_group=worker_group)
            return self.settle(obj, sql_activity, resource, clusters) if sql_activity is not None else None
        emr_family = obj.type in schema.EMR_ACTIVITY_TYPES
        if resource is not None and resource.type == "EmrCluster":
            target = EMR_STEPS
        elif resource is not None and resource.type == "Ec2Resource" and not emr_family:
            target = BATCH_JOB
        elif resource is None and worker_group and not emr_family:
            target = ACTIVITY_TASK
        elif emr_family:
            self.reasons[obj.id] = f"{obj.type} is mapped only with runsOn an EmrCluster (the cluster is created " \
                "by the workflow); a worker group's own cluster is not reachable from Step Functions"
            return None
        else:
            self.reasons[obj.id] = "it runs neither on an Ec2Resource or EmrCluster nor on a worker group"
            return None
        if resource is not None and worker_group:
            obj.not_applied("workerGroup", RUNS_ON_WINS)
        activity = Activity(id=obj.id, type=obj.type, target=target, worker_group=worker_group,
                            resource=resource.id if resource is not None else None)
        if target == EMR_STEPS and resource is not None:
            if resource.id not in clusters:
                created = cluster(self, resource)
                if created is None:
                    return None
                clusters[resource.id] = created
            activity.steps = self.emr_steps(obj)
            activity.resize_core_to = resize(self, obj, clusters[resource.id])
        else:
            shell = self.shell(obj)
            if shell is None:
                return None
            activity.shell = shell
        where = {
            ACTIVITY_TASK: f"activity task for worker group '{worker_group}' (StepFunctionsInvokeActivity)",
            BATCH_JOB: f"Batch job (BatchSubmitJob) for resource {activity.resource}",
            EMR_STEPS: f"{len(activity.steps)} EMR step(s) (EmrAddStep) on cluster {activity.resource}",
        }[target]
        self.targets[obj.id] = where
        return self.settle(obj, activity, resource, clusters)

    def settle(self, obj: PipelineObject, activity: Activity, resource: PipelineObject | None,
               clusters: dict[str, Cluster]) -> Activity:
        """What every activity takes from its definition whatever it runs on: timeouts, retries, checks, alarms."""
        if resource is not None and resource.type == "Ec2Resource" and activity.target == BATCH_JOB:
            activity.resource_timeout_seconds = self.period(resource, "terminateAfter")
            activity.batch_size = batch_size(self, resource)
        elif resource is not None and resource.id in clusters:
            activity.resource_timeout_seconds = clusters[resource.id].terminate_after_seconds
        activity.retries = self.integer(obj, "maximumRetries", 0)
        activity.retry_delay_seconds = self.period(obj, "retryDelay") or 0
        activity.attempt_timeout_seconds = self.period(obj, "attemptTimeout")
        activity.preconditions = preconditions(self, obj, activity)
        activity.on_fail = actions(self, obj, ON_FAIL)
        activity.on_success = actions(self, obj, ON_SUCCESS)
        activity.late = lateness(self, obj)
        progress_and_reruns(self, obj, activity)
        return activity

    def data_paths(self, obj: PipelineObject, key: str) -> list[Text] | None:
        paths: list[Text] = []
        for node_id in obj.refs(key):
            node = self.pipeline.objects[node_id]
            if node.type != "S3DataNode":
                if node.type in ("DynamoDBDataNode",) and obj.type in ("EmrActivity", "HiveActivity", "PigActivity",
                                                                   "HiveCopyActivity"):
                    continue  # read through expressions in the step itself
                self.reasons[obj.id] = f"its {key} {node_id} is a {node.type}; only S3DataNode is mapped for {obj.type}"
                return None
            path_key = "directoryPath" if node.fields.get("directoryPath") else "filePath"
            text = self.evaluator.field_text(node, path_key)
            if text is None:
                return None
            paths.append(text)
        return paths

    def shell(self, obj: PipelineObject) -> Shell | None:
        inputs = self.data_paths(obj, "input")
        outputs = self.data_paths(obj, "output")
        if inputs is None or outputs is None:
            return None
        if obj.type == "CopyActivity":
            if len(inputs) != 1 or len(outputs) != 1:
                self.reasons[obj.id] = "CopyActivity is mapped for exactly one S3 input and one S3 output"
                return None
            source: Text = inputs[0]
            destination: Text = outputs[0]
            recursive = " --recursive" if source.describe().endswith("/") or self._is_directory(obj, "input") else ""
            copy = shell_code(Text.of("aws s3 cp", recursive, " ", *source.parts, " ", *destination.parts))
            return Shell(command=copy.text, script_uri=None, arguments=[], environment=copy.environment)
        command = self.evaluator.field_text(obj, "command", secrets=True)
        script_uri = self.code_field(obj, "scriptUri")
        arguments = self.evaluator.field_texts(obj, "scriptArgument")
        if (obj.fields.get("command") and command is None) or (obj.fields.get("scriptUri") and script_uri is None):
            return None
        if arguments is None:
            return None
        code = shell_code(command) if command is not None else None
        stage = (obj.text("stage") or "false").lower() == "true"
        for key in ("stdout", "stderr"):
            if obj.fields.get(key):
                self.note(obj.id, f"{key} is not redirected; the task runner and Batch keep the output in their logs")
                obj.not_applied(key, reason_for(obj.type, key) or "")
        return Shell(command=code.text if code else None, script_uri=script_uri, arguments=arguments, stage=stage,
                     inputs=inputs, outputs=outputs, environment=code.environment if code else {},
                     secrets=code.secrets if code else {})

    def code_field(self, obj: PipelineObject, key: str) -> Text | None:
        """A field that chooses or holds the code that runs: no parameter given when the run starts may change it."""
        text = self.evaluator.field_text(obj, key)
        if text is not None and self.depends_on_parameters(obj, key, [text]):
            return None
        return text

    def depends_on_parameters(self, obj: PipelineObject, key: str, texts: list[Text]) -> bool:
        """Report (and say True) when a parameter given at run time would change the code that runs."""
        names = [p.removeprefix(f"{PARAMETERS_PATH}.") for t in texts for p in t.runtime_paths()
                 if p.startswith(f"{PARAMETERS_PATH}.")]
        if names:
            self.problems.append(Problem(obj.id, key, f"the code that runs may not depend on {names[0]}, a parameter "
                                         "given when the run starts; give it a value with --values or a default, or "
                                         "pass it as an argument"))
        return bool(names)

    def _is_directory(self, obj: PipelineObject, key: str) -> bool:
        node = self.pipeline.objects.get(obj.ref(key) or "")
        return node is not None and bool(node.fields.get("directoryPath"))

    def emr_steps(self, obj: PipelineObject) -> list[EmrStep]:
        steps: list[EmrStep] = []
        evaluator = self.evaluator

        def command_step(name: str, command: Text | str, arguments: list[Text] | None = None,
                         environment: dict[str, Text] | None = None, secrets: dict[str, str] | None = None) -> EmrStep:
            code = shell_code(command) if isinstance(command, Text) else ShellCode(command, environment or {},
                                                                                  secrets or {})
            script = emr_shell_script(code) + ' "$@"'
            args = [Text.of("bash"), Text.of("-c"), Text.of(script), Text.of("datapipe"), *code.environment.values(),
                    *(arguments or [])]
            return EmrStep(name=name, jar=Text.of(COMMAND_RUNNER), args=args, secrets=code.secrets)

        for index, command in enumerate(evaluator.field_texts(obj, "preStepCommand", secrets=True) or [], start=1):
            steps.append(command_step(f"{obj.id}-pre-{index}", command))
        for script in task_config(self, obj, "preActivityTaskConfig"):
            steps.append(command_step(f"{obj.id}-pre-config", RUN_SCRIPT, script))
        variables: list[Text] = []
        inputs = self.data_paths(obj, "input") or []
        outputs = self.data_paths(obj, "output") or []
        for prefix, paths in (("input", inputs), ("output", outputs)):
            for number, path in enumerate(paths, start=1):
                variables.append(Text.of(f"{prefix}{number}=") + path)
        if obj.type == "EmrActivity":
            for index, step in enumerate(evaluator.field_texts(obj, "step") or [], start=1):
                pieces = split_commas(step)
                if not self.code_is_fixed(obj, "step", pieces):
                    continue
                steps.append(EmrStep(name=f"{obj.id}-{index}", jar=pieces[0], args=pieces[1:]))
        elif obj.type == "HadoopActivity":
            jar = self.code_field(obj, "jarUri") or Text.of("")
            args = evaluator.field_texts(obj, "argument") or []
            queue = evaluator.field_text(obj, "hadoopQueue")
            if queue is not None:
                args = [Text.of("-Dmapreduce.job.queuename=") + queue, *args]
            steps.append(EmrStep(name=obj.id, jar=jar, args=args, main_class=obj.text("mainClass")))
        elif obj.type in ("HiveActivity", "PigActivity"):
            hive = obj.type == "HiveActivity"
            flag = "-d" if hive else "-p"
            inline = self.code_field(obj, "hiveScript" if hive else "script")
            script_uri = self.code_field(obj, "scriptUri")
            for text in evaluator.field_texts(obj, "scriptVariable") or []:
                variables.append(text)
            if script_uri is not None:
                runner = "hive-script" if hive else "pig-script"
                args = [Text.of(runner), Text.of(f"--run-{runner}"), Text.of("--args"), Text.of("-f"), script_uri]
            else:
                args = [Text.of("hive" if hive else "pig"), Text.of("-e"), inline or Text.of("")]
            for variable in variables:
                args.extend([Text.of(flag), variable])
            steps.append(EmrStep(name=obj.id, jar=Text.of(COMMAND_RUNNER), args=args))
            if inputs or outputs:
                self.note(obj.id, "the tables Data Pipeline generated from data formats are not generated; the "
                          f"script gets the paths as variables input1.., output1.. ({flag} name=path)")
        elif obj.type == "HiveCopyActivity":
            steps.extend(hive_copy_steps(self, obj))
        elif obj.type == "ShellCommandActivity":
            shell = self.shell(obj)
            if shell is not None:
                if shell.command is not None:
                    steps.append(command_step(obj.id, shell.command, shell.arguments, shell.environment,
                                              shell.secrets))
                elif shell.script_uri is not None:
                    steps.append(command_step(obj.id, RUN_SCRIPT, [shell.script_uri, *shell.arguments]))
                if shell.stage:
                    self.note(obj.id, "stage is not applied on EMR; the command reads its S3 paths directly")
                    obj.not_applied("stage", "not applied on EMR: the command reads its S3 paths directly")
        elif obj.type == "CopyActivity":
            shell = self.shell(obj)
            if shell is not None and shell.command is not None:
                steps.append(command_step(obj.id, shell.command, environment=shell.environment))
        for index, command in enumerate(evaluator.field_texts(obj, "postStepCommand", secrets=True) or [], start=1):
            steps.append(command_step(f"{obj.id}-post-{index}", command))
        for script in task_config(self, obj, "postActivityTaskConfig"):
            steps.append(command_step(f"{obj.id}-post-config", RUN_SCRIPT, script))
        if not steps and obj.type != "HiveCopyActivity":  # a HiveCopyActivity without steps reported why
            self.problems.append(Problem(obj.id, "step", f"{obj.type} has nothing to run"))
        return steps

    def code_is_fixed(self, obj: PipelineObject, key: str, pieces: list[Text]) -> bool:
        """An EMR step's jar, and the script of `command-runner.jar,bash,-c,<script>`, are the code that runs."""
        shell = len(pieces) > 3 and pieces[0].describe().endswith(COMMAND_RUNNER) and pieces[2].describe() == "-c"
        return not self.depends_on_parameters(obj, key, pieces[:4] if shell else pieces[:1])

    # -- resources ----------------------------------------------------------------------------------------------------

    # -- schedule ------------------------------------------------------------------------------------------------------

    # -- the report ---------------------------------------------------------------------------------------------------

    def report(self) -> None:
        pipeline = self.pipeline
        problems = [*pipeline.problems, *self.problems]
        by_object: dict[str, list[str]] = {}
        for problem in problems:
            by_object.setdefault(problem.object_id, []).append(
                f"{problem.field}: {problem.message}" if problem.field else problem.message
            )
        used_by: dict[str, list[str]] = {}
        for obj in pipeline.objects.values():
            for values in obj.own.values():
                for value in values:
                    target = getattr(value, "target", None)
                    if target:
                        used_by.setdefault(target, []).append(obj.id)
        accounts = account(pipeline, self.reasons, planning_stopped=bool(problems))
        for obj in pipeline.objects.values():
            object_type = obj.type or ("Default" if obj.id == DEFAULT_ID else "")
            report = ObjectReport(id=obj.id, type=object_type, status=MAPPED, fields=accounts[obj.id])
            if obj.id in by_object:
                report.status, report.reason = ERROR, "; ".join(by_object[obj.id])
            elif obj.id in self.reasons:
                report.status, report.reason = UNSUPPORTED, self.reasons[obj.id]
            elif obj.id in self.targets:
                report.target = self.targets[obj.id].rstrip(";")
            elif obj.id == DEFAULT_ID:
                report.target = f"defaults inherited by {len(pipeline.objects) - 1} objects"
            elif obj.kind in (schema.DATA_NODE, schema.DATA_FORMAT, schema.RESOURCE, schema.PROPERTY,
                              schema.CONFIGURATION, schema.ACTION, schema.PRECONDITION):
                users = [u for u in used_by.get(obj.id, []) if u != obj.id]
                report.target = f"values used by {', '.join(users)}" if users else "not used by any activity"
                if obj.type == "Ec2Resource":
                    report.target = "Batch job queue (no instance of its own)"
            else:
                report.target = "nothing to deploy"
            notes = self.notes.get(obj.id)
            if notes and report.status == MAPPED:
                report.reason = "; ".join(notes)
            self.plan.objects.append(report)
        for key, notes in self.notes.items():
            if key not in pipeline.objects:
                self.plan.notes.extend(notes)
        self.plan.errors = [str(p) for p in problems]


def make_plan(pipeline: Pipeline, *, options: PlanOptions | None = None, name: str | None = None) -> Plan:
    return _Planner(pipeline, options or PlanOptions(), name or pipeline_name(pipeline.source)).build()


def secret_command(reference: str) -> str:
    """The shell text that prints a secret's value, read with the credentials of the machine that runs it."""
    if reference.startswith("ssm:"):
        name = shlex.quote(reference.removeprefix("ssm:"))
        return f"aws ssm get-parameter --with-decryption --name {name} --query Parameter.Value --output text"
    secret_id = shlex.quote(reference)
    return f"aws secretsmanager get-secret-value --secret-id {secret_id} --query SecretString --output text"


def emr_shell_script(code: ShellCode) -> str:
    """The `bash -c` text of an EMR command step: run-time values arrive as its first arguments, secrets are read on
    the cluster (a failed read stops the step), then the command runs with the remaining arguments."""
    lines = [f'export {name}="${index}"' for index, name in enumerate(code.environment, start=1)]
    if code.environment:
        lines.append(f"shift {len(code.environment)}")
    for name, reference in code.secrets.items():
        lines += [f'{name}="$({secret_command(reference)})" || exit 1', f"export {name}"]
    return "\n".join([*lines, code.text])
