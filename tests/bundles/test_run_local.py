"""`datapipe run --backend local`: the transform runs in a fresh process against the remote, as in a container."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from datapipe.bundles.remote import Remote
from datapipe.bundles.store import LocalContext
from datapipe.bundles.transform import code_version, load_transform
from tests.bundles.conftest import PROJECT_DIR, assert_one_line_error, invoke

WORDCOUNT = "examples.transforms.wordcount.WordCount"


@pytest.fixture()
def remote_url(served_s3: tuple[Any, str], data_dir: Path, words: Path) -> str:
    _, url = served_s3
    assert invoke("remote", "default", url).exit_code == 0
    assert invoke("bundle", "commit", "words", str(words), "-t", "stage:raw").exit_code == 0
    return url


def run(*args: str) -> Any:
    return invoke("run", "--pipe-root", str(PROJECT_DIR), "--json", *args)


def test_local_run_makes_an_output_version_with_lineage(remote_url: str, data_dir: Path) -> None:
    result = run("words", "counts", WORDCOUNT, "min_length=3", "-it", "stage:raw", "-ot", "stage:counted")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["status"] == "done"

    context = LocalContext(data_dir, "default")
    words = context.find("words")
    counts = context.find("counts")
    assert counts.uuid == summary["uuid"]
    lineage = counts.lineage
    assert lineage.transform == WORDCOUNT
    assert [(i.name, i.uuid) for i in lineage.inputs] == [("words", words.uuid)]
    assert lineage.code_version == code_version(load_transform(WORDCOUNT, PROJECT_DIR))
    assert lineage.parameters == {"min_length": "3"}
    assert lineage.backend == "local"
    assert counts.tags == {"stage": "counted", "words": "8", "distinct": "5"}
    with (context.files_dir(counts) / "counts.csv").open() as stream:
        rows = list(csv.reader(stream))
    assert rows == [
        ["word", "count"],
        ["the", "3"],
        ["cat", "2"],
        ["and", "1"],
        ["hat", "1"],
        ["sat", "1"],
    ]
    # Pushed by the transform's process, then pulled back: the remote holds the input and the output.
    remote = Remote(remote_url, "default")
    assert {m.name for m in remote.versions()} == {"words", "counts"}


def test_the_same_run_again_is_up_to_date_unless_forced(remote_url: str, data_dir: Path) -> None:
    first = json.loads(run("words", "counts", WORDCOUNT).output)
    again = json.loads(run("words", "counts", WORDCOUNT).output)
    assert again == {"status": "up-to-date", "output": "counts", "uuid": first["uuid"]}
    other_params = json.loads(run("words", "counts", WORDCOUNT, "top=1").output)
    assert other_params["status"] == "done" and other_params["uuid"] != first["uuid"]
    forced = json.loads(run("words", "counts", WORDCOUNT, "--force").output)
    assert forced["status"] == "done" and forced["uuid"] != first["uuid"]
    assert len(LocalContext(data_dir, "default").versions("counts")) == 3


def test_a_transform_that_raises_leaves_no_output_version(remote_url: str, data_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n")
    invoke("bundle", "commit", "tables", str(table))
    result = run("tables", "counts", WORDCOUNT)
    assert_one_line_error(
        result,
        f"transform '{WORDCOUNT}' raised ValueError: input bundle 'tables' holds no .txt file; no output was pushed",
        "(log: ",
        exit_code=1,
    )
    log = Path(result.output.rsplit("(log: ", 1)[1].rstrip(")\n"))
    assert "Traceback" in log.read_text()  # the whole story is kept for the user
    assert LocalContext(data_dir, "default").versions("counts") == []
    assert Remote(remote_url, "default").versions("counts") == []


def test_no_push_input_uses_the_remote_copy(remote_url: str, data_dir: Path) -> None:
    assert_one_line_error(run("words", "counts", WORDCOUNT, "--no-push-input"), "bundle 'words' is not on remote")
    invoke("bundle", "push", "words")
    context = LocalContext(data_dir, "default")
    context.remove(context.find("words"))
    result = run("words", "counts", WORDCOUNT, "--no-push-input")
    assert json.loads(result.output)["status"] == "done", result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["words", "counts", "examples.transforms.nowhere.Count"], "module 'examples.transforms.nowhere' does not"),
        (["words", "counts", "examples.transforms.wordcount.Missing"], "has no class 'Missing'"),
        (["words", "counts", "examples.transforms.wordcount.Counter"], "is not a subclass of"),
        (["words", "counts", "wordcount"], "must be a class path such as module.submodule.Class"),
        (["words", "counts", WORDCOUNT, "colour=red"], "has no parameter 'colour'; it declares: min_length, top"),
        (["words", "counts", WORDCOUNT, "top=many"], "parameter 'top' must be of type int, got 'many'"),
        (["words", "counts", WORDCOUNT, "top"], "parameter 'top' must be NAME=VALUE"),
        (["words", "counts", WORDCOUNT, "-it", "stage:gold"], "bundle 'words' has no version tagged stage:gold"),
        (["lyrics", "counts", WORDCOUNT], "bundle 'lyrics' is not in context 'default'"),
        (["words", "bad/name", WORDCOUNT], "bundle name 'bad/name'"),
    ],
)
def test_bad_run_input_is_one_line_and_makes_nothing(
    remote_url: str, data_dir: Path, args: list[str], message: str
) -> None:
    assert_one_line_error(run(*args), message)
    assert LocalContext(data_dir, "default").versions("counts") == []


def test_run_without_a_remote_says_how_to_set_one(data_dir: Path, words: Path) -> None:
    invoke("bundle", "commit", "words", str(words))
    assert_one_line_error(run("words", "counts", WORDCOUNT), "context 'default' has no remote; set one with")


PACED = "examples.transforms.paced.Paced"


def test_hostile_values_are_arguments_of_their_own_in_a_local_run(
    remote_url: str, data_dir: Path, tmp_path: Path
) -> None:
    """The same values as a Batch job's, on the entry point's command line: never a shell, never an option."""
    witness = tmp_path / "pwned"
    message = f"$(touch {witness})\n--transform=os.system --backend local\nRef::remote; touch {witness}"
    result = run("words", "echoed", PACED, f"message={message}", "-ot", f"note:`touch {witness}`\nline two")
    assert result.exit_code == 0, result.output
    echoed = LocalContext(data_dir, "default").find("echoed")
    assert (LocalContext(data_dir, "default").files_dir(echoed) / "message.txt").read_text() == message
    assert echoed.tags["note"] == f"`touch {witness}`\nline two"
    assert not witness.exists()


def test_values_too_large_for_a_batch_job_are_refused_locally_too(remote_url: str, data_dir: Path) -> None:
    # {"message": "..."} is 13 + 24,570 + 2 bytes, the output tags {"k": ""} 9 more: 24,594 > 24,576 (24 KiB).
    result = run("words", "echoed", PACED, "message=" + "m" * 24_570, "-ot", "k")
    assert_one_line_error(result, "the transform's parameters and output tags take 24594 bytes as JSON, more than")
    assert LocalContext(data_dir, "default").versions("echoed") == []
    assert Remote(remote_url, "default").versions("words") == []  # refused before the input was pushed
