"""The merge statement of a RedshiftCopyActivity whose definition names no key, from the table's own primary key.

The workflow has asked the cluster's catalog for the key columns (a fixed query, the schema and table bound as
parameters) and read the answer with getStatementResult; it sends this function the answer's `records` beside the
workflow's constants (`mode`, `table`, `source`, `where`: the definition's, fixed at import). The function calls no
service: the Data API lets only the identity that ran a statement read its result, so the state machine reads it.

The answer is `{"statement": <the merge statement>}`, each key column checked to be a plain name and quoted
(datapipe.databases.merge_keys, which the importer uses for keys the definition gives), or `{"refused": <one line
naming the table and column>}`, on which the workflow fails the run: a table without a primary key, or a column name
that is not a plain identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from datapipe.databases.merge_keys import merge_statement_from_catalog
from datapipe.errors import DatapipeError

logger = Logger()
metrics = Metrics(namespace="datapipe")
# As in the run-values function: a Tracer only where Powertools traces, patching nothing (this function calls out to no
# service, and Powertools' default would import every library the X-Ray SDK supports).
TRACED_LIBRARIES: tuple[str, ...] = ()
tracer = None if Tracer._is_tracer_disabled() else Tracer(patch_modules=TRACED_LIBRARIES)


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, str]:
    return _powertools_handle(event, context)


def _handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, str]:
    answer = merge_answer(event)
    metrics.add_metric(name="MergeKeysRefused" if "refused" in answer else "MergeKeys", unit=MetricUnit.Count, value=1)
    return answer


_traced_handle = _handle if tracer is None else tracer.capture_lambda_handler(_handle)
_powertools_handle = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(_traced_handle))


def merge_answer(request: Any) -> dict[str, str]:
    """The merge statement, or the one-line reason the run cannot merge."""
    try:
        return {"statement": merge_statement_from_catalog(request)}
    except DatapipeError as error:
        logger.info("merge refused", extra={"reason": str(error)})
        return {"refused": str(error)}
