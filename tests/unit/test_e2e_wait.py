"""`wait_for`, the end-to-end tests' wait: an outcome is seen within milliseconds, and a long wait probes no faster
than the interval asks."""

from __future__ import annotations

import pytest

from tests.e2e import helpers


def test_the_first_probes_come_quickly_then_no_faster_than_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(helpers.time, "sleep", pauses.append)
    answers = iter([None] * 10 + ["done"])

    assert helpers.wait_for("the tenth probe", lambda: next(answers), timeout=60, interval=0.1) == "done"

    assert pauses[:5] == pytest.approx([0.01, 0.015, 0.0225, 0.03375, 0.050625])
    assert pauses[5:] == pytest.approx([0.0759375, 0.1, 0.1, 0.1, 0.1])


def test_an_interval_shorter_than_the_first_pause_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(helpers.time, "sleep", pauses.append)
    answers = iter([None, None, True])

    helpers.wait_for("the third probe", lambda: next(answers), interval=0.005)

    assert pauses == [0.005, 0.005]


def test_a_wait_that_never_ends_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"^timed out after 0\.05 s waiting for the moon$"):
        helpers.wait_for("the moon", lambda: None, timeout=0.05)
