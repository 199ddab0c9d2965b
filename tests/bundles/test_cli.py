"""`datapipe remote` and `datapipe bundle ...` through the CLI, and the one-line errors of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from datapipe.bundles.backends import Submission, record_submission
from datapipe.bundles.store import LocalContext
from tests.bundles.conftest import BUCKET, REMOTE_URL, assert_one_line_error, invoke


def test_remote_is_set_shown_and_checked(s3: Any, data_dir: Path) -> None:
    result = invoke("remote", "team", f"{REMOTE_URL}/")
    assert result.exit_code == 0, result.output
    assert result.output == f"Context 'team' now pushes to and pulls from {REMOTE_URL}\n"
    assert invoke("remote", "team").output == f"{REMOTE_URL}\n"

    assert_one_line_error(invoke("remote", "team", "bucket/prefix"), "remote 'bucket/prefix' must be s3://BUCKET")
    assert_one_line_error(
        invoke("remote", "team", "s3://no-such-bucket/x"), "bucket 'no-such-bucket' is not reachable", exit_code=1
    )
    assert_one_line_error(invoke("remote", "fresh"), "context 'fresh' has no remote; set one with `datapipe remote")


def test_commit_ls_show_push_pull_rm_round_trip(s3: Any, data_dir: Path, words: Path) -> None:
    assert invoke("remote", "default", REMOTE_URL).exit_code == 0
    committed = invoke("bundle", "commit", "words", str(words), "-t", "source:test", "--json")
    assert committed.exit_code == 0, committed.output
    version = json.loads(committed.output)["uuid"]

    listed = json.loads(invoke("bundle", "ls", "--json").output)
    assert [(b["name"], b["uuid"], b["files"], b["tags"]) for b in listed] == [
        ("words", version, 2, {"source": "test"})
    ]
    shown = invoke("bundle", "show", "words", "-t", "source:test")
    assert f"words {version}" in shown.output and "more/b.txt" in shown.output
    assert "committed by hand" in shown.output

    pushed = invoke("bundle", "push", "words")
    assert pushed.output.startswith(f"Pushed bundle 'words' version {version} (2 files, 33 B)")
    assert invoke("bundle", "push", "words").output.startswith("Already on the remote:")
    assert [b["uuid"] for b in json.loads(invoke("bundle", "ls", "--remote", "--json").output)] == [version]

    removed = invoke("bundle", "rm", "words")
    assert removed.output == f"Removed bundle 'words' version {version} (2 files, 33 B)\n"
    assert json.loads(invoke("bundle", "ls", "--json").output) == []
    pulled = invoke("bundle", "pull", "words", "--uuid", version)
    assert pulled.output.startswith(f"Pulled bundle 'words' version {version}")
    assert LocalContext(data_dir, "default").find("words").uuid == version

    assert invoke("bundle", "rm", "words", "--all", "--remote").exit_code == 0
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_pull_without_a_name_fetches_the_newest_of_every_bundle(s3: Any, data_dir: Path, words: Path) -> None:
    invoke("remote", "default", REMOTE_URL)
    invoke("bundle", "commit", "words", str(words))
    newest = json.loads(invoke("bundle", "commit", "words", str(words / "a.txt"), "--json").output)["uuid"]
    invoke("bundle", "commit", "other", str(words / "a.txt"))
    invoke("bundle", "push", "words", "--all")
    invoke("bundle", "push", "other")

    result = invoke("bundle", "pull", "-c", "copy")
    assert_one_line_error(result, "context 'copy' has no remote")
    invoke("remote", "copy", REMOTE_URL)
    # Another context reads its own folder of the remote: nothing there.
    assert_one_line_error(invoke("bundle", "pull", "-c", "copy"), "holds no bundle of context 'copy'")

    elsewhere = str(data_dir.parent / "laptop")
    invoke("remote", "default", REMOTE_URL, "--data-dir", elsewhere)
    result = invoke("bundle", "pull", "--data-dir", elsewhere)
    assert result.exit_code == 0, result.output
    assert result.output.count("Pulled") == 2
    pulled = {m.name: m.uuid for m in LocalContext(Path(elsewhere), "default").versions()}
    assert pulled["words"] == newest


def test_bad_input_is_one_line_each(s3: Any, data_dir: Path, words: Path) -> None:
    assert_one_line_error(invoke("bundle", "push", "words"), "context 'default' has no remote")
    invoke("remote", "default", REMOTE_URL)
    assert_one_line_error(invoke("bundle", "show", "words"), "bundle 'words' is not in context 'default'")
    assert_one_line_error(invoke("bundle", "commit", "words", str(words / "nope")), "path '", "nope' does not exist")
    assert_one_line_error(invoke("bundle", "commit", "bad name", str(words)), "bundle name 'bad name'")
    invoke("bundle", "commit", "words", str(words), "-t", "stage:raw")
    assert_one_line_error(invoke("bundle", "show", "words", "-t", "stage:gold"), "no version tagged stage:gold")
    assert_one_line_error(invoke("bundle", "push", "words", "-t", "=x"), "tag '=x' must be KEY or KEY:VALUE")
    assert_one_line_error(invoke("bundle", "pull", "words"), "bundle 'words' is not on remote s3://bundle-remote/team")
    assert_one_line_error(invoke("bundle", "pull", "--uuid", "x"), "--uuid needs a bundle NAME")
    assert_one_line_error(invoke("bundle", "ls", "--remote", "-c", "other"), "context 'other' has no remote")


def test_a_damaged_remote_manifest_is_skipped_with_a_warning_and_the_rest_stays_usable(
    s3: Any, data_dir: Path, words: Path
) -> None:
    """Issue 11 §6: one remote manifest failing validation made `bundle ls --remote` and `bundle pull` fail for all."""
    invoke("remote", "default", REMOTE_URL)
    good = json.loads(invoke("bundle", "commit", "words", str(words), "--json").output)["uuid"]
    invoke("bundle", "push", "words")
    damaged = {}
    for name, body in (
        ("garbage", b"{not json"),
        ("deep", b"[" * 100_000 + b"]" * 100_000),
        ("nul", None),
    ):
        committed = json.loads(invoke("bundle", "commit", name, str(words / "a.txt"), "--json").output)
        invoke("bundle", "push", name)
        if body is None:  # a manifest whose file path holds a NUL byte
            committed["files"][0]["path"] = "a\u0000.txt"
            body = json.dumps(committed).encode()
        key = f"team/default/{name}/{committed['uuid']}/manifest.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        damaged[name] = key
        invoke("bundle", "rm", name)

    listed = invoke("bundle", "ls", "--remote", "--json")
    assert listed.exit_code == 0, listed.output
    assert [b["uuid"] for b in json.loads(listed.stdout)] == [good]
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 3
    for key in damaged.values():
        assert any(line.startswith("Warning: skipped manifest s3://") and key in line for line in warnings), warnings
    assert any("nests arrays or objects too deeply" in line for line in warnings)
    assert any("holds a control character" in line for line in warnings)

    invoke("bundle", "rm", "words")
    pulled = invoke("bundle", "pull")
    assert pulled.exit_code == 0, pulled.output
    assert pulled.stdout.startswith(f"Pulled bundle 'words' version {good}")
    assert LocalContext(data_dir, "default").find("words").uuid == good
    assert "Traceback" not in pulled.output

    nul_version = damaged["nul"].split("/")[3]
    assert_one_line_error(
        invoke("bundle", "pull", "nul", "--uuid", nul_version), "holds a control character (such as NUL)"
    )


def test_piped_listing_prints_whole_values_one_record_per_line(s3: Any, data_dir: Path, words: Path) -> None:
    """Issue 12 §8: piped, `bundle ls` showed `coun…  crea…  tran…`."""
    invoke("remote", "default", REMOTE_URL)
    version = json.loads(invoke("bundle", "commit", "a-rather-long-bundle-name-that-goes-on", str(words), "--json",
                                "-t", "source:a-long-tag-value-as-well").output)["uuid"]  # fmt: skip
    result = invoke("bundle", "ls")
    assert result.exit_code == 0, result.output
    header, record = result.output.splitlines()
    assert header.split("\t") == ["name", "version", "created", "files", "size", "tags", "transform"]
    fields = record.split("\t")
    assert fields[:2] == ["a-rather-long-bundle-name-that-goes-on", version]
    assert fields[3:6] == ["2", "33 B", "source:a-long-tag-value-as-well"]
    assert "…" not in result.output


def test_a_hostile_context_file_is_one_line(s3: Any, data_dir: Path) -> None:
    invoke("remote", "default", REMOTE_URL)
    config = data_dir / "contexts" / "default" / "context.json"
    config.write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(
        invoke("bundle", "ls", "--remote"), "context 'default': ", "nests arrays or objects too deeply"
    )
    config.write_text("[1, 2]")
    assert_one_line_error(invoke("bundle", "ls", "--remote"), "context.json must hold a JSON object")


def test_pulling_the_output_of_a_batch_run_still_running_says_so(s3: Any, data_dir: Path) -> None:
    """Issue 12 §3: the pull of a run's output said only "has no version"."""
    invoke("remote", "default", REMOTE_URL)
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    machine = sfn.create_state_machine(
        name="datapipe-dev-transform",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/transform",
    )["stateMachineArn"]
    version = "1f3b0c4e-8d2a-4c55-9b1e-2f6a7c8d9e01"
    execution = sfn.start_execution(stateMachineArn=machine, name=version)["executionArn"]  # moto: stays RUNNING
    record_submission(
        LocalContext(data_dir, "default"), "counts", Submission(execution, None, "arn:jobdef", False, version)
    )
    assert_one_line_error(
        invoke("bundle", "pull", "counts", "--uuid", version),
        f"bundle 'counts' version {version} is not made yet: its Batch run is still running (execution {execution})",
        exit_code=1,
    )
    other = "2f3b0c4e-8d2a-4c55-9b1e-2f6a7c8d9e01"  # no run of this context made it: the plain answer
    assert_one_line_error(invoke("bundle", "pull", "counts", "--uuid", other), f"has no version {other}")
