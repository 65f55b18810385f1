"""The ``codesign`` command line.

Every module in this package whose name does not start with ``_`` is a sub-command: it
defines ``register(subparsers)`` and sets ``func`` on its parser. ``func(args)`` returns the
exit code. User errors (``CodesignError``) and usage errors become one ``codesign: error:``
line on stderr and exit code 2.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

from models.errors import CodesignError

from ._common import ArgumentParser


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="codesign", description="Neural-network / accelerator co-design.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except CodesignError as e:
        print(f"codesign: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
