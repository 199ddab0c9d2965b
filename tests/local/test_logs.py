"""The emulator's internal log: to its file always, to the console only with --verbose."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from datapipe.local.logs import internal_logs

MESSAGE = "Exception=FailureEventException, Error=States.Runtime at '<StateChoice object at 0x7f>'"


@pytest.mark.parametrize("verbose", [False, True])
def test_internal_messages_reach_the_file_and_the_console_only_when_verbose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], verbose: bool
) -> None:
    log_file = tmp_path / ".datapipe" / "local.log"
    interpreter = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
    with internal_logs(log_file, verbose=verbose):
        interpreter.error(MESSAGE)
        logging.getLogger("datapipe.other").warning("not an internal message")
    assert MESSAGE in log_file.read_text()
    assert "not an internal message" not in log_file.read_text()
    shown = capfd.readouterr().err
    assert (MESSAGE in shown) is verbose
    assert logging.getLogger("moto").propagate  # given back as it was
    assert not logging.getLogger("moto").handlers
