"""Helpers shared by CLI sub-commands: JSON output and small argument parsers."""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from models.errors import CodesignError


def _default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def to_json(obj, indent: int | None = 2) -> str:
    return json.dumps(obj, default=_default, indent=indent, allow_nan=False)


def emit_json(obj) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def parse_kv(text: str, what: str) -> dict[str, str]:
    """Parse ``"a=1,b=2"`` into a dict of strings; one clear error if malformed."""
    out = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "=" not in part:
            raise CodesignError(f"{what}: expected KEY=VALUE, got {part!r}")
        k, v = part.split("=", 1)
        out[k] = v
    return out


def load_json_arg(text: str, what: str):
    """Parse a JSON argument given inline or as a path to a file."""
    import os
    src = text
    if not text.lstrip().startswith(("{", "[")) and os.path.exists(text):
        with open(text) as f:
            src = f.read()
    try:
        return json.loads(src)
    except json.JSONDecodeError as e:
        raise CodesignError(f"{what}: malformed JSON ({e.msg} at line {e.lineno} col {e.colno})") from None


def finite(x: float) -> float:
    if not math.isfinite(x):
        raise CodesignError("internal: non-finite number in result")
    return x


def int_in(lo: int, hi: int):
    """An argparse ``type`` for an integer in ``[lo, hi]``; the error states the range."""
    def parse(text: str) -> int:
        try:
            v = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo:,} to {hi:,}, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is out of range: accepted {lo:,} to {hi:,}")
        return v
    parse.__name__ = "int"
    return parse


def float_in(lo: float, hi: float, *, lo_open: bool = False):
    """An argparse ``type`` for a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    def parse(text: str) -> float:
        try:
            v = float(text.strip())
        except ValueError:
            v = math.nan
        ok = math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi
        if not ok:
            raise argparse.ArgumentTypeError(
                f"expected a number {'>' if lo_open else 'from'} {lo:g}{' and <=' if lo_open else ' to'} {hi:g}, got {text!r}")
        return v
    parse.__name__ = "number"
    return parse
