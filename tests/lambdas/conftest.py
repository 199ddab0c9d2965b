"""Fixtures of the Lambda handler tests: Powertools set up for tests, moto's EMR and a Lambda context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.lambdas.emr_helpers import FakeLambdaContext, mocked_emr, powertools_for_tests


@pytest.fixture(autouse=True)
def _powertools(monkeypatch: pytest.MonkeyPatch) -> None:
    powertools_for_tests(monkeypatch)


@pytest.fixture()
def emr() -> Iterator[Any]:
    with mocked_emr() as client:
        yield client


@pytest.fixture()
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
