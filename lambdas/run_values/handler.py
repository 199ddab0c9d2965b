"""The values of an imported pipeline's expressions on the run's own times, evaluated when a run starts.

Step Functions has no date arithmetic, so a workflow whose definition uses `minusDays(@scheduledStartTime,1)`,
`format(@scheduledStartTime,'EEE hh a')`, `@scheduledEndTime` and the like invokes this function once, first thing.
The expressions are the state's fixed payload, written by the importer from the definition (`expressions`: a JSON
object of name -> tree, see `datapipe.datefunctions`); the execution gives only the times, which must be timestamps:
`time` (its `scheduledStartTime`, else its start) and `actualStartTime` (its start). The answer maps each name to
its text; the later states read it as `$.runtime.<name>`, and tasks get the values as data. A bad request fails the
invocation with an `ExpressionError` whose one-line message names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from datapipe.databases.literal_values import check_literal_values
from datapipe.datefunctions import ExpressionError, evaluate_all, parse_time

logger = Logger()
metrics = Metrics(namespace="datapipe")
# Importing the X-Ray SDK costs more than importing boto3, and a Tracer imports it even when it will not trace:
# the Tracer exists only where Powertools traces (in Lambda, unless POWERTOOLS_TRACE_DISABLED is true).
# It patches nothing: this function calls out to no service (Powertools' default patches and imports every library
# the X-Ray SDK supports that can be imported: HTTP clients, database drivers).
TRACED_LIBRARIES: tuple[str, ...] = ()
tracer = None if Tracer._is_tracer_disabled() else Tracer(patch_modules=TRACED_LIBRARIES)


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, str]:
    return _powertools_handle(event, context)


def _handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        values = run_values(event)
    except ExpressionError:
        # The run fails with this error (its state catches nothing); the count shows refused runs on the dashboard.
        metrics.add_metric(name="RunValuesRefused", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="RunValues", unit=MetricUnit.Count, value=len(values))
    return values


# Powertools wraps an inner function so that `handler` stays a plain, typed entry point.
_traced_handle = _handle if tracer is None else tracer.capture_lambda_handler(_handle)
_powertools_handle = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(_traced_handle))


def run_values(request: Any) -> dict[str, str]:
    """Each expression of the request as text, from the request's times; ExpressionError for a bad request."""
    if not isinstance(request, Mapping):
        raise ExpressionError("the request must be a JSON object with 'time', 'actualStartTime' and 'expressions'")
    expressions = request.get("expressions")
    if not isinstance(expressions, str):
        raise ExpressionError("field 'expressions' must be the JSON text of the pipeline's expressions")
    times = {"scheduledStartTime": parse_time(request.get("time"), "time"),
             "actualStartTime": parse_time(request.get("actualStartTime"), "actualStartTime")}
    values = evaluate_all(expressions, times)
    check_literal_values(request.get("checked"), expressions, values)  # values that SQL text holds
    return values
