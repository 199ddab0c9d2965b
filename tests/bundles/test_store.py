"""The local context: commits are complete immutable versions; selection by version and tag; removal."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from datapipe.bundles.manifest import BundleError, Manifest, parse_tags
from datapipe.bundles.store import LocalContext


def test_commit_copies_files_with_sizes_and_checksums(context: LocalContext, words: Path, tmp_path: Path) -> None:
    extra = tmp_path / "notes.md"
    extra.write_text("# notes\n")
    manifest = context.commit("words", [words, extra], tags={"source": "test"})

    assert [(e.path, e.size) for e in manifest.files] == [("a.txt", 21), ("more/b.txt", 12), ("notes.md", 8)]
    assert manifest.files[0].sha256 == hashlib.sha256(b"The cat and the hat.\n").hexdigest()
    assert manifest.tags == {"source": "test"}
    assert manifest.lineage.transform is None
    stored = context.files_dir(manifest)
    assert (stored / "more" / "b.txt").read_text() == "the cat sat\n"
    # The version is a copy: changing the source later does not change it.
    (words / "a.txt").write_text("changed")
    assert (stored / "a.txt").read_text() == "The cat and the hat.\n"


def test_versions_are_kept_in_creation_order_and_selected_by_tag(context: LocalContext, words: Path) -> None:
    first = context.commit("words", [words], tags=parse_tags(["stage:raw"]))
    second = context.commit("words", [words], tags=parse_tags(["stage:clean", "reviewed"]))

    assert [m.uuid for m in context.versions("words")] == [first.uuid, second.uuid]
    assert context.find("words").uuid == second.uuid
    assert context.find("words", tags={"stage": "raw"}).uuid == first.uuid
    assert context.find("words", tags={"reviewed": ""}).uuid == second.uuid
    assert context.find("words", version=first.uuid).uuid == first.uuid


@pytest.mark.parametrize(
    ("name", "version", "tags", "message"),
    [
        ("nothing", None, None, "bundle 'nothing' is not in context 'default'"),
        ("words", "00000000-0000-0000-0000-000000000000", None, "has no version 00000000-"),
        ("words", None, {"stage": "gold"}, "bundle 'words' has no version tagged stage:gold"),
    ],
)
def test_unknown_bundle_version_or_tag_is_named(
    context: LocalContext, words: Path, name: str, version: str | None, tags: dict[str, str] | None, message: str
) -> None:
    context.commit("words", [words])
    with pytest.raises(BundleError, match=message):
        context.find(name, version=version, tags=tags)


def test_bad_names_tags_and_paths_are_rejected(context: LocalContext, words: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="bundle name 'a/b'"):
        context.commit("a/b", [words])
    with pytest.raises(BundleError, match="tag ':x' must be KEY or KEY:VALUE"):
        parse_tags([":x"])
    with pytest.raises(BundleError, match=r"path '.*missing' does not exist"):
        context.commit("words", [tmp_path / "missing"])
    clash = tmp_path / "a.txt"
    clash.write_text("other")
    with pytest.raises(BundleError, match=r"file 'a\.txt' would be added twice"):
        context.commit("words", [words, clash])
    assert context.versions() == []


def test_a_version_being_built_is_never_listed(context: LocalContext, words: Path) -> None:
    with context.staging() as staged:
        (staged / "files" / "partial.txt").write_text("half")
        assert context.versions() == []
    assert not any((context.root / ".staging").iterdir())


def test_remove_drops_only_the_chosen_version(context: LocalContext, words: Path) -> None:
    first = context.commit("words", [words])
    second = context.commit("words", [words])
    context.remove(first)
    assert [m.uuid for m in context.versions("words")] == [second.uuid]
    context.remove(second)
    assert context.versions() == []
    assert not (context.bundles_dir / "words").exists()


def test_a_damaged_manifest_is_skipped_with_a_warning_naming_it(data_dir: Path, words: Path) -> None:
    warnings: list[str] = []
    context = LocalContext(data_dir, "default", warn=warnings.append)
    manifest = context.commit("words", [words])
    kept = context.commit("others", [words])
    path = context.bundles_dir / "words" / manifest.uuid / "manifest.json"
    data = json.loads(path.read_text())
    del data["files"]
    path.write_text(json.dumps(data))
    assert context.versions() == [kept]
    assert len(warnings) == 1
    assert re.fullmatch(r"skipped manifest .*manifest.json is damaged \(KeyError: .*files.*\)", warnings[0])


def test_manifest_round_trips_through_json(context: LocalContext, words: Path) -> None:
    manifest = context.commit("words", [words], tags={"k": "v"})
    assert Manifest.loads(manifest.dumps(), source="test") == manifest
