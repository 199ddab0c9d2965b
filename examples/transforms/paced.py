"""A transform for watching runs: it prints numbered lines at a pace, writes `message` into its output, and fails on
request. Tests use it to follow a job's log while it runs and to see a transform fail with a known error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from datapipe.bundles.transform import InputBundle, OutputBundle, ParameterValue, Transform


class Paced(Transform):
    """Prints `lines` lines `pause` seconds apart; writes message.txt holding `message`, or raises when `fail`."""

    parameters: ClassVar[Mapping[str, ParameterValue]] = {"lines": 1, "pause": 0.0, "fail": False, "message": ""}

    def run(self, inputs: InputBundle, outputs: OutputBundle, params: Mapping[str, Any]) -> None:
        for number in range(1, params["lines"] + 1):
            if number > 1:
                time.sleep(params["pause"])
            print(f"line {number} of {params['lines']} from {inputs.name}", flush=True)
        if params["fail"]:
            raise RuntimeError(f"failed on request after {params['lines']} lines")
        outputs.write_text("message.txt", params["message"])
        outputs.tags["lines"] = str(params["lines"])
