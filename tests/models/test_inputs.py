"""Safe reading of user files: each hostile input is one CodesignError line, fast."""
import json
import time

import pytest
from pydantic import BaseModel, Field

from models.errors import AcceleratorError, CodesignError
from models.inputs import (MAX_DEPTH, MAX_TEXT_BYTES, load_json_file, load_yaml_file, parse_json, parse_yaml,
                           read_text, validate)


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    names = [chr(ord("a") + i) for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, cur in zip(names, names[1:]):
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_is_built():
    t0 = time.perf_counter()
    with pytest.raises(CodesignError, match=r"acc.yaml: expands to more than 1,000,000 values"):
        parse_yaml(_alias_bomb(), "acc.yaml")
    assert time.perf_counter() - t0 < 2.0


def test_a_few_aliases_are_fine():
    assert parse_yaml("base: &b {x: 1}\nother: *b\n", "f.yaml") == {"base": {"x": 1}, "other": {"x": 1}}


@pytest.mark.parametrize("text", ["[" * 2000 + "]" * 2000, "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200))])
def test_deep_yaml_nesting_is_refused(text):
    with pytest.raises(CodesignError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_yaml(text, "f.yaml")


def test_duplicate_yaml_key_names_the_line():
    with pytest.raises(CodesignError, match=r"f.yaml: malformed YAML \(duplicate key 'size' at line 2\)"):
        parse_yaml("size: 1\nsize: 2\n", "f.yaml")


@pytest.mark.parametrize("text, msg", [
    ('{"a": NaN}', "NaN is not a number JSON accepts"),
    ('{"a": -Infinity}', "-Infinity is not a number JSON accepts"),
    ('{"a": 1e999}', "1e999 overflows a float"),
    ('{"a": ' + "9" * 500 + "}", "integer with 500 digits"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("[" * 5000 + "]" * 5000, "nested deeper than"),
    ('{"a": ', "Expecting value at line 1 col 7"),
])
def test_bad_json_is_one_error(text, msg):
    with pytest.raises(CodesignError, match=msg.replace("(", r"\(")):
        parse_json(text, "w.json")


def test_json_round_trip_of_finite_data():
    data = {"k": [1, 2.5, -3e-7, "x", None, True, {"n": 10 ** 30}]}
    assert parse_json(json.dumps(data), "w.json") == data


def test_strings_with_brackets_do_not_count_as_depth():
    text = json.dumps({"s": "[" * 500 + "{" * 500})
    assert parse_json(text, "w.json") == {"s": "[" * 500 + "{" * 500}


@pytest.mark.parametrize("data, msg", [
    ("a: 1\n".encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
    (b"a: \xff\xfe1\n", r"not UTF-8 text \(byte 0xff at offset 3\)"),
    (b"a: 1\x00\n", "contains NUL characters"),
])
def test_bad_encodings_are_named(tmp_path, data, msg):
    p = tmp_path / "acc.yaml"
    p.write_bytes(data)
    with pytest.raises(AcceleratorError, match=msg):
        load_yaml_file(p, "acc.yaml", error=AcceleratorError)


def test_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "w.json"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}')
    assert load_json_file(p) == {"a": 1}


def test_missing_directory_and_oversized_files(tmp_path):
    with pytest.raises(CodesignError, match="file not found"):
        read_text(tmp_path / "none.yaml")
    with pytest.raises(CodesignError, match="is a directory|not a file"):
        read_text(tmp_path)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(MAX_TEXT_BYTES + 1)
    with pytest.raises(CodesignError, match=f"{MAX_TEXT_BYTES + 1:,} bytes, more than the {MAX_TEXT_BYTES:,} accepted"):
        read_text(big)


class _Budget(BaseModel):
    budget: int = Field(ge=1, le=100)
    name: str


def test_schema_error_names_source_field_value_and_range():
    with pytest.raises(CodesignError) as e:
        validate(_Budget, {"budget": 500, "name": "x"}, "config.yaml")
    assert str(e.value) == "config.yaml: budget: Input should be less than or equal to 100 (got 500)"
    with pytest.raises(CodesignError, match=r"config.yaml: name: Field required$"):
        validate(_Budget, {"budget": 5}, "config.yaml")
    with pytest.raises(CodesignError, match=r"\[and 1 more\]"):
        validate(_Budget, {"budget": 0}, "config.yaml")


def test_text_given_inline_is_bounded_too():
    with pytest.raises(CodesignError, match="--arch: 101 characters, more than the 100 accepted"):
        parse_json("[" + " " * 99 + "]", "--arch", max_bytes=100)
    with pytest.raises(CodesignError, match=f"more than the {MAX_TEXT_BYTES:,} accepted"):
        parse_yaml("a: 1\n" + "#" * MAX_TEXT_BYTES, "f.yaml")
