"""The lax JSON reader: what real definitions need and json.loads does not give."""

from __future__ import annotations

import json

import pytest

from datapipe.importer.laxjson import JsonObject, LaxJsonError, loads, to_plain


def test_a_repeated_key_keeps_every_value_in_order() -> None:
    document = loads('{"id": "A", "step": "first", "step": "second", "step": "third"}')
    assert isinstance(document, JsonObject)
    assert document.get_all("step") == ["first", "second", "third"]
    assert json.loads('{"step": "first", "step": "second"}') == {"step": "second"}  # what a plain parser keeps


def test_trailing_commas_and_raw_line_breaks_in_strings_are_read() -> None:
    text = '{"objects": [{"myComment": "two\n   lines", "id": "Default",},],}'
    document = to_plain(loads(text))
    assert document == {"objects": [{"myComment": "two\n   lines", "id": "Default"}]}


def test_escapes_numbers_literals_and_comments() -> None:
    document = to_plain(loads('// a note\n{"a": "q\\"\\u00e9\\n", "n": -12, "f": 1.5e2, "t": true, "z": null /* x */}'))
    assert document == {"a": 'q"é\n', "n": -12, "f": 150.0, "t": True, "z": None}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1', "expected ',' or '}' after a value at line 1, column 8"),
        ('{"a": "open', "a: unterminated string at line 1, column 7"),
        ('{\n  "a": [1 2]}', "a: expected ',' or ']' after a value at line 2, column 11"),
        ('{"a": 1} extra', "unexpected text after the end of the document at line 1, column 10"),
        ('{a: 1}', "expected a quoted key or '}' at line 1, column 2"),
        ('{"a": "bad \\q"}', "a: bad escape '\\q' at line 1, column 12"),
    ],
)
def test_bad_text_names_the_file_place_line_and_column(text: str, message: str) -> None:
    with pytest.raises(LaxJsonError) as raised:
        loads(text, source="p.json")
    assert str(raised.value) == f"p.json: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"objects": [{"id": "A", "x": ' + "[" * 5000 + "]" * 5000 + "}]}",
         "objects[0].x[0]...: nested deeper than 64 levels at line 1, column 92"),
        ('{"objects": [{"id": "A\\ud800"}]}', "objects[0].id: a lone surrogate \\ud800 is not a character at line 1, "
         "column 23"),
        ('{"id": "\\udc00\\ud800"}', "id: a lone surrogate \\udc00 is not a character at line 1, column 9"),
        ('{"n": ' + "9" * 5000 + "}", "n: a number longer than 40 characters at line 1, column 7"),
        ('{"a": "\\u12"}', "a: bad \\u escape at line 1, column 8"),
    ],
)
def test_hostile_text_gives_one_line_naming_the_place(text: str, message: str) -> None:
    with pytest.raises(LaxJsonError) as raised:
        loads(text, source="p.json")
    assert str(raised.value) == f"p.json: {message}"


def test_an_escaped_surrogate_pair_is_one_character() -> None:
    assert loads('{"id": "A\\ud83d\\ude00"}').get("id") == "A\U0001f600"
