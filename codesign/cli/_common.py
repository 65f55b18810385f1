"""Helpers shared by CLI sub-commands: the argument parser, JSON output, bounded argument types
and the limits they enforce (every number that drives a loop or an allocation has one)."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from accelerators.fpga.board_schema import MAX_BOARD_MHZ as MAX_CLOCK_MHZ  # noqa: F401 - a design clock
from accelerators.fpga.board_schema import MIN_BOARD_MHZ as MIN_CLOCK_MHZ  # noqa: F401
from models.errors import CodesignError
from models.schema import MAX_RESOLUTION, MAX_SEED  # noqa: F401 - shared with the file formats

# ---- limits of command-line numbers (generous: far above any real run; see docs/limits.md) ----
MAX_WORKERS = 64                  # threads / processes of one command
MAX_BATCH = 4096                  # batch size of a workload
MAX_SEQ_LEN = 65_536              # sequence length of a transformer workload
MAX_MAP_BUDGET = 1_000_000_000    # mappings one optimizer may evaluate per layer (exhaustive default 4e8)
MAX_REPEATS = 10_000              # timed runs of a measured backend
MAX_WARMUP = 1_000                # untimed runs of a measured backend


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` with the project's error line and no silently repeated options.

    A usage error prints the usage, then ``codesign: error: [SUB-COMMAND: ]message``, and exits
    2 (sub-parsers inherit the class). An option that stores a value may be given once: a
    second ``--seed`` is an error, not a silent override."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, cls in _ONCE_ACTIONS.items():
            self.register("action", name, cls)

    def error(self, message):
        self.print_usage(sys.stderr)
        sub = self.prog.split(None, 1)[1] if " " in self.prog else ""
        self.exit(2, f"codesign: error: {sub + ': ' if sub else ''}{message}\n")

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        vars(ns).pop(_SEEN, None)
        return ns, extra


_SEEN = "_codesign_options_seen"


def _once(base):
    class Once(base):
        def __call__(self, parser, namespace, values, option_string=None):
            seen = vars(namespace).setdefault(_SEEN, set())
            if self.dest in seen:
                raise argparse.ArgumentError(self, "given twice")
            seen.add(self.dest)
            super().__call__(parser, namespace, values, option_string)
    Once.__name__ = f"Once{base.__name__}"
    return Once


_ONCE_ACTIONS = {None: _once(argparse._StoreAction), "store": _once(argparse._StoreAction),
                 "store_const": _once(argparse._StoreConstAction),
                 "store_true": _once(argparse._StoreTrueAction),
                 "store_false": _once(argparse._StoreFalseAction)}


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


def _nonfinite_path(obj, path: str = "", depth: int = 0) -> str | None:
    """The path (``a.b[2]``) of the first NaN or infinity in ``obj``, or None."""
    if depth > 200:
        return None
    if isinstance(obj, (float, np.floating)):
        return None if math.isfinite(obj) else (path or "(the result)")
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc" and not np.isfinite(obj).all():
            i = tuple(int(j) for j in np.argwhere(~np.isfinite(obj))[0])
            return f"{path}" + "".join(f"[{j}]" for j in i)
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _nonfinite_path(v, f"{path}.{k}" if path else str(k), depth + 1)
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            found = _nonfinite_path(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
        return None
    if hasattr(obj, "to_dict") and not isinstance(obj, type):
        return _nonfinite_path(obj.to_dict(), path, depth + 1)
    return None


def to_json(obj, indent: int | None = 2) -> str:
    """JSON text of a result; a NaN or infinity anywhere is refused, naming its field."""
    try:
        return json.dumps(obj, default=_default, indent=indent, allow_nan=False)
    except ValueError as e:
        where = _nonfinite_path(obj)
        if where is None:
            raise
        raise CodesignError(f"result field {where} is not a finite number (NaN or infinity); "
                            "nothing written") from e


def emit_json(obj) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def parse_kv(text: str, what: str) -> dict[str, str]:
    """Parse ``"a=1,b=2"`` into a dict of strings; malformed parts and repeated keys are errors."""
    out = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "=" not in part:
            raise CodesignError(f"{what}: expected KEY=VALUE, got {part!r}")
        k, v = part.split("=", 1)
        if not k:
            raise CodesignError(f"{what}: expected KEY=VALUE, got {part!r}")
        if k in out:
            raise CodesignError(f"{what}: {k} given twice ({k}={out[k]} and {k}={v})")
        out[k] = v
    return out


def load_json_arg(text: str, what: str):
    """A JSON argument given inline or as a path to a file, read with the safe-input bounds
    (size, nesting depth, finite numbers, no duplicate keys)."""
    from models.inputs import parse_json, read_text

    if text.lstrip().startswith(("{", "[")):
        return parse_json(text, what)
    if os.path.exists(text):
        return parse_json(read_text(text, f"{what} {text}"), f"{what} {text}")
    if os.path.sep in text or text.strip().endswith((".json", ".config")):
        raise CodesignError(f"{what}: file {text!r} not found (give inline JSON or an existing file)")
    return parse_json(text, what)


def finite(x: float, what: str = "result") -> float:
    """``x`` when it is a finite number; else an error naming ``what``."""
    if not math.isfinite(x):
        raise CodesignError(f"{what} is not a finite number ({x})")
    return x


def writable_dir(path, what: str) -> Path:
    """``path`` as a folder that exists (created if needed) and accepts files; one error if not."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise CodesignError(f"{what} {str(path)!r}: is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except FileExistsError:
        raise CodesignError(f"{what} {str(path)!r}: a part of the path is a file, not a folder") from None
    except NotADirectoryError:
        raise CodesignError(f"{what} {str(path)!r}: a part of the path is a file, not a folder") from None
    except PermissionError:
        raise CodesignError(f"{what} {str(path)!r}: not writable (permission denied)") from None
    except OSError as e:
        raise CodesignError(f"{what} {str(path)!r}: not writable ({e.strerror or e})") from None
    return p


def seed_arg():
    """The argparse ``type`` of every ``--seed``: an integer from 0 to 2**32 - 1."""
    return int_in(0, MAX_SEED)


def int_in(lo: int, hi: int):
    """An argparse ``type`` for an integer in ``[lo, hi]``; the error states the range."""
    def parse(text: str) -> int:
        try:
            if len(text.strip()) > 40:
                raise ValueError
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
            rng = f"> {lo:g} and <= {hi:g}" if lo_open else f"from {lo:g} to {hi:g}"
            raise argparse.ArgumentTypeError(f"expected a number {rng}, got {text!r}")
        return v
    parse.__name__ = "number"
    return parse
