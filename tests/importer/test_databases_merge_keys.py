"""What the importer plans for a RedshiftCopyActivity's merge key, and COPY's READRATIO from DynamoDB.

- KEEP_EXISTING and OVERWRITE_EXISTING match rows on the table's primary key; the RedshiftDataNode's primaryKeys, when
  given, overrides it (Data Pipeline's reference, insertMode and primaryKeys). A createTableSql with a PRIMARY KEY
  fixes it too. Otherwise the run reads it from the catalog (its states: tests/importer/test_databases.py; its runs:
  tests/e2e/test_redshift_merge_keys_e2e.py), and the report says so.
- Redshift's COPY from DynamoDB requires READRATIO: readThroughputPercent gives it, else 25 (reported).
"""

from __future__ import annotations

from typing import Any

import pytest

from datapipe.importer.plan import Plan

from .test_databases import HOST, LOAD, ORDERS, ORDERS_IN, TSV, WAREHOUSE, plan_of

KEYLESS = {k: v for k, v in ORDERS.items() if k not in ("primaryKeys", "createTableSql")}
RUN_TIME_MERGE = ("{the OVERWRITE_EXISTING merge on the primary key of Sales.orders, read from the catalog when the "
                  "run starts}")


def report_of(plan: Plan, object_id: str) -> str:
    return next(o.reason or "" for o in plan.objects if o.id == object_id)


def test_a_merge_without_a_key_in_the_definition_is_planned_on_the_tables_own_key() -> None:
    plan = plan_of(WAREHOUSE, ORDERS_IN, TSV, {**KEYLESS, "schemaName": "Sales"}, LOAD, HOST)
    assert plan.deployable, plan.errors
    work = plan.activities[0].sql.redshift  # type: ignore[union-attr]
    assert work is not None and work.merge_from_catalog is not None
    merge = work.merge_from_catalog
    # the catalog stores unquoted names folded to lower case: Sales.orders is sales / orders
    assert (merge.schema_name, merge.table_name, merge.mode, merge.source, merge.table, merge.index) == (
        "sales", "orders", "OVERWRITE_EXISTING", "staging", "Sales.orders", 2)
    assert work.sqls == [
        "CREATE TEMP TABLE staging (LIKE Sales.orders)",
        "COPY staging FROM 's3://incoming/orders.tsv' IAM_ROLE default DELIMITER '\\t'",
        RUN_TIME_MERGE,
        "INSERT INTO Sales.orders SELECT * FROM staging",
        "DROP TABLE staging",
    ]
    assert "merges on the primary key of Sales.orders, read from the cluster's catalog when the run starts" in \
        report_of(plan, "Load")


def test_keep_existing_after_a_transform_merges_from_the_transforms_table() -> None:
    load = {**LOAD, "insertMode": "KEEP_EXISTING", "transformSql": "select id, amount from staging"}
    plan = plan_of(WAREHOUSE, ORDERS_IN, TSV, KEYLESS, load, HOST)
    merge = plan.activities[0].sql.redshift.merge_from_catalog  # type: ignore[union-attr]
    # no schemaName: PUBLIC, as the RedshiftDataNode's reference says
    assert merge is not None and (merge.schema_name, merge.table_name, merge.mode, merge.source, merge.index) == (
        "public", "orders", "KEEP_EXISTING", "staging2", 3)


@pytest.mark.parametrize("node", [ORDERS, {**KEYLESS, "primaryKeys": ["id"]},
                                  {**KEYLESS, "createTableSql": "create table orders (id int primary key, n int)"}])
def test_a_key_the_definition_gives_is_merged_on_as_written_with_no_catalog_query(node: dict[str, Any]) -> None:
    plan = plan_of(WAREHOUSE, ORDERS_IN, TSV, node, LOAD, HOST)
    work = plan.activities[0].sql.redshift  # type: ignore[union-attr]
    assert work is not None and work.merge_from_catalog is None
    assert "DELETE FROM orders USING staging WHERE orders.id = staging.id" in work.sqls
    assert "catalog" not in report_of(plan, "Load")


@pytest.mark.parametrize("mode", ["APPEND", "TRUNCATE"])
def test_modes_that_match_no_rows_need_no_key(mode: str) -> None:
    plan = plan_of(WAREHOUSE, ORDERS_IN, TSV, KEYLESS, {**LOAD, "insertMode": mode}, HOST)
    assert plan.deployable and plan.activities[0].sql.redshift.merge_from_catalog is None  # type: ignore[union-attr]


DYNAMODB = {"id": "Input", "type": "DynamoDBDataNode", "tableName": "Orders"}


@pytest.mark.parametrize(("node", "options", "copy", "noted"), [
    # no readThroughputPercent: READRATIO 25, reported on the activity
    ({}, [], "COPY staging FROM 'dynamodb://Orders' IAM_ROLE default READRATIO 25", True),
    # readThroughputPercent 0.4 is 40 percent
    ({"readThroughputPercent": "0.4"}, [], "COPY staging FROM 'dynamodb://Orders' IAM_ROLE default READRATIO 40",
     False),
    # a READRATIO among commandOptions is the user's: no second one
    ({}, ["readratio 60"], "COPY staging FROM 'dynamodb://Orders' IAM_ROLE default readratio 60", False),
])
def test_a_copy_from_dynamodb_always_has_a_read_ratio(node: dict[str, Any], options: list[str], copy: str,
                                                      noted: bool) -> None:
    load = {**LOAD, "input": {"ref": "Input"}, "insertMode": "APPEND", **({"commandOptions": options} if options
                                                                          else {})}
    plan = plan_of(WAREHOUSE, {**DYNAMODB, **node}, ORDERS, load, HOST)
    assert plan.deployable, plan.errors
    assert plan.activities[0].sql.redshift.sqls[2] == copy  # type: ignore[union-attr]
    assert ("READRATIO 25 (Redshift requires one): Input gives no readThroughputPercent" in report_of(plan, "Load")) \
        is noted


@pytest.mark.parametrize("percent", ["0.05", "1.5", "x" * 100_000])
def test_a_read_throughput_out_of_range_is_refused_in_one_short_line(percent: str) -> None:
    load = {**LOAD, "input": {"ref": "Input"}, "insertMode": "APPEND"}
    plan = plan_of(WAREHOUSE, {**DYNAMODB, "readThroughputPercent": percent}, ORDERS, load, HOST)
    assert not plan.deployable
    assert any(e.startswith("Input.readThroughputPercent:") and "between 0.1 and 1.0" in e and len(e) < 200
               for e in plan.errors), plan.errors
