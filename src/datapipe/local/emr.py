"""Amazon EMR for the Step Functions interpreter: cluster and step lifecycles, and the `elasticmapreduce` tasks.

moto's EMR backend keeps the clusters and steps (so `describe_cluster`, `list_steps`, `list_clusters` see them),
but changes their states instantly. The `EmrSimulator` takes the lifecycle over: a cluster goes
STARTING -> BOOTSTRAPPING -> WAITING (RUNNING while steps run) -> TERMINATING -> TERMINATED (or
TERMINATED_WITH_ERRORS); a step goes PENDING -> RUNNING -> COMPLETED / CANCELLED / FAILED, at most
StepConcurrencyLevel at a time. Every change emits "EMR Cluster State Change" / "EMR Step Status Change".

`EmrTask` is the interpreter's `arn:aws:states:::elasticmapreduce:*` integration (moto marks it unsupported). It
calls the EMR API of the same server, returns what the Step Functions integration returns, and fails with the
errors AWS reports: `EMR.AmazonElasticMapReduceException` when EMR rejects a call, `States.TaskFailed` when a
`.sync` ends badly (terminated with errors, step failed or cancelled). A `.sync` task looks at EMR when Step Functions
does: every 60 s for its first 10 minutes, then every 300 s (Step Functions developer guide, "Create and manage
Amazon EMR clusters with Step Functions"), times the emulator's `wait_scale` (or `sync_check_scale` when set; at 0,
at once on every change).
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import ClientError, ParamValidationError
from moto.core.responses import ActionResult, BaseResponse
from moto.emr.exceptions import InvalidCluster, InvalidRequestException, ValidationException
from moto.emr.models import Cluster, ElasticMapReduceBackend, Step, emr_backends
from moto.emr.responses import ElasticMapReduceResponse
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails as _EventDetails

from datapipe.local import clients, events, waits
from datapipe.local.seams import addition, seam

EventDetails: Any = _EventDetails  # moto's TypedDict lists every key as required

if TYPE_CHECKING:
    from datapipe.local.options import EmulatorContext as Extensions

RUN_JOB_FLOW = seam(ElasticMapReduceBackend, "run_job_flow", ("self", "kwargs"), "clusters get a real lifecycle")
ADD_JOB_FLOW_STEPS = seam(
    ElasticMapReduceBackend, "add_job_flow_steps", ("self", "job_flow_id", "steps"), "steps wait their turn"
)
TERMINATE_JOB_FLOWS = seam(
    ElasticMapReduceBackend, "terminate_job_flows", ("self", "job_flow_ids"), "termination takes time"
)
BACKEND_INIT = seam(
    ElasticMapReduceBackend,
    "__init__",
    ("self", "region_name", "account_id"),
    "an unknown cluster id is EMR's InvalidRequestException, not a KeyError (an HTML 500 page)",
)
SET_TERMINATION_PROTECTION = seam(
    ElasticMapReduceBackend,
    "set_termination_protection",
    ("self", "job_flow_ids", "value"),
    "an ended cluster may not be modified",
)
DESCRIBE_STEP = seam(
    ElasticMapReduceBackend, "describe_step", ("self", "cluster_id", "step_id"), "an unknown step id is an error"
)
CANCEL_STEPS_API = addition(ElasticMapReduceResponse, "cancel_steps", "CancelSteps: moto has no such API")
STEP_STATUS = seam(Step, "status", None, "a failed step reports FailureDetails with its log file")
CLUSTER_STATUS = seam(Cluster, "status", None, "StateChangeReason carries its Code (USER_REQUEST, STEP_FAILURE...)")
REQUEST_REGION = seam(
    ElasticMapReduceResponse,
    "get_region_from_url",
    ("self", "request", "full_url"),
    "on a local endpoint moto's EMR ignores the signed region and files every cluster under us-east-1",
)
SERVICE_FACTORY = seam(
    state_task_factory,
    "state_task_service_for",
    ("service_name",),
    "the interpreter's elasticmapreduce integration (unsupported in moto)",
)

ACTIVE_CLUSTER_STATES: Final = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
FINAL_STEP_STATES: Final = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
EMR_ERROR: Final = "EMR.AmazonElasticMapReduceException"
# When Step Functions checks a .sync EMR task: every SYNC_EARLY_INTERVAL seconds during its first SYNC_EARLY_PERIOD,
# then every SYNC_LATE_INTERVAL seconds.
SYNC_EARLY_INTERVAL: Final = 60.0
SYNC_EARLY_PERIOD: Final = 600.0
SYNC_LATE_INTERVAL: Final = 300.0


def next_sync_check(elapsed: float) -> float:
    """Seconds after a .sync task was submitted at which Step Functions next checks it, `elapsed` seconds in."""
    if elapsed < SYNC_EARLY_PERIOD:
        return (int(elapsed // SYNC_EARLY_INTERVAL) + 1) * SYNC_EARLY_INTERVAL
    late = elapsed - SYNC_EARLY_PERIOD
    return SYNC_EARLY_PERIOD + (int(late // SYNC_LATE_INTERVAL) + 1) * SYNC_LATE_INTERVAL


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class ClusterRecord:
    cluster: Cluster
    account: str
    region: str
    termination_reason: tuple[str, str] | None = None  # (code, message) once termination is requested
    with_errors: bool = False
    step_deadlines: dict[str, float] = field(default_factory=dict)
    step_failures: dict[str, str] = field(default_factory=dict)


class EmrSimulator:
    """Drives the states of moto's clusters and steps on one thread per cluster, with no busy waiting."""

    def __init__(self, extensions: Extensions) -> None:
        self._extensions = extensions
        self._records: dict[str, ClusterRecord] = {}
        self.changed = threading.Condition(threading.RLock())

    # -- timing ---------------------------------------------------------------------------------------------------
    def _seconds(self, value: float) -> float:
        return max(0.0, value * self._extensions.options.time_scale)

    # -- tracking -------------------------------------------------------------------------------------------------
    def track(self, cluster: Cluster) -> None:
        backend = cluster.emr_backend
        record = ClusterRecord(cluster=cluster, account=backend.account_id, region=backend.region_name)
        with self.changed:
            self._records[cluster.id] = record
            cluster.ready_datetime = None
            for step in cluster.steps:
                self._set_step(record, step, "PENDING")
            self._set_cluster(record, "STARTING", "", f"Amazon EMR cluster {cluster.id} ({cluster.name}) was requested")
        threading.Thread(target=self._lifecycle, args=(record,), name=f"emr-{cluster.id}", daemon=True).start()

    def steps_added(self, cluster: Cluster, steps: list[Step]) -> None:
        with self.changed:
            record = self._records.get(cluster.id)
            if record is None:
                return
            # moto marks a step RUNNING and the cluster RUNNING on arrival; the lifecycle decides instead.
            cluster.state = self._current_cluster_state(record)
            for step in steps:
                step.start_date_time = None
                self._set_step(record, step, "PENDING")
            self.changed.notify_all()

    def request_termination(self, cluster: Cluster, code: str = "USER_REQUEST", message: str = "") -> None:
        with self.changed:
            record = self._records.get(cluster.id)
            if record is None:
                cluster.terminate()
                return
            if record.termination_reason is None:
                record.termination_reason = (code, message or "Terminated by user request")
            self.changed.notify_all()

    def cancel_steps(self, cluster: Cluster, step_ids: list[str]) -> list[dict[str, Any]]:
        """CancelSteps: PENDING and RUNNING steps are cancelled; others are reported as not cancellable."""
        results = []
        with self.changed:
            record = self._records.get(cluster.id)
            by_id = {s.id: s for s in cluster.steps}
            for step_id in step_ids:
                step = by_id.get(step_id)
                if step is None:
                    results.append({"StepId": step_id, "Status": "FAILED", "Reason": f"Step {step_id} does not exist"})
                elif step.state in ("PENDING", "RUNNING") and record is not None:
                    record.step_deadlines.pop(step.id, None)
                    self._set_step(record, step, "CANCELLED", "Cancelled by user request")
                    results.append({"StepId": step_id, "Status": "SUBMITTED", "Reason": ""})
                else:
                    results.append({"StepId": step_id, "Status": "FAILED", "Reason": f"Step is in state {step.state}"})
            self.changed.notify_all()
        return results

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    # -- the lifecycle ----------------------------------------------------------------------------------------------
    def _sleep_unless_terminated(self, record: ClusterRecord, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self.changed:
            while record.termination_reason is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.changed.wait(left)

    def _lifecycle(self, record: ClusterRecord) -> None:
        options = self._extensions.options
        cluster = record.cluster
        self._sleep_unless_terminated(record, self._seconds(options.emr_boot_seconds) / 2)
        if record.termination_reason is None:
            with self.changed:
                self._set_cluster(record, "BOOTSTRAPPING", "", "Running bootstrap actions")
            self._sleep_unless_terminated(record, self._seconds(options.emr_boot_seconds) / 2)
        with self.changed:
            if record.termination_reason is None:
                cluster.ready_datetime = _now()
                self._set_cluster(record, "WAITING", "", "Cluster ready to run steps")
            while record.termination_reason is None:
                timeout = self._advance_steps(record)
                if record.termination_reason is not None:
                    break
                self.changed.wait(timeout)
            self._terminate(record)

    def _advance_steps(self, record: ClusterRecord) -> float | None:
        """Finish due steps, start pending ones up to the concurrency level; the time until the next deadline."""
        cluster = record.cluster
        now = time.monotonic()
        for step in list(cluster.steps):
            deadline = record.step_deadlines.get(step.id)
            if step.state == "RUNNING" and deadline is not None and deadline <= now:
                del record.step_deadlines[step.id]
                failure = record.step_failures.get(step.id)
                if failure is None:
                    self._set_step(record, step, "COMPLETED")
                    continue
                self._fail_step(record, step, failure)
                if record.termination_reason is not None:
                    return None
        running = [s for s in cluster.steps if s.state == "RUNNING"]
        capacity = max(1, int(cluster.step_concurrency_level or 1)) - len(running)
        pending = sorted((s for s in cluster.steps if s.state == "PENDING"), key=lambda s: s.creation_date_time)
        duration = self._seconds(self._extensions.options.emr_step_duration)
        for step in pending[: max(0, capacity)]:
            fault = self._extensions.faults.take("emr_step", [step.name, step.id])
            if fault is not None:
                record.step_failures[step.id] = fault.cause
            step.start_date_time = _now()
            record.step_deadlines[step.id] = now + duration
            self._set_step(record, step, "RUNNING")
        busy = any(s.state in ("RUNNING", "PENDING") for s in cluster.steps)
        state = "RUNNING" if busy else "WAITING"
        if cluster.state != state:
            self._set_cluster(record, state, "", "Running steps" if busy else "Waiting after step completed")
        if not busy and not cluster.keep_job_flow_alive_when_no_steps:  # EMR's auto-termination when idle
            record.termination_reason = ("ALL_STEPS_COMPLETED", "Steps completed")
            return None
        if not record.step_deadlines:
            return None
        return max(0.0, min(record.step_deadlines.values()) - now)

    def _fail_step(self, record: ClusterRecord, step: Any, reason: str) -> None:
        cluster = record.cluster
        log_file = _join_uri(cluster.log_uri, f"{cluster.id}/steps/{step.id}/stderr.gz") if cluster.log_uri else None
        step.failure_details = {"Reason": reason, "Message": reason, "LogFile": log_file}
        self._set_step(record, step, "FAILED", reason)
        action = (step.action_on_failure or "CONTINUE").upper()
        if action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
            record.with_errors = True
            record.termination_reason = ("STEP_FAILURE", f"Shut down as step {step.id} failed")
        elif action == "CANCEL_AND_WAIT":
            for other in cluster.steps:
                if other.state == "PENDING":
                    self._set_step(record, other, "CANCELLED", f"Cancelled because step {step.id} failed")

    def _terminate(self, record: ClusterRecord) -> None:
        cluster = record.cluster
        code, message = record.termination_reason or ("USER_REQUEST", "Terminated by user request")
        for step in cluster.steps:
            if step.state == "PENDING":
                self._set_step(record, step, "CANCELLED", "Cancelled because the cluster terminated")
            elif step.state == "RUNNING":
                self._set_step(record, step, "INTERRUPTED", "Interrupted because the cluster terminated")
        record.step_deadlines.clear()
        self._set_cluster(record, "TERMINATING", code, message)
        deadline = time.monotonic() + self._seconds(self._extensions.options.emr_termination_seconds)
        while (left := deadline - time.monotonic()) > 0:
            self.changed.wait(left)
        cluster.end_datetime = _now()
        final = "TERMINATED_WITH_ERRORS" if record.with_errors else "TERMINATED"
        self._set_cluster(record, final, code, message)

    def _current_cluster_state(self, record: ClusterRecord) -> str | None:
        return getattr(record.cluster, "_datapipe_state", record.cluster.state)

    # -- state changes with their events -------------------------------------------------------------------------
    def _set_cluster(self, record: ClusterRecord, state: str, code: str, message: str) -> None:
        cluster: Any = record.cluster  # moto's Cluster gains the attributes its serializer picks up
        cluster.state = state
        cluster._datapipe_state = state
        cluster.last_state_change_reason = message
        cluster.state_change_code = code
        self.changed.notify_all()
        severity = "ERROR" if state == "TERMINATED_WITH_ERRORS" else "INFO"
        events.emit(
            record.account,
            record.region,
            source="aws.emr",
            detail_type="EMR Cluster State Change",
            detail={
                "severity": severity,
                "stateChangeReason": json.dumps({"code": code, "message": message} if code else {}),
                "name": cluster.name,
                "clusterId": cluster.id,
                "state": state,
                "message": f"Amazon EMR cluster {cluster.id} ({cluster.name}) is {state}: {message}".rstrip(": "),
            },
            resources=[],
        )

    def _set_step(self, record: ClusterRecord, step: Any, state: str, reason: str = "") -> None:
        step.state = state
        step.last_state_change_reason = reason or None
        if state in FINAL_STEP_STATES:
            step.end_date_time = _now()
        self.changed.notify_all()
        severity = "ERROR" if state == "FAILED" else ("WARN" if state in ("CANCELLED", "INTERRUPTED") else "INFO")
        events.emit(
            record.account,
            record.region,
            source="aws.emr",
            detail_type="EMR Step Status Change",
            detail={
                "severity": severity,
                "actionOnFailure": step.action_on_failure,
                "stepId": step.id,
                "name": step.name,
                "clusterId": record.cluster.id,
                "state": state,
                "message": f"Step {step.id} ({step.name}) in Amazon EMR cluster {record.cluster.id} "
                f"({record.cluster.name}) is {state}" + (f": {reason}" if reason else ""),
            },
            resources=[],
        )


def _join_uri(base: str, suffix: str) -> str:
    return base.rstrip("/") + "/" + suffix


def _step_status(self: Step) -> dict[str, Any]:
    status: dict[str, Any] = STEP_STATUS.original.fget(self)
    details = getattr(self, "failure_details", None)
    if details and self.state == "FAILED":
        status["FailureDetails"] = {k: v for k, v in details.items() if v}
    return status


def _cluster_status(self: Cluster) -> dict[str, Any]:
    status: dict[str, Any] = CLUSTER_STATUS.original.fget(self)
    code = getattr(self, "state_change_code", "")
    if code:
        status["StateChangeReason"]["Code"] = code
    return status


ENDED_CLUSTER_MESSAGE: Final = "A job flow that is shutting down, terminated, or finished may not be modified."


class KnownClusters(dict[str, Cluster]):
    """moto's `clusters` dict: every lookup of an id it lacks is EMR's answer for a cluster that does not exist."""

    def __missing__(self, cluster_id: str) -> Cluster:
        raise InvalidCluster(cluster_id)


def _know_clusters(backend: ElasticMapReduceBackend) -> None:
    if not isinstance(backend.clusters, KnownClusters):
        backend.clusters = KnownClusters(backend.clusters)


def install_backend(simulator: EmrSimulator) -> None:
    def backend_init(self: ElasticMapReduceBackend, region_name: str, account_id: str) -> None:
        BACKEND_INIT.call_original(self, region_name, account_id)
        _know_clusters(self)

    def set_termination_protection(self: ElasticMapReduceBackend, job_flow_ids: list[str], value: bool) -> None:
        clusters = [self.clusters[job_flow_id] for job_flow_id in job_flow_ids]
        if any(cluster.state not in ACTIVE_CLUSTER_STATES for cluster in clusters):
            raise ValidationException(ENDED_CLUSTER_MESSAGE)
        SET_TERMINATION_PROTECTION.call_original(self, job_flow_ids, value)

    def describe_step(self: ElasticMapReduceBackend, cluster_id: str, step_id: str) -> Step:
        step: Step | None = DESCRIBE_STEP.call_original(self, cluster_id, step_id)
        if step is None:
            raise InvalidRequestException(f"Step id '{step_id}' is not valid.")
        return step

    def run_job_flow(self: ElasticMapReduceBackend, **kwargs: Any) -> Cluster:
        cluster = RUN_JOB_FLOW.call_original(self, **kwargs)
        simulator.track(cluster)
        return cluster

    def add_job_flow_steps(self: ElasticMapReduceBackend, job_flow_id: str, steps: list[dict[str, Any]]) -> list[Step]:
        cluster = self.clusters.get(job_flow_id)
        if cluster is None:
            raise ValidationException("Specified job flow ID does not exist.")  # what EMR answers AddJobFlowSteps
        if cluster.state not in ACTIVE_CLUSTER_STATES:
            raise ValidationException(ENDED_CLUSTER_MESSAGE)
        added: list[Step] = ADD_JOB_FLOW_STEPS.call_original(self, job_flow_id, steps)
        simulator.steps_added(cluster, added)
        return added

    def terminate_job_flows(self: ElasticMapReduceBackend, job_flow_ids: list[str]) -> list[Cluster]:
        clusters = [self.describe_cluster(job_flow_id) for job_flow_id in job_flow_ids]
        if any(c.termination_protected for c in clusters):
            # What EMR answers: nothing is terminated when one of the clusters is protected.
            raise ValidationException("Could not shut down one or more job flows since they are termination protected.")
        for cluster in clusters:
            simulator.request_termination(cluster)
        return clusters

    def get_region_from_url(self: ElasticMapReduceResponse, request: Any, full_url: str) -> str:
        for regex in ElasticMapReduceResponse.emr_region_regex:
            match = regex.search(self.parsed_url.netloc)
            if match:
                return str(match.group(1))
        # Not an EMR host name: the region of the request's signature, as every other service resolves it.
        return BaseResponse.get_region_from_url(self, request, full_url)

    def cancel_steps(self: ElasticMapReduceResponse) -> ActionResult:
        cluster = self.backend.clusters[self._get_param("ClusterId")]  # an unknown id: InvalidRequestException
        step_ids = [str(step_id) for step_id in self._get_param("StepIds", [])]
        return ActionResult({"CancelStepsInfoList": simulator.cancel_steps(cluster, step_ids)})

    BACKEND_INIT.patch(backend_init)
    CANCEL_STEPS_API.patch(cancel_steps)
    SET_TERMINATION_PROTECTION.patch(set_termination_protection)
    DESCRIBE_STEP.patch(describe_step)
    for account_backends in emr_backends.values():  # backends created before the patch
        for backend in account_backends.values():
            _know_clusters(backend)
    REQUEST_REGION.patch(get_region_from_url)
    RUN_JOB_FLOW.patch(run_job_flow)
    ADD_JOB_FLOW_STEPS.patch(add_job_flow_steps)
    TERMINATE_JOB_FLOWS.patch(terminate_job_flows)
    STEP_STATUS.patch(property(_step_status))
    CLUSTER_STATUS.patch(property(_cluster_status))


# -- the Step Functions integration -------------------------------------------------------------------------------

_PARAMETERS: Final[dict[str, set[str]]] = {
    "createcluster": {
        "AdditionalInfo",
        "AmiVersion",
        "Applications",
        "AutoScalingRole",
        "AutoTerminationPolicy",
        "BootstrapActions",
        "Configurations",
        "CustomAmiId",
        "EbsRootVolumeIops",
        "EbsRootVolumeSize",
        "EbsRootVolumeThroughput",
        "Instances",
        "JobFlowRole",
        "KerberosAttributes",
        "LogEncryptionKmsKeyId",
        "LogUri",
        "ManagedScalingPolicy",
        "Name",
        "NewSupportedProducts",
        "OSReleaseLabel",
        "PlacementGroupConfigs",
        "ReleaseLabel",
        "RepoUpgradeOnBoot",
        "ScaleDownBehavior",
        "SecurityConfiguration",
        "ServiceRole",
        "StepConcurrencyLevel",
        "SupportedProducts",
        "Tags",
        "VisibleToAllUsers",
    },
    "addstep": {"ClusterId", "Step", "ExecutionRoleArn"},
    "cancelstep": {"ClusterId", "StepId"},
    "terminatecluster": {"ClusterId"},
    "setclusterterminationprotection": {"ClusterId", "TerminationProtected"},
    "modifyinstancefleetbyname": {"ClusterId", "InstanceFleetName", "InstanceFleet"},
    "modifyinstancegroupbyname": {"ClusterId", "InstanceGroupName", "InstanceGroup"},
}
_SYNC_ACTIONS: Final = {"createcluster", "addstep", "terminatecluster"}
_FAULT_NAMES: Final = {name.lower(): name for name in (
    "createCluster", "addStep", "cancelStep", "terminateCluster", "setClusterTerminationProtection",
    "modifyInstanceFleetByName", "modifyInstanceGroupByName",
)}  # fmt: skip


def _plain(value: Any) -> Any:
    """boto3 output -> the JSON Step Functions passes on (timestamps as epoch milliseconds)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


class EmrTask(StateTaskServiceCallback):
    """`arn:aws:states:::elasticmapreduce:<action>[.sync]`."""

    simulator: EmrSimulator | None = None
    extensions: Extensions | None = None

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={cast(ResourceCondition, ResourceCondition.Sync)})

    def _get_supported_parameters(self) -> set[str] | None:
        action = self.resource.api_action.lower()
        if self.resource.condition is not None and (
            self.resource.condition != ResourceCondition.Sync or action not in _SYNC_ACTIONS
        ):
            return None
        return _PARAMETERS.get(action)

    # -- failures -------------------------------------------------------------------------------------------------
    def _failure(self, env: Environment, error: str, cause: str) -> FailureEventException:
        error_name = (
            StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
            if error == "States.TaskFailed"
            else CustomErrorName(error)
        )
        return FailureEventException(
            FailureEvent(
                env=env,
                error_name=error_name,
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        )

    def _client_failure(self, env: Environment, error: ClientError | ParamValidationError) -> FailureEventException:
        if isinstance(error, ParamValidationError):
            return self._failure(
                env, EMR_ERROR, f"{error} (Service: AmazonElasticMapReduce; Error Code: ValidationException)"
            )
        code = error.response["Error"].get("Code", "ValidationException")
        message = error.response["Error"].get("Message", "")
        meta = error.response.get("ResponseMetadata", {})
        details = "; ".join(
            [
                "Service: AmazonElasticMapReduce",
                f"Status Code: {meta.get('HTTPStatusCode', 400)}",
                f"Error Code: {code}",
                f"Request ID: {meta.get('RequestId', '')}",
                "Proxy: null",
            ]
        )
        return self._failure(env, EMR_ERROR, f"{message} ({details})")

    # -- the calls ------------------------------------------------------------------------------------------------
    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        assert self.extensions is not None and self.simulator is not None  # set by install()
        action = self.resource.api_action.lower()
        fault = self.extensions.faults.take("emr_call", [_FAULT_NAMES.get(action)])
        if fault is not None:
            raise self._failure(env, fault.error, fault.cause)
        emr = clients.client("emr", resource_runtime_part.region)
        params = dict(normalised_parameters)
        try:
            result = self._call(env, action, emr, params, resource_runtime_part)
        except (ClientError, ParamValidationError) as error:
            raise self._client_failure(env, error) from None
        env.stack.append(result)

    def _call(
        self, env: Environment, action: str, emr: Any, params: dict[str, Any], where: ResourceRuntimePart
    ) -> dict[str, Any]:
        if action == "createcluster":
            instances = params.get("Instances") or {}
            if instances.get("KeepJobFlowAliveWhenNoSteps") is not True:
                raise self._failure(
                    env,
                    EMR_ERROR,
                    "The createCluster integration requires Instances.KeepJobFlowAliveWhenNoSteps to be true "
                    "(Service: AmazonElasticMapReduce; Error Code: ValidationException)",
                )
            response = emr.run_job_flow(**params)
            cluster_id = response["JobFlowId"]
            self._store_request_extras(cluster_id, params, where)
            return {"ClusterId": cluster_id, "ClusterArn": response.get("ClusterArn")}
        if action == "addstep":
            step = dict(params["Step"]) if isinstance(params.get("Step"), dict) else params.get("Step")
            kwargs: dict[str, Any] = {"JobFlowId": params.get("ClusterId"), "Steps": [step]}
            if params.get("ExecutionRoleArn"):
                kwargs["ExecutionRoleArn"] = params["ExecutionRoleArn"]
            response = emr.add_job_flow_steps(**kwargs)
            return {"StepId": response["StepIds"][0]}
        if action == "cancelstep":
            return self._cancel_step(params, where)
        if action == "terminatecluster":
            emr.terminate_job_flows(JobFlowIds=[params.get("ClusterId")])
            return {}
        if action == "setclusterterminationprotection":
            emr.set_termination_protection(
                JobFlowIds=[params.get("ClusterId")], TerminationProtected=params.get("TerminationProtected")
            )
            return {}
        if action == "modifyinstancefleetbyname":
            return self._modify_fleet(env, params, where)
        if action == "modifyinstancegroupbyname":
            return self._modify_group(env, emr, params, where)
        raise self._failure(env, "States.Runtime", f"Unsupported EMR action {self.resource.api_action}")

    def _backend(self, where: ResourceRuntimePart) -> ElasticMapReduceBackend:
        return emr_backends[where.account][where.region]

    def _cluster(self, cluster_id: Any, where: ResourceRuntimePart) -> Cluster:
        cluster = self._backend(where).clusters.get(str(cluster_id))
        if cluster is None:
            raise ClientError(
                {"Error": {"Code": "InvalidRequestException", "Message": f"Cluster id '{cluster_id}' is not valid."}},
                "DescribeCluster",
            )
        return cluster

    def _store_request_extras(self, cluster_id: str, params: dict[str, Any], where: ResourceRuntimePart) -> None:
        """What moto's RunJobFlow drops but the request had: fleets, the auto-termination policy, tags."""
        cluster: Any = self._cluster(cluster_id, where)
        instances = params.get("Instances") or {}
        fleets = instances.get("InstanceFleets")
        if fleets:
            cluster.instance_collection_type = "INSTANCE_FLEET"
            cluster.instance_fleets = [{**fleet, "Id": f"if-{cluster_id[2:]}{n}"} for n, fleet in enumerate(fleets)]
        elif instances.get("InstanceGroups") or instances.get("MasterInstanceType"):
            cluster.instance_collection_type = "INSTANCE_GROUP"
        if params.get("AutoTerminationPolicy"):
            cluster.auto_termination_policy = dict(params["AutoTerminationPolicy"])
        tags = params.get("Tags") or []
        if tags:
            cluster.add_tags({t["Key"]: t.get("Value", "") for t in tags})

    def _cancel_step(self, params: dict[str, Any], where: ResourceRuntimePart) -> dict[str, Any]:
        assert self.simulator is not None
        cluster = self._cluster(params.get("ClusterId"), where)
        return {"CancelStepsInfoList": self.simulator.cancel_steps(cluster, [str(params.get("StepId"))])}

    def _modify_fleet(self, env: Environment, params: dict[str, Any], where: ResourceRuntimePart) -> dict[str, Any]:
        cluster = self._cluster(params.get("ClusterId"), where)
        name = params.get("InstanceFleetName")
        for fleet in getattr(cluster, "instance_fleets", []):
            if fleet.get("Name") == name:
                fleet.update({k: v for k, v in (params.get("InstanceFleet") or {}).items() if k != "InstanceFleetId"})
                return {}
        raise self._failure(
            env,
            EMR_ERROR,
            f"Instance fleet {name!r} does not exist in cluster {cluster.id} (Error Code: ValidationException)",
        )

    def _modify_group(
        self, env: Environment, emr: Any, params: dict[str, Any], where: ResourceRuntimePart
    ) -> dict[str, Any]:
        cluster = self._cluster(params.get("ClusterId"), where)
        name = params.get("InstanceGroupName")
        group = next((g for g in cluster.instance_groups if g.name == name), None)
        if group is None:
            raise self._failure(
                env,
                EMR_ERROR,
                f"Instance group {name!r} does not exist in cluster {cluster.id} (Error Code: ValidationException)",
            )
        change = dict(params.get("InstanceGroup") or {})
        if "InstanceCount" in change:
            emr.modify_instance_groups(
                ClusterId=cluster.id,
                InstanceGroups=[{"InstanceGroupId": group.id, "InstanceCount": int(change["InstanceCount"])}],
            )
        return {}

    # -- .sync ------------------------------------------------------------------------------------------------------
    def _eval_integration_pattern(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        assert self.simulator is not None and self.extensions is not None
        submitted = env.stack.pop()
        action = self.resource.api_action.lower()
        cluster_id = submitted["ClusterId"] if action == "createcluster" else normalised_parameters["ClusterId"]
        submitted_at = time.monotonic()
        while env.is_running():
            scale = self.extensions.options.sync_check_scale
            if scale is None:
                scale = self.extensions.options.wait_scale
            if scale > 0:  # the next of Step Functions' checks, scaled; ends early when the execution stops
                elapsed = (time.monotonic() - submitted_at) / scale
                waits.scaled_wait(env, next_sync_check(elapsed) - elapsed, scale)
                if not env.is_running():
                    break
            if action == "createcluster":
                result = self._cluster_ready(env, cluster_id, resource_runtime_part)
            elif action == "addstep":
                result = self._step_done(env, cluster_id, submitted["StepId"], resource_runtime_part)
            else:
                result = self._cluster_gone(env, cluster_id, resource_runtime_part)
            if result is not None:
                env.stack.append(result)
                return
            if scale <= 0:
                self.simulator.wait_for_change(self.extensions.options.poll_interval)
        # Stopped (StopExecution, a timeout of the state): the interpreter discards this value.
        env.stack.append({})

    def _describe_cluster(self, cluster_id: str, where: ResourceRuntimePart) -> dict[str, Any]:
        described = clients.client("emr", where.region).describe_cluster(ClusterId=cluster_id)["Cluster"]
        cluster = _plain(described)
        cluster["ClusterId"] = cluster_id
        return cluster

    def _cluster_ready(self, env: Environment, cluster_id: str, where: ResourceRuntimePart) -> Any:
        state = self._cluster(cluster_id, where).state
        if state in ("WAITING", "RUNNING"):
            return self._describe_cluster(cluster_id, where)
        if state in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
            raise self._failure(env, "States.TaskFailed", json.dumps(self._describe_cluster(cluster_id, where)))
        return None

    def _cluster_gone(self, env: Environment, cluster_id: str, where: ResourceRuntimePart) -> Any:
        state = self._cluster(cluster_id, where).state
        if state == "TERMINATED":
            return self._describe_cluster(cluster_id, where)
        if state == "TERMINATED_WITH_ERRORS":
            raise self._failure(env, "States.TaskFailed", json.dumps(self._describe_cluster(cluster_id, where)))
        return None

    def _step_done(self, env: Environment, cluster_id: str, step_id: str, where: ResourceRuntimePart) -> Any:
        cluster = self._cluster(cluster_id, where)
        step = next((s for s in cluster.steps if s.id == step_id), None)
        if step is None or step.state not in FINAL_STEP_STATES:
            return None
        described = _plain(clients.client("emr", where.region).describe_step(ClusterId=cluster_id, StepId=step_id))
        result = {**described["Step"], "StepId": step_id}
        if step.state == "COMPLETED":
            return result
        raise self._failure(env, "States.TaskFailed", json.dumps(result))


def install(simulator: EmrSimulator, extensions: Extensions) -> None:
    install_backend(simulator)
    EmrTask.simulator = simulator
    EmrTask.extensions = extensions

    def state_task_service_for(service_name: str) -> StateTaskService:
        if service_name == "elasticmapreduce":
            return EmrTask()
        result: StateTaskService = SERVICE_FACTORY.call_original(service_name)
        return result

    SERVICE_FACTORY.patch(state_task_service_for)
