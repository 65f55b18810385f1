"""``codesign bench TARGET``: benchmarks. Every module ``codesign/bench/<target>.py`` defining
``NAME``, ``add_arguments(parser)`` and ``run(args) -> dict`` (optionally ``HELP`` and
``format_text(result) -> str``) is a target."""
from __future__ import annotations

import importlib
import pkgutil

from ._common import emit_json, to_json


def targets() -> dict:
    import codesign.bench as pkg

    out = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "add_arguments", "run")):
            out[mod.NAME] = mod
    return out


def _runner(mod):
    def run(args) -> int:
        result = mod.run(args)
        if args.json:
            emit_json(result)
        elif hasattr(mod, "format_text"):
            print(mod.format_text(result))
        else:
            print(to_json(result))
        return 0
    return run


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark (see 'codesign bench -h' for the targets)")
    s = p.add_subparsers(dest="target", metavar="TARGET")
    s.required = True
    for name, mod in targets().items():
        t = s.add_parser(name, help=getattr(mod, "HELP", None))
        mod.add_arguments(t)
        t.add_argument("--json", action="store_true")
        t.set_defaults(func=_runner(mod))
