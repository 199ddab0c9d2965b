"""The merge-keys function: the catalog's key columns (GetStatementResult's answer) become the merge statement, each
column checked and quoted; anything else is one line naming the table and the column, and nothing is written.

Expected statements are worked by hand from Redshift's staging-table merge (Data Pipeline's insertMode reference):
OVERWRITE_EXISTING deletes the table's rows whose key is staged, KEEP_EXISTING inserts the staged rows whose key is
not in the table.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lambdas.merge_keys import handler as merge_keys

NO_KEY = ("Load: table PUBLIC.t1 has no primary key (or does not exist), and the definition names none: give the "
          "RedshiftDataNode primaryKeys")


def result(*names: Any, next_token: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"Records": [[{"stringValue": name}] for name in names], "TotalNumRows": len(names)}
    return {**answer, "NextToken": next_token} if next_token else answer


def request(answer: Any, **changes: Any) -> dict[str, Any]:
    return {"mode": "OVERWRITE_EXISTING", "table": "PUBLIC.t1", "source": "staging", "where": "Load",
            "result": answer, **changes}


def test_overwrite_existing_deletes_the_staged_keys_of_a_single_column_key(lambda_context: Any) -> None:
    assert merge_keys.handler(request(result("id")), lambda_context) == {
        "statement": 'DELETE FROM PUBLIC.t1 USING staging WHERE t1."id" = staging."id"'}


def test_keep_existing_inserts_the_rows_of_a_composite_key_not_yet_in_the_table(lambda_context: Any) -> None:
    answer = merge_keys.handler(request(result("region", "Day$1"), mode="KEEP_EXISTING", table="sales.orders",
                                        source="staging2"), lambda_context)
    assert answer == {"statement": 'INSERT INTO sales.orders SELECT staging2.* FROM staging2 WHERE NOT EXISTS '
                      '(SELECT 1 FROM sales.orders WHERE orders."region" = staging2."region" AND orders."Day$1" = '
                      'staging2."Day$1")'}


@pytest.mark.parametrize(("answer", "message"), [
    (result(), NO_KEY),
    (result('a"b'), "Load: table PUBLIC.t1 has the key column 'a\"b', which is not a plain name"),
    (result("id", "x; drop table t1; --"), "Load: table PUBLIC.t1 has the key column 'x; drop table t1; --',"),
    (result("a\nb"), "Load: table PUBLIC.t1 has the key column 'a\\nb', which"),
    (result("é"), "Load: table PUBLIC.t1 has the key column 'é', which"),
    (result("9lives"), "Load: table PUBLIC.t1 has the key column '9lives', which"),
    (result("k" * 128), f"Load: table PUBLIC.t1 has the key column '{'k' * 80}', which"),  # 127 bytes at most
    (result("id", next_token="more"), "Load: the key of table PUBLIC.t1 could not be read from the catalog"),
    (result(*(f"c{n}" for n in range(1001))), "Load: the key of table PUBLIC.t1 could not be read"),
    ({"Records": [[{"longValue": 1}]]}, "Load: table PUBLIC.t1 has the key column \"[{'longValue': 1}]\", which"),
    ({"Records": "id"}, "Load: the key of table PUBLIC.t1 could not be read from the catalog"),
    (None, "Load: the key of table PUBLIC.t1 could not be read from the catalog"),
])
def test_a_key_that_is_missing_or_not_plain_is_refused_in_one_line(lambda_context: Any, answer: Any,
                                                                   message: str) -> None:
    refused = merge_keys.handler(request(answer), lambda_context)
    assert list(refused) == ["refused"] and refused["refused"].startswith(message), refused
    assert "\n" not in refused["refused"] and len(refused["refused"]) < 300


def test_the_longest_plain_name_is_accepted() -> None:
    assert merge_keys.merge_answer(request(result("k" * 127)))["statement"].endswith(f'staging."{"k" * 127}"')


@pytest.mark.parametrize(("changes", "message"), [
    ({"mode": "APPEND"}, "Load.insertMode: 'APPEND' merges on no key"),
    ({"table": "t1; drop table t2"}, "Load: the request's table 't1; drop table t2' or source"),
    ({"source": "users"}, "Load: the request's table 'PUBLIC.t1' or source 'users'"),
    ({"where": None}, "field 'where' of the request must be a non-empty string"),
])
def test_a_request_the_importer_would_not_write_is_refused(changes: dict[str, Any], message: str) -> None:
    assert merge_keys.merge_answer(request(result("id"), **changes))["refused"].startswith(message)


def test_hostile_sizes_are_refused_quickly_and_shortly() -> None:
    started = time.perf_counter()
    for answer in (result("k" * 1_000_000), result(*(["id"] * 5_000))):
        assert len(merge_keys.merge_answer(request(answer))["refused"]) < 300
    assert merge_keys.merge_answer([])["refused"].startswith("the request must be a JSON object")
    assert time.perf_counter() - started < 1.0
