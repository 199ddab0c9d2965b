"""The entry point a transform's job runs: every value it is given is checked as data, each failure one line."""

from __future__ import annotations

import pytest

from datapipe.bundles import entrypoint
from datapipe.bundles.names import JOB_PARAMETER_DEFAULTS, job_command

WORDCOUNT = "examples.transforms.wordcount.WordCount"
VALUES = {
    "remote": "s3://bundle-remote/team",
    "context": "default",
    "input": "words",
    "inputVersion": "4c0f3b52-7b8e-4a55-9a3e-0e8c1d7f2a10",
    "output": "counts",
    "outputVersion": "1f3b0a2c-5d4e-4f60-8a7b-9c0d1e2f3a4b",
    "outputTags": "{}",
    "parameters": "{}",
}


def arguments(**changed: str) -> list[str]:
    """The job definition's command after AWS Batch filled its placeholders, without `python -m ...`."""
    values = {**VALUES, **changed}
    return [values.get(part.removeprefix("Ref::"), part) if part.startswith("Ref::") else part
            for part in job_command(WORDCOUNT)][3:]  # fmt: skip


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert entrypoint.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    return lines[0]


def test_a_job_submitted_without_a_parameter_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    # What Batch passes when SubmitJob gave no `remote` and the job definition has no default for it.
    line = one_error_line(capsys, arguments(remote="Ref::remote"))
    assert line == "Error: --remote: the job was submitted without its parameter 'remote'"


def test_the_job_definition_defaults_stand_for_no_tags_and_no_parameters() -> None:
    assert JOB_PARAMETER_DEFAULTS == {"outputTags": "{}", "parameters": "{}"}
    assert entrypoint.string_object(JOB_PARAMETER_DEFAULTS["parameters"], what="--parameters") == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --transform, --backend"),
        ([*arguments(), "--command", "sh"], "unrecognized arguments: --command sh"),
        (arguments(output="--output-version"), "argument --output: expected one argument"),
        (arguments(outputTags='{"k": ["v"]}'), "--output-tags: the value of 'k' must be a string, got ['v']"),
        (arguments(outputTags="[" * 100_000), "--output-tags nests arrays or objects too deeply to be read"),
        (arguments(parameters='{"min_length": "3"'), "--parameters is not JSON: Expecting ',' delimiter"),
        (arguments(outputVersion="latest"), "version 'latest' is not a bundle uuid"),
        (arguments(input="words\nrm -rf /"), "--input name 'words\\nrm -rf /' must be letters"),
    ],
    ids=["nothing", "extra-option", "option-as-value", "list-as-tag", "deep-json", "broken-json", "bad-uuid",
         "newline"],
)
def test_bad_values_are_one_line_and_run_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in one_error_line(capsys, argv)
