"""Silicon anchors: our cost model against the per-layer measurements of a fabricated chip.

The anchors are Eyeriss v1 (Chen et al., JSSC 2017, Tables V and VI): the five AlexNet CONV
layers at batch 4 and the thirteen VGG-16 CONV layers at batch 3, 200 MHz core clock
(``data/eyeriss_v1.json``, with its sources). Each layer is mapped on the ``eyeriss`` preset
with the project's mapper (``mappings.optimizers.optimize``, what ``codesign map`` runs) and
its latency, DRAM and global-buffer traffic are divided by the measured ones.
``python -m codesign.validation.silicon`` prints the table (``docs/silicon.md``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


from models.errors import CodesignError
from models.layer import Layer

DATA_PATH = Path(__file__).parent / "data" / "eyeriss_v1.json"
SHAPE_KEYS = ("G", "N", "K", "C", "P", "Q", "R", "S", "stride", "padding")
MEASURED_KEYS = ("latency_ms", "total_latency_ms", "macs_g", "dram_mb", "glb_mb")
# ratio name -> (model key, measured key)
RATIOS = {"latency": ("latency_ms", "latency_ms"), "total_latency": ("latency_ms", "total_latency_ms"),
          "dram": ("dram_mb", "dram_mb"), "glb": ("glb_mb", "glb_mb")}


class SiliconError(CodesignError):
    """A malformed anchor file or an unknown anchored layer."""


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_layer(i: int, rec, where: str) -> None:
    if not isinstance(rec, dict):
        raise SiliconError(f"{where}: layers[{i}] must be an object")
    for k in ("network", "layer", "source"):
        if not isinstance(rec.get(k), str) or not rec[k]:
            raise SiliconError(f"{where}: layers[{i}] needs a non-empty string '{k}'")
    tag = f"{where}: layers[{i}] ({rec['network']} {rec['layer']})"
    shape, meas = rec.get("shape"), rec.get("measured")
    if not isinstance(shape, dict) or not isinstance(meas, dict):
        raise SiliconError(f"{tag}: needs objects 'shape' and 'measured'")
    for k in SHAPE_KEYS:
        v = shape.get(k)
        ok = isinstance(v, int) and not isinstance(v, bool) and (v >= 0 if k == "padding" else v > 0)
        if not ok:
            sign = "non-negative" if k == "padding" else "positive"
            raise SiliconError(f"{tag}: shape.{k}={v!r} must be a {sign} integer")
    if set(shape) - set(SHAPE_KEYS):
        raise SiliconError(f"{tag}: unknown shape key(s) {sorted(set(shape) - set(SHAPE_KEYS))}")
    for k in MEASURED_KEYS:
        if not _positive(meas.get(k)):
            raise SiliconError(f"{tag}: measured.{k}={meas.get(k)!r} must be a positive finite number")


def load_anchors(path=None) -> dict:
    """The anchor file (default ``data/eyeriss_v1.json``), checked; ``SiliconError`` if malformed."""
    p = Path(path or DATA_PATH)
    where = p.name
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise SiliconError(f"{where}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise SiliconError(f"{where}: malformed JSON ({e.msg} at line {e.lineno} col {e.colno})") from None
    if not isinstance(data, dict):
        raise SiliconError(f"{where}: top level must be an object")
    src = data.get("source")
    if not isinstance(src, list) or not src or not all(isinstance(s, str) and s for s in src):
        raise SiliconError(f"{where}: 'source' must be a non-empty list of strings")
    if not _positive(data.get("clock_mhz")):
        raise SiliconError(f"{where}: 'clock_mhz' must be a positive number")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SiliconError(f"{where}: 'layers' must be a non-empty list")
    seen = set()
    for i, rec in enumerate(layers):
        _check_layer(i, rec, where)
        key = (rec["network"], rec["layer"])
        if key in seen:
            raise SiliconError(f"{where}: layers[{i}]: duplicate layer {key[0]} {key[1]}")
        seen.add(key)
    return data


def layer_of(rec: dict) -> Layer:
    """The anchored layer as a ``Layer`` named ``NETWORK.LAYER`` (e.g. ``AlexNet.CONV1``)."""
    return Layer(name=f"{rec['network']}.{rec['layer']}", **rec["shape"])


def _traffic_mb(cost, level: str, acc) -> float:
    """Reads plus writes at ``level`` in 1e6 bytes (each space at its word width)."""
    acc_level = cost.accesses.get(level, {})
    return sum((rw["reads"] + rw["writes"]) * acc.word_bits[s] / 8 for s, rw in acc_level.items()) / 1e6


def compulsory_mb(lay: Layer, acc) -> float:
    """Each tensor moved once, uncompressed and without its zero padding, in 1e6 bytes: the least
    DRAM traffic of any mapping before compression."""
    h = max(1, lay.H - 2 * lay.padding)
    w = max(1, lay.W_in - 2 * lay.padding)
    words = {"W": lay.weight_elems, "I": lay.G * lay.N * lay.C * h * w, "O": lay.output_elems}
    return sum(n * acc.word_bits[s] / 8 for s, n in words.items()) / 1e6


def summarize(rows: list[dict]) -> dict:
    """Per ratio: geomean, min, max, and the SRCC of model against measured across ``rows``
    (``None`` with fewer than two rows or constant values)."""
    from .peers.stats import geomean, rank_correlation

    out = {}
    for name, (mk, sk) in RATIOS.items():
        r = [row["ratio"][name] for row in rows]
        rho = rank_correlation([row["model"][mk] for row in rows], [row["measured"][sk] for row in rows])
        out[name] = {"geomean": geomean(r), "min": min(r), "max": max(r), "srcc": rho}
    return out


def compare(acc_name: str = "eyeriss", optimizer: str = "auto", seed: int = 0, objective: str = "edp",
            layers: list[str] | None = None, path=None) -> dict:
    """Map every anchored layer (or those named ``NETWORK.LAYER`` in ``layers``) on ``acc_name``
    and divide the model's latency (ms at the preset's clock), DRAM and global-buffer traffic by
    the measured ones. Returns ``{"rows", "summary", "by_network", ...}``."""
    from accelerators import load_accelerator
    from mappings.optimizers import optimize

    data = load_anchors(path)
    acc = load_accelerator(acc_name)
    peak = data["clock_mhz"] * 1e3 * data.get("num_pes", acc.num_pes)  # chip MACs per ms
    recs = data["layers"]
    if layers is not None:
        by_name = {layer_of(r).name: r for r in recs}
        unknown = [n for n in layers if n not in by_name]
        if unknown:
            raise SiliconError(f"unknown anchored layer(s) {unknown} (known: {', '.join(by_name)})")
        recs = [by_name[n] for n in layers]
    rows = []
    for rec in recs:
        lay = layer_of(rec)
        cost = optimize(lay, acc, optimizer=optimizer, objective=objective, seed=seed).cost
        model = {"latency_ms": cost.latency_ms, "dram_mb": _traffic_mb(cost, "dram", acc),
                 "glb_mb": _traffic_mb(cost, "glb", acc), "bound": cost.bound,
                 "utilization": cost.utilization}
        meas = rec["measured"]
        rows.append({"network": rec["network"], "layer": rec["layer"], "macs": lay.macs, "model": model,
                     "measured": {**meas, "utilization": lay.macs / (meas["latency_ms"] * peak)},
                     "compulsory_dram_mb": compulsory_mb(lay, acc),
                     "ratio": {k: model[mk] / meas[sk] for k, (mk, sk) in RATIOS.items()}})
    nets = dict.fromkeys(r["network"] for r in rows)
    return {"accelerator": acc.name, "clock_mhz": acc.clock_mhz, "optimizer": optimizer, "objective": objective,
            "seed": seed, "rows": rows, "summary": summarize(rows),
            "by_network": {n: summarize([r for r in rows if r["network"] == n]) for n in nets}}


def table(result: dict) -> str:
    """``compare``'s result as a plain-text table."""
    lines = [f"model on '{result['accelerator']}' ({result['clock_mhz']:g} MHz; optimizer {result['optimizer']}, "
             f"objective {result['objective']}, seed {result['seed']}) / Eyeriss v1 measured (JSSC 2017)",
             f"{'':<16}{'':>6} | {'latency ms':^31} | {'utilization':^11} | {'DRAM MB':^27} | {'GLB MB':^23} |",
             f"{'layer':<16}{'GMACs':>6} | {'model':>7} {'meas':>7} {'ratio':>6} {'/total':>6} | "
             f"{'model':>5} {'meas':>5} | {'model':>5} {'meas':>5} {'ratio':>6} {'min':>6} | "
             f"{'model':>7} {'meas':>7} {'ratio':>6} | bound"]
    for r in result["rows"]:
        m, s, q = r["model"], r["measured"], r["ratio"]
        lines.append(f"{r['network'] + ' ' + r['layer']:<16}{r['macs'] / 1e9:>6.2f} | {m['latency_ms']:>7.1f} "
                     f"{s['latency_ms']:>7.1f} {q['latency']:>6.2f} {q['total_latency']:>6.2f} | "
                     f"{m['utilization']:>5.2f} {s['utilization']:>5.2f} | {m['dram_mb']:>5.1f} {s['dram_mb']:>5.1f} "
                     f"{q['dram']:>6.2f} {r['compulsory_dram_mb']:>6.1f} | {m['glb_mb']:>7.1f} {s['glb_mb']:>7.1f} "
                     f"{q['glb']:>6.2f} | {m['bound']}")

    def fmt(x):
        return "n/a" if x is None else f"{x:.2f}"
    lines += ["", "latency: processing latency (DRAM overlapped); /total: against the measured total latency; "
              "DRAM min: each tensor once, uncompressed", "",
              f"{'ratio':<14}{'scope':<9}{'geomean':>8}{'min':>7}{'max':>7}{'SRCC':>7}"]
    scopes = {"all": result["summary"], **result["by_network"]}
    for name in RATIOS:
        for scope, summ in scopes.items():
            v = summ[name]
            lines.append(f"{name:<14}{scope:<9}{v['geomean']:>8.2f}{v['min']:>7.2f}{v['max']:>7.2f}{fmt(v['srcc']):>7}")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The per-layer ratios and the summary as Markdown tables (``docs/silicon.md``)."""
    lines = ["| layer | GMACs | latency model / meas ms | ratio | ratio to total | util model / meas | "
             "DRAM model / meas MB | ratio | DRAM min MB | GLB model / meas MB | ratio | bound |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        m, s, q = r["model"], r["measured"], r["ratio"]
        lines.append(f"| {r['network']} {r['layer']} | {r['macs'] / 1e9:.2f} | {m['latency_ms']:.1f} / "
                     f"{s['latency_ms']:.1f} | {q['latency']:.2f} | {q['total_latency']:.2f} | "
                     f"{m['utilization']:.2f} / {s['utilization']:.2f} | {m['dram_mb']:.1f} / {s['dram_mb']:.1f} | "
                     f"{q['dram']:.2f} | {r['compulsory_dram_mb']:.1f} | {m['glb_mb']:.1f} / {s['glb_mb']:.1f} | "
                     f"{q['glb']:.2f} | {m['bound']} |")
    lines += ["", "| ratio | scope | geomean | min | max | SRCC |", "|---|---|---:|---:|---:|---:|"]
    for name in RATIOS:
        for scope, summ in {"all": result["summary"], **result["by_network"]}.items():
            v = summ[name]
            rho = "n/a" if v["srcc"] is None else f"{v['srcc']:.2f}"
            lines.append(f"| {name} | {scope} | {v['geomean']:.2f} | {v['min']:.2f} | {v['max']:.2f} | {rho} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codesign.validation.silicon",
                                 description="Model / measured for the Eyeriss v1 silicon anchors.")
    ap.add_argument("--accelerator", default="eyeriss")
    ap.add_argument("--optimizer", default="auto")
    ap.add_argument("--objective", default="edp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", default=None, help="comma-separated NETWORK.LAYER names, e.g. AlexNet.CONV1")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables (docs/silicon.md)")
    args = ap.parse_args(argv)
    try:
        res = compare(args.accelerator, optimizer=args.optimizer, seed=args.seed, objective=args.objective,
                      layers=args.layers.split(",") if args.layers else None)
    except CodesignError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1) if args.json else markdown(res) if args.markdown else table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
