"""Our depth-first (layer-fused) schedule model against the checked-in Stream data.

Stream (stream-dse 2.1.1, KU Leuven MICAS, built on ZigZag) prices a layer-fused schedule of a
workload on a (multi-)core accelerator: per fused group it tiles the group into identical
steady-state iterations, costs each node's tile with ZigZag on its core, and an MILP allocation
(OR-Tools) places tensors and transfers and pipelines the iterations. ``stream_runner.py``
(beside this module, run in Stream's own Python >= 3.12 environment) ran it on a chain of four
ResNet-18 convolutions on ``eyeriss_like_single_core`` layer by layer and layer-fused, and wrote
``data/stream.json``; this module replays the same workload, hardware and schedules on our model
(``mappings.schedule.evaluate_schedule``) and puts the numbers side by side. No Stream needed.

Regenerate the data (about 1 minute on 2 cores; Stream needs Python >= 3.12 and ``six``)::

    python3.12 -m venv stream-venv && stream-venv/bin/pip install stream-dse==2.1.1 six
    stream-venv/bin/python codesign/validation/peers/stream_runner.py \\
        --out codesign/validation/peers/data/stream.json

Compare: ``python -m codesign.validation.peers.stream_compare`` (prints the tables).

Translation, Stream -> ours:

| Stream | ours |
|---|---|
| ONNX Conv chain, int8 tensors (``layers`` in the data) | ``Layer.conv`` per node, ``N=1``, padding as given; a ``Network`` whose graph is the chain |
| core 0 ``eyeriss_like.yaml`` (a ZigZag core) and the off-chip core's ``dram`` | ``zigzag_compare.accelerator`` on the same memories: per-PE RFs, ``sram_1M`` the GLB (its 8 kB psum and 64 kB weight SRAMs dropped, as in the ZigZag comparison), DRAM 64 bits/cycle, 1000 pJ per 64-bit access |
| ZigZag's spatial mapping per node (``OX x OY`` layer by layer, ``OX x C`` on fused tiles) | array dim 1 unrolls ``Q``, dim 2 ``P`` or ``C`` (the union of what Stream chose; our mapper picks per tile) |
| operand precision W 8, I 8, psum 16, final output 8 | ``word_bits`` W 8, I 8, O 16 (outputs written to DRAM cost 16 bits here, 8 in Stream) |
| ``fusion_cut_points`` per-layer | ``layer_by_layer(net)``: stacks of one layer, one tile |
| a fused group ``[a..b]`` with ``intra_core_tiling`` ``<node>.D2`` (OY) tile ``t`` | ``Stack(a, b, tile=(rows, Q_b), overlap="cache")`` with the same number of row tiles (full width): Stream computes each tile's new rows only and keeps the halo on chip, as our ``cache`` |
| Stream's weight reuse: a solver decision per weight tensor (re-fetched every tile or kept) | ours keeps weights on chip for the stack when that fits and has the lower EDP (``auto``); ``refetch`` forces a fetch per tile |

DRAM traffic is compared in elements (Stream's bits / 8: every tensor crossing DRAM is int8).
Stream's DRAM traffic is what its energy model prices: the DMA streams with the off-chip core on
one side, bits per iteration x iterations (the runner's ``dram``). Its latency model moves a
tile's input halo again every iteration (``slots``); its energy model does not.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from accelerators.schedule import Stack, plan_stack, stack_cost
from accelerators.spec import Accelerator
from models.layer import Layer
from models.network import Network
from models.schema import NETWORK_INPUT

DATA_PATH = Path(__file__).parent / "data" / "stream.json"
# the fused / layer-by-layer ratios compared; compute_cycles: Stream's summed ZigZag node latencies
# (its pipelining of transfers left out), ours the schedule's cycles
SAVINGS = ("cycles", "compute_cycles", "energy_pj", "energy_dram_pj", "energy_onchip_pj", "dram_weights",
           "dram_activations", "dram_total")
OVERLAP = "cache"


def load_data(path: Path | str | None = None) -> dict:
    with open(path or DATA_PATH, encoding="utf-8") as f:
        return json.load(f)


# ---- translation -----------------------------------------------------------------------------
def network(data: dict) -> Network:
    """The Stream chain as our network (graph edges: each layer reads the previous one)."""
    layers, inputs, prev = [], {}, NETWORK_INPUT
    for l in data["layers"]:
        layer = Layer.conv(l["name"], l["C"], l["K"], (l["P"], l["Q"]), (l["R"], l["S"]), stride=l["stride"],
                           padding=l["pad"])
        layers.append(layer)
        inputs[layer.name] = [prev]
        prev = layer.name
    return Network("stream-chain", tuple(layers), inputs=inputs)


def spatial_union(data: dict) -> dict:
    """Per array dimension, the loops (ZigZag names) Stream's ZigZag unrolled on it in any run."""
    names = data["conv_dims"]  # Stream's D<i> -> ZigZag loop name
    out: dict = {}
    for run in data["runs"]:
        for g in run["groups"]:
            for n in g["nodes"]:
                for dim, loops in (n["zigzag"].get("spatial_mapping") or {}).items():
                    for loop, f in loops.items():
                        out.setdefault(dim, {})[names.get(loop, loop)] = max(f, out.get(dim, {}).get(names.get(loop, loop), 0))
    return out


def hardware(data: dict) -> dict:
    """The compute core's memories plus the off-chip DRAM, in ``zigzag_compare.accelerator``'s form."""
    hw = data["hardware"]
    compute = next(c for cid, c in hw["cores"].items() if c["type"] == "compute")
    offchip = hw["cores"][str(hw["offchip_core_id"])]
    dram = dict(next(m for m in offchip["memories"] if m["name"] == "dram"), instances=1)
    return {"memories": [*compute["memories"], dram], "array": compute["array"],
            "mac_energy_pj": compute["mac_energy_pj"]}


def accelerator(data: dict) -> Accelerator:
    from .zigzag_compare import accelerator as zz_accelerator
    acc = zz_accelerator(data["hardware_name"], hardware(data), spatial_union(data))
    return acc.with_name(f"stream-{data['hardware_name']}")


def stacks_of(run: dict, net: Network) -> list[Stack]:
    """Our stacks for a Stream run: one per fused group, with the same number of row tiles."""
    index = {l.name: i for i, l in enumerate(net.layers)}
    out = []
    for g in run["groups"]:
        a, b = index[g["layers"][0]], index[g["layers"][-1]]
        tiling = g["mapping"]["fused_groups"][0]["intra_core_tiling"]
        tiles = 1
        for e in tiling:
            node, _, pos = str(e["dim"]).partition(".D")
            if pos == "2":  # OY of that node
                tiles = max(tiles, -(-net.layers[index[node]].P // int(e["tile"])))
            elif pos != "0":
                raise ValueError(f"{run['name']}: tiling {e} is not on OY (D2) or the batch (D0)")
        last = net.layers[b]
        tile = None if tiles == 1 else (-(-last.P // tiles), last.Q)
        out.append(Stack(a, b, tile, OVERLAP))
    return out


# ---- our side --------------------------------------------------------------------------------
def _our_stack(mapper, st: Stack, weights: str):
    """Cost of a stack: ``auto`` is evaluate_schedule's choice; ``refetch`` keeps no weights on chip."""
    if weights == "auto" or (st.first == st.last and st.tile is None):
        return mapper.cost(st)
    plan = plan_stack(mapper.network, mapper.flow, st, mapper.acc, False)
    maps = [mapper.mapping(l) for l in plan.tile_layers]
    return stack_cost(mapper.network, plan, st, mapper.acc, maps)


def _ours(net, acc, stacks, mapper, weights) -> dict:
    rows = []
    for st in stacks:
        c = _our_stack(mapper, st, weights)
        rows.append({"layers": c.names, "tiles": c.tiles, "tile": list(st.tile) if st.tile else None,
                     "cycles": c.cycles, "energy_pj": c.energy_pj, "energy_by_component": c.energy_by_component,
                     "dram_weights": c.dram_words["weights"], "dram_activations": c.dram_words["activations"],
                     "weights_onchip": c.weights_onchip, "recompute_macs": c.recompute_macs,
                     "energy_dram_pj": c.energy_by_component.get("dram", 0.0),
                     "energy_onchip_pj": c.energy_pj - c.energy_by_component.get("dram", 0.0),
                     "peak_glb_bytes": c.peak_glb_bytes})
    return {"stacks": rows, **{k: sum(r[k] for r in rows) for k in
                               ("cycles", "energy_pj", "dram_weights", "dram_activations", "energy_dram_pj",
                                "energy_onchip_pj")}}


def _theirs(run: dict) -> dict:
    rows = []
    for g in run["groups"]:
        node_pj = g["energy_pj"]["node_pj_per_iteration"] * g["iterations"]
        compute = g["iterations"] * sum(n["zigzag"]["latency_total"] * n["active_fraction"] for n in g["nodes"])
        dram_pj = g["iterations"] * sum(t["bits_per_iteration"] * sum(p["pj_per_bit"] * p["share"] for p in t["ports"]
                                                                      if p["port"].startswith("dram."))
                                        for t in g["transfers"])
        rows.append({"layers": g["layers"], "tiles": g["iterations"], "cycles": g["latency_cycles"]["total"],
                     "compute_cycles": compute, "energy_dram_pj": dram_pj,
                     "energy_pj": g["energy_pj"]["total_pj"], "node_energy_pj": node_pj,
                     "transfer_energy_pj": g["energy_pj"]["transfer_pj_per_iteration"] * g["iterations"],
                     "dram_weights": g["dram"]["weights_bits"] / 8, "dram_activations": g["dram"]["activations_bits"] / 8,
                     "weights_refetched": sorted(t for t, b in g["dram"]["by_tensor_bits"].items()
                                                 if t.startswith("w") and b > _weight_bits(run, t) * 1.001)})
    return {"stacks": rows, **{k: sum(r[k] for r in rows) for k in
                               ("cycles", "compute_cycles", "energy_pj", "dram_weights", "dram_activations",
                                "energy_dram_pj")}}


_WEIGHT_BITS: dict = {}


def _weight_bits(run: dict, tensor: str) -> float:
    return _WEIGHT_BITS.get(tensor, math.inf)


DIRECTION_EPS = 0.01  # a ratio within 1 % of 1 counts as "no change"


def direction(ratio: float) -> int:
    """-1: fusion saves, 0: no change (within DIRECTION_EPS), +1: fusion costs more."""
    return 0 if abs(ratio - 1) <= DIRECTION_EPS else (-1 if ratio < 1 else 1)


def _ratio(a, b):
    return a / b if b else (1.0 if a == b else math.inf)


def compare(data: dict | None = None, optimizer: str = "auto", objective: str = "edp", seed: int = 0,
            weights: str = "auto") -> dict:
    """Per Stream run and stack, ours against Stream's; and per tool the fused / layer-by-layer ratios.

    ``objective``: our per-tile mapper's. ZigZag inside Stream keeps the minimal-latency mapping, but
    our latency-only search keeps any fastest mapping whatever its traffic (it re-reads weights from
    DRAM up to 33x in layer-by-layer runs here), so the default is ``edp``, the schedule model's own.
    ``weights``: ``auto`` (our schedule model's choice) or ``refetch`` (weights fetched every tile)."""
    from mappings.schedule import StackMapper

    data = data or load_data()
    net = network(data)
    acc = accelerator(data)
    _WEIGHT_BITS.clear()
    _WEIGHT_BITS.update({l["weight_tensor"]: l["weight_elems"] * 8 for l in data["layers"]})
    mapper = StackMapper(net, acc, optimizer=optimizer, objective=objective, cache=False, seed=seed)
    runs = []
    for run in data["runs"]:
        stacks = stacks_of(run, net)
        ours, theirs = _ours(net, acc, stacks, mapper, weights), _theirs(run)
        table = []
        for o, t in zip(ours["stacks"], theirs["stacks"]):
            table.append({"layers": o["layers"], "tiles": o["tiles"], "tile": o["tile"], **{
                f"{k}_{side}": (o if side == "ours" else t)[k] for k in
                ("cycles", "energy_pj", "dram_weights", "dram_activations") for side in ("ours", "stream")},
                **{f"{k}_ratio": _ratio(o[k], t[k]) for k in ("cycles", "energy_pj", "dram_weights", "dram_activations")},
                "ours_weights_onchip": o["weights_onchip"], "stream_weights_refetched": t["weights_refetched"]})
        runs.append({"name": run["name"], "settings": run["settings"],
                     "stacks": [[s.first, s.last, list(s.tile) if s.tile else None, s.overlap] for s in stacks],
                     "ours": ours, "stream": theirs, "table": table,
                     "total_ratio": {k: _ratio(ours[k], theirs[k]) for k in
                                     ("cycles", "energy_pj", "dram_weights", "dram_activations")}})
    base = next(r for r in runs if r["settings"].get("fusion_cut_points") == "per-layer")
    savings = []
    for r in runs:
        if r is base:
            continue
        row = {"run": r["name"]}
        for k in SAVINGS:
            def tot(x, side):
                if k == "dram_total":
                    return x[side]["dram_weights"] + x[side]["dram_activations"]
                if k == "energy_onchip_pj":
                    return x[side]["energy_pj"] - x[side]["energy_dram_pj"]
                if k == "compute_cycles" and side == "ours":
                    return x[side]["cycles"]
                return x[side][k]
            o, t = _ratio(tot(r, "ours"), tot(base, "ours")), _ratio(tot(r, "stream"), tot(base, "stream"))
            row[k] = {"ours": o, "stream": t, "same_direction": direction(o) == direction(t)}
        savings.append(row)
    return {"peer": "stream", "version": data["version"], "hardware": data["hardware_name"],
            "accelerator": acc.to_dict(), "optimizer": optimizer, "objective": objective, "weights": weights,
            "runs": runs, "fused_vs_layer_by_layer": savings}


# ---- printing --------------------------------------------------------------------------------
def _fmt(x) -> str:
    if isinstance(x, float) and not x.is_integer():
        return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.4g}"
    x = float(x)
    return f"{x:.4g}" if abs(x) >= 1e5 else f"{int(x)}"


def format_table(res: dict) -> str:
    lines = [f"Stream {res['version']} on {res['hardware']} vs ours (mapper {res['optimizer']}/{res['objective']}, "
             f"weights {res['weights']})", ""]
    head = (f"{'run':<18} {'stack':<13} {'tiles':>5} | {'cycles ours':>11} {'Stream':>9} {'o/S':>5} | "
            f"{'energy pJ ours':>14} {'Stream':>9} {'o/S':>5} | {'DRAM W ours':>11} {'Stream':>9} {'o/S':>5} | "
            f"{'DRAM A ours':>11} {'Stream':>9} {'o/S':>5}")
    lines += [head, "-" * len(head)]
    for r in res["runs"]:
        for row in r["table"] + [None]:
            if row is None:
                row = {"layers": ["total"], "tiles": "", **{f"{k}_{s}": r[s][k] for k in
                       ("cycles", "energy_pj", "dram_weights", "dram_activations") for s in ("ours", "stream")},
                       **{f"{k}_ratio": v for k, v in r["total_ratio"].items()}}
                name = "  total"
            else:
                name = f"{row['layers'][0]}..{row['layers'][-1]}" if len(row["layers"]) > 1 else row["layers"][0]
            cells = " | ".join(f"{_fmt(row[k + '_ours']):>{w}} {_fmt(row[k + '_stream']):>9} {row[k + '_ratio']:>5.2f}"
                               for k, w in (("cycles", 11), ("energy_pj", 14), ("dram_weights", 11),
                                            ("dram_activations", 11)))
            lines.append(f"{r['name']:<18} {name:<13} {str(row['tiles']):>5} | {cells}")
    lines += ["", "fused / layer-by-layer, each tool against itself (ours vs Stream; ok: the same direction, "
              f"a ratio within {DIRECTION_EPS:.0%} of 1 counting as no change):",
              f"{'':<18} {'ours':>7} {'Stream':>7}"]
    for s in res["fused_vs_layer_by_layer"]:
        for k in SAVINGS:
            lines.append(f"{s['run'] + ' ' + k:<36} {s[k]['ours']:>7.3f} {s[k]['stream']:>7.3f} "
                         f"{'ok' if s[k]['same_direction'] else 'DISAGREE'}")
    return "\n".join(lines)


def print_table(res: dict | None = None) -> None:
    print(format_table(res or compare()))


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Our layer-fused schedule model against Stream's checked-in data")
    ap.add_argument("--data", help="a stream.json (default: the checked-in one)")
    ap.add_argument("--optimizer", default="auto")
    ap.add_argument("--objective", default="edp")
    ap.add_argument("--weights", default="auto", choices=("auto", "refetch"))
    ap.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = ap.parse_args(argv)
    res = compare(load_data(args.data) if args.data else None, args.optimizer, args.objective, weights=args.weights)
    print(json.dumps(res, indent=1, default=str) if args.json else format_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
