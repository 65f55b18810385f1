"""Safe reading of every file and string a user hands in, and schema errors as one line.

Each input format has one schema (a pydantic model, beside the code that owns the format);
this module holds what they share:

- ``read_text``: a size bound and strict UTF-8 (a UTF-16 file or a stray byte is named);
- ``parse_yaml`` / ``parse_json``: nesting depth and YAML alias expansion bounded *before*
  anything is built, no NaN / Infinity in JSON, duplicate keys refused;
- ``validate``: a pydantic model applied to parsed data; the first error becomes one line
  ``SOURCE: FIELD: message (got VALUE)`` raised as the caller's ``CodesignError`` subclass.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import CodesignError

MAX_TEXT_BYTES = 32 * 2 ** 20     # a description, workload or config; journals pass their own bound
MAX_DEPTH = 64                    # nesting of mappings / lists in any text format
MAX_YAML_NODES = 1_000_000        # nodes after expanding aliases ("billion laughs" stops here)
MAX_INT_DIGITS = 40               # integers longer than this are refused before int() parses them

T = TypeVar("T")


def _short(value: Any, n: int = 60) -> str:
    s = repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def read_text(path, what: str | None = None, *, max_bytes: int = MAX_TEXT_BYTES,
              error: type[CodesignError] = CodesignError) -> str:
    """The UTF-8 text of ``path``; one clear error if missing, too large, binary or not UTF-8."""
    p = Path(path)
    what = what or str(p)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise error(f"{what}: not a file")
        if size > max_bytes:
            raise error(f"{what}: {size:,} bytes, more than the {max_bytes:,} accepted")
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{what}: file not found") from None
    except PermissionError:
        raise error(f"{what}: permission denied") from None
    except IsADirectoryError:
        raise error(f"{what}: is a directory, not a file") from None
    except OSError as e:
        raise error(f"{what}: cannot read ({e.strerror or e})") from None
    return decode_text(data, what, error=error)


def decode_text(data: bytes, what: str, *, error: type[CodesignError] = CodesignError) -> str:
    """Strict UTF-8 (a leading byte-order mark is allowed); UTF-16 and stray bytes are named."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{what}: the file is UTF-16 text; save it as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    if "\x00" in text:
        raise error(f"{what}: contains NUL characters: a binary file, not text")
    return text


# ---- YAML ----

class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the last one would silently win)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                               lambda loader, node: dict(_construct_mapping(loader, node, deep=True)))


def _check_yaml_shape(text: str, source: str, error) -> None:
    """Depth and expanded size from the event stream: nothing is built before both are known."""
    depth = 0
    sizes: dict[str, int] = {}   # anchor -> expanded node count
    stack: list[list] = []        # [anchor, count] of open collections
    total = 0
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise error(f"{source}: nested deeper than {MAX_DEPTH} levels")
                stack.append([ev.anchor, 1])
                continue
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                anchor, n = stack.pop()
                if anchor is not None:
                    sizes[anchor] = n
            elif isinstance(ev, yaml.ScalarEvent):
                n = 1
                if ev.anchor is not None:
                    sizes[ev.anchor] = 1
            elif isinstance(ev, yaml.AliasEvent):
                n = sizes.get(ev.anchor, 1)
            else:
                continue
            if stack:
                stack[-1][1] += n
            total += n
            if total > MAX_YAML_NODES or (stack and stack[-1][1] > MAX_YAML_NODES):
                raise error(f"{source}: expands to more than {MAX_YAML_NODES:,} values "
                            f"(YAML aliases that multiply); write the values out")
    except yaml.YAMLError as e:
        raise error(f"{source}: malformed YAML ({_yaml_msg(e)})") from None


def _yaml_msg(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{problem} at line {mark.line + 1}" if mark is not None else problem


def _check_size(text: str, source: str, max_bytes: int, error) -> None:
    if len(text) > max_bytes:  # characters: at least one byte each
        raise error(f"{source}: {len(text):,} characters, more than the {max_bytes:,} accepted")


def parse_yaml(text: str, source: str, *, error: type[CodesignError] = CodesignError,
               max_bytes: int = MAX_TEXT_BYTES):
    """Safe-load YAML text with bounded size, depth, alias expansion and no duplicate keys."""
    _check_size(text, source, max_bytes, error)
    _check_yaml_shape(text, source, error)
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise error(f"{source}: malformed YAML ({_yaml_msg(e)})") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None


def load_yaml_file(path, what: str | None = None, *, error: type[CodesignError] = CodesignError,
                   max_bytes: int = MAX_TEXT_BYTES):
    what = what or str(path)
    return parse_yaml(read_text(path, what, error=error, max_bytes=max_bytes), what, error=error,
                      max_bytes=max_bytes)


# ---- JSON ----

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_DEPTH_CHUNK = 1 << 22


def _json_depth_ok(text: str) -> bool:
    """Brackets outside strings never nest deeper than ``MAX_DEPTH`` (at C speed: a large
    request, e.g. an ONNX model as base64, is one long string)."""
    import numpy as np

    outside = _JSON_STRING.sub("", text)
    cut = outside.find('"')  # an unterminated string runs to the end
    if cut >= 0:
        outside = outside[:cut]
    data = np.frombuffer(outside.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    depth = 0
    for i in range(0, len(data), _DEPTH_CHUNK):
        c = data[i:i + _DEPTH_CHUNK]
        run = np.cumsum(((c == 91) | (c == 123)).astype(np.int64) - ((c == 93) | (c == 125))) + depth
        if run.max() > MAX_DEPTH:
            return False
        depth = int(run[-1])
    return True


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON accepts")


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer with {len(s)} digits")
    return int(s)


def _float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"{s} overflows a float")
    return v


def parse_json(text: str, source: str, *, error: type[CodesignError] = CodesignError,
               max_bytes: int = MAX_TEXT_BYTES):
    """JSON with bounded size and depth, finite numbers only and no duplicate keys."""
    _check_size(text, source, max_bytes, error)
    if not _json_depth_ok(text):
        raise error(f"{source}: nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_pairs,
                          parse_int=_int, parse_float=_float)
    except json.JSONDecodeError as e:
        raise error(f"{source}: malformed JSON ({e.msg} at line {e.lineno} col {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise error(f"{source}: malformed JSON ({e})") from None


def load_json_file(path, what: str | None = None, *, error: type[CodesignError] = CodesignError,
                   max_bytes: int = MAX_TEXT_BYTES):
    what = what or str(path)
    return parse_json(read_text(path, what, error=error, max_bytes=max_bytes), what, error=error,
                      max_bytes=max_bytes)


# ---- schemas ----

def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def schema_message(exc, source: str) -> str:
    """One line for a pydantic ``ValidationError``: the first error's field, message and value."""
    errs = exc.errors(include_url=False)
    e = errs[0]
    loc = _loc(tuple(p for p in e.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))))
    msg = e.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    where = f"{source}: {loc}" if loc else source
    got = "" if e.get("type") == "missing" else f" (got {_short(e.get('input'))})"
    more = f" [and {len(errs) - 1} more]" if len(errs) > 1 else ""
    return f"{where}: {msg}{got}{more}"


def validate(model: type[T], data, source: str, *, error: type[CodesignError] = CodesignError) -> T:
    """``model.model_validate(data)``; a schema error becomes one ``error`` line."""
    from pydantic import ValidationError
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(schema_message(e, source)) from None
