"""``codesign validate PEER``: our cost model against a peer tool's checked-in outputs, per layer."""
from __future__ import annotations

import json

from models.errors import CodesignError

from ._common import emit_json

PEERS = ("scalesim", "zigzag", "stream")
DATA_MODULE = {"scalesim": "scalesim", "zigzag": "zigzag", "stream": "stream_compare"}


def _load(peer: str, path):
    import importlib

    if path is not None:  # a user's file: read with the safe-input bounds (size, depth, finite numbers)
        from models.inputs import load_json_file

        data = load_json_file(path, f"cannot read peer data {path}")
        if not isinstance(data, dict):
            raise CodesignError(f"peer data {path}: expected a JSON object, got {type(data).__name__}")
        return data
    mod = importlib.import_module(f"codesign.validation.peers.{DATA_MODULE[peer]}")
    try:
        return mod.load_data(path)
    except FileNotFoundError:
        raise CodesignError(f"peer data file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CodesignError(f"cannot read peer data {path or '(built-in)'}: {e}") from None


def _scalesim_text(res: dict, per_layer: bool) -> str:
    lines = [f"SCALE-Sim {res['version']}: our cycles / SCALE-Sim's under SCALE-Sim's own mapping"]
    lines.append(f"{'config':<10} {'layers':>6} {'steady min':>10} {'max':>6} {'within 5%':>9} {'SRCC':>6}"
                 f"   {'total min':>9} {'max':>6} {'geomean':>7} {'SRCC':>6}")
    for name, s in res["summary"].items():
        lines.append(f"{name:<10} {s['layers']:>6} {s['steady_ratio_min']:>10.3f} {s['steady_ratio_max']:>6.3f} "
                     f"{s['steady_within_5pct']:>5}/{s['layers']:<3} {s['steady_srcc']:>6.3f}   "
                     f"{s['total_ratio_min']:>9.3f} {s['total_ratio_max']:>6.3f} {s['total_ratio_geomean']:>7.3f} "
                     f"{s['total_srcc']:>6.3f}")
    lines.append("steady: our compute + array pipeline cycles vs SCALE-Sim's Total Cycles; total: our whole latency "
                 "(start-up + steady + tail) vs its Total Cycles incl. prefetch")
    if per_layer:
        lines.append("")
        lines.append(f"{'config':<10} {'layer':<24} {'ours steady':>12} {'SCALE-Sim':>12} {'ratio':>6} "
                     f"{'ours total':>12} {'SCALE-Sim':>12} {'ratio':>6}")
        for r in res["rows"]:
            lines.append(f"{r['config']:<10} {r['layer']:<24} {r['ours_steady_cycles']:>12,} "
                         f"{r['scalesim_total_cycles']:>12,} {r['steady_ratio']:>6.3f} {r['ours_cycles']:>12,} "
                         f"{r['scalesim_total_cycles_incl_prefetch']:>12,} {r['total_ratio']:>6.3f}")
    return "\n".join(lines)


def _num(v) -> str:
    return f"{v:>6.3f}" if v is not None else f"{'-':>6}"


def _zigzag_text(res: dict, per_layer: bool) -> str:
    lines = [f"ZigZag {res['version']}: ours / ZigZag, each tool's best mapping of the layer on the same hardware "
             f"(ours: {res['objective']})"]
    lines.append(f"{'hardware':<14} {'layers':>6} {'latency min':>11} {'max':>6} {'geomean':>7} {'within 10%':>10} "
                 f"{'SRCC':>6}   {'energy min':>10} {'max':>6} {'geomean':>7} {'SRCC':>6}")
    for name, s in res["summary"].items():
        lines.append(f"{name:<14} {s['layers']:>6} {s['latency_ratio_min']:>11.3f} {s['latency_ratio_max']:>6.3f} "
                     f"{s['latency_ratio_geomean']:>7.3f} {s['latency_within_10pct']:>6}/{s['layers']:<3} "
                     f"{_num(s['latency_srcc'])}   {s['energy_ratio_min']:>10.3f} {s['energy_ratio_max']:>6.3f} "
                     f"{s['energy_ratio_geomean']:>7.3f} {_num(s['energy_srcc'])}")
    if per_layer:
        lines.append("")
        lines.append(f"{'hardware':<14} {'layer':<24} {'ours cycles':>12} {'ZigZag':>12} {'ratio':>6} "
                     f"{'ours uJ':>10} {'ZigZag':>10} {'ratio':>6}")
        for r in res["rows"]:
            lines.append(f"{r['hardware']:<14} {r['layer']:<24} {r['ours_cycles']:>12,} {r['zigzag_cycles']:>12,} "
                         f"{r['latency_ratio']:>6.3f} {r['ours_energy_pj'] / 1e6:>10.3f} "
                         f"{r['zigzag_energy_pj'] / 1e6:>10.3f} {r['energy_ratio']:>6.3f}")
    return "\n".join(lines)


def _run(args) -> int:
    from codesign.validation.peers import scalesim_compare, stream_compare, zigzag_compare

    compare, text = {"scalesim": (scalesim_compare.compare, _scalesim_text),
                     "zigzag": (zigzag_compare.compare, _zigzag_text),
                     "stream": (stream_compare.compare, lambda res, _: stream_compare.format_table(res))}[args.peer]
    data = _load(args.peer, args.data)
    try:
        res = compare(data)
    except (KeyError, TypeError, ValueError, IndexError, StopIteration) as e:
        raise CodesignError(f"peer data {args.data or '(built-in)'} is malformed: {type(e).__name__}: {e}") from None
    if args.json:
        emit_json(res)
    else:
        print(text(res, args.layers))
    return 0


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare the cost model with a peer tool's checked-in outputs, per layer")
    p.add_argument("peer", choices=PEERS, help="the peer tool (its data: codesign/validation/peers/data/)")
    p.add_argument("--data", metavar="FILE", help="a data file written by python -m codesign.validation.peers.PEER "
                                                  "(default: the checked-in one)")
    p.add_argument("--layers", action="store_true", help="also print every layer")
    p.add_argument("--json", action="store_true", help="every row and the summary as JSON")
    p.set_defaults(func=_run)
