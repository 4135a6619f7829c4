"""jsoncodec.py: msgspec's codec where it can, the stdlib's where msgspec refuses, same values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_aigw.jsoncodec import decode_json, encode_json, recode_compact

TEXTS = [
    b'{"success":true,"result":[{"id":"a","cost":3.675e-05,"tokens_in":525,"metadata":null}]}',
    '{"k":"é ✓ 模型 🚀","n":-0.0,"big":123456789012345678901234567890,"dup":1,"dup":2}',
    b"[]",
    b'"\\ud83d\\ude00"',
]


@pytest.mark.parametrize("text", TEXTS)
def test_decodes_as_the_stdlib_does(text: str | bytes) -> None:
    assert decode_json(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    # what msgspec refuses and the stdlib accepts: the stdlib decides
    [b'"broken \\ud800 pair"', b'{"cost":NaN}', b"[1e400, -Infinity]", '{"a":"\\udfff"}'],
)
def test_what_msgspec_refuses_decodes_as_the_stdlib_does(text: str | bytes) -> None:
    # compared as text: NaN is not equal to itself
    assert json.dumps(decode_json(text)) == json.dumps(json.loads(text))


@pytest.mark.parametrize("text", [b"", b"{", b'{"a":1,}', b"\xff\xfe", b"not json", "{'a': 1}"])
def test_what_is_not_json_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(text)


@pytest.mark.parametrize(
    "value",
    [
        {"id": "x", "cost": 2.34e-06, "n": 1, "f": 1.0, "t": True, "none": None, "m": {"k": "v"}},
        ["é ✓ 模型 🚀", 'quote " backslash \\ newline \n nul \x00 del \x7f', "\u2028"],
        {"int64": 2**63 - 1, "min": -(2**63), "tiny": 5e-324, "big": 1e16},
    ],
)
def test_encodes_compact_utf8_that_reads_back_with_its_types(value: Any) -> None:
    text = encode_json(value)
    assert b": " not in text and b", " not in text
    back = json.loads(text)
    assert back == value
    assert json.dumps(back) == json.dumps(value)  # 1.0 stays a float, 1 an int


def test_non_ascii_is_written_as_utf8_and_control_characters_escaped() -> None:
    assert encode_json(["é ✓ 🚀", "a\nb\x00\x7f\u2028"]) == '["é ✓ 🚀","a\\nb\\u0000\x7f\u2028"]'.encode()


def test_a_lone_surrogate_is_encoded_as_an_escape() -> None:
    text = encode_json({"model": "broken \ud800 pair", "ok": "é"})
    assert text == '{"model":"broken \\ud800 pair","ok":"é"}'.encode()
    assert json.loads(text) == {"model": "broken \ud800 pair", "ok": "é"}


def _stdlib_compact(text: str | bytes) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


# Every code point but the surrogates, each escape form, the integers past 64 bits, nesting, a
# duplicate key, white space where JSON allows it.
ALL_CHARACTERS = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"s": ALL_CHARACTERS, ALL_CHARACTERS[:300]: [ALL_CHARACTERS[::-1]]}),
        json.dumps({"s": ALL_CHARACTERS[:5000]}, ensure_ascii=True, indent=2),
        '{ "model" : "gpt-4o-mini" , "messages" : [ {"role":"user","content":"Où est la gare ?"} ] }',
        '\n\t [1, -0, 123456789012345678901234567890, -9223372036854775809, true, false, null, {}, []]\r\n',
        '{"dup": 1, "dup": {"dup": "\\ud83d\\ude00 \\u00e9 \\/ \\b\\f"}}',
    ],
)
def test_recode_compact_writes_what_the_stdlib_writes(text: str) -> None:
    assert recode_compact(text) == recode_compact(text.encode()) == _stdlib_compact(text)


@pytest.mark.parametrize(
    "text",
    # floats (msgspec writes 1e16 and 0.00001, the stdlib 1e+16 and 1e-05), and what msgspec refuses
    ['{"cost":1e16}', "[0.00001]", "[1.5]", '{"a":[{"b":-0.0}]}', '{"cost":NaN}', '["\\ud800"]', "{", "nope"],
)
def test_recode_compact_leaves_floats_and_what_msgspec_refuses_to_the_stdlib(text: str) -> None:
    assert recode_compact(text) is None
