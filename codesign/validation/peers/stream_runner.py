"""Run Stream (stream-dse 2.1.1) on a short chain of convolutions, layer by layer and layer-fused:
a standalone script for Stream's own Python environment (Python >= 3.12).

Not part of the codesign package's runtime: it imports ``stream`` (stream-dse, with ``six``,
which it imports without declaring) and ``onnx`` (a Stream dependency), which the main
environment does not have. Only the standard library, ``onnx`` and Stream are used. Usage::

    <stream-venv>/bin/python stream_runner.py [--job JOB.json] [--out FILE.json]

Without ``--job`` the default job below runs (the one behind ``data/stream.json``); without
``--out`` the JSON goes to stdout. Everything Stream prints goes to stderr.

Job (JSON)::

    {"hardware": "eyeriss_like_single_core",        # stream/inputs/examples/hardware/<name>.yaml
     "input": [C, H, W],                            # the chain's input (batch 1, int8)
     "layers": [{"name", "K", "C", "R", "S", "stride", "pad"}, ...],   # a chain of Conv layers
     "runs": [{"name": "layer_by_layer", "fusion_cut_points": "per-layer"},
              {"name": ..., "fusion_cut_points": [names], "intra_core_tiling": [{"dim": "Conv3.D2", "tile": 4}]}]}

The ONNX is written here with ``onnx.helper`` (Stream ships none for these layers): Conv nodes
without bias, int8 activations and weights (weight values cleared: Stream reads shapes only),
no Relu/BatchNorm/residual Add (they would need Stream's SIMD core and break the conv chain).

Stream's settings (its ``stream.api.evaluate_mapping`` with ``SolveOptions.stage_options``):
``fusion_cut_points`` (the generic mapping generator's cuts: ``"per-layer"`` gives every layer
its own fused group = layer by layer; a list of node names ends a group after each) and
``intra_core_tiling`` (a fused group's steady-state tile: ``{"dim": "<node>.D<i>", "tile": n}``
with Stream's Conv dims ``D0..D6 = B, OX, OY, FX, FY, C, K``; ``Conv3.D2`` tile 4 runs the group
in tiles of 4 output rows of Conv3, full width). Each fused group is solved by Stream's MILP
allocation (OR-Tools GSCIP) as a steady-state pipeline of identical iterations (tiles).

Per run and fused group the record holds Stream's own report (``latency``: total, per iteration,
overlap between iterations, fill; ``energy``: node and transfer pJ per iteration and the total),
and what this script reads off Stream's internals while the allocation is reported (the energy
family's ``report`` is wrapped):

- ``transfers``: every DMA stream the energy model prices (its transfer node, tensor, source and
  target cores, bits per iteration, pJ per bit of the ports and links it uses, pJ per iteration);
  ``dram`` sums those with the off-chip core on one side, over all iterations, split into
  weights (ONNX initializers) and activations;
- ``nodes``: per computation node on its core the ZigZag cost Stream uses for one iteration
  (latency, ideal cycles, energy total/MAC/memory, memory energy per operand and level, spatial
  mapping), and ``active_fraction``;
- ``slots``: the latency model's per-slot transfers (bits per firing, cycles, reuse factor);
- ``memory_accesses``: Stream's MemoryAccessesEstimationStage (accesses in port words).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time

# This script sits beside codesign modules: drop its own directory from the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import onnx  # noqa: E402
from onnx import TensorProto, helper, shape_inference  # noqa: E402

import stream  # noqa: E402
from stream.api import SolveOptions, evaluate_mapping  # noqa: E402
from stream.opt.allocation.constraint_optimization.families import energy as _energy  # noqa: E402
from stream.opt.allocation.constraint_optimization.families.traffic import _sides, placed_cores  # noqa: E402
from stream.opt.allocation.constraint_optimization.utils import active_fraction, get_active_latency  # noqa: E402

STREAM_ROOT = os.path.dirname(os.path.abspath(stream.__file__))
CONV_DIMS = ("B", "OX", "OY", "FX", "FY", "C", "K")  # Stream's Conv node dims D0..D6 (parser/onnx/conv.py)

# ResNet-18 at a 128x128 image: layer1.0.conv1/conv2 (64 ch, 32x32) and layer2.0.conv1 (stride 2)
# /conv2 (128 ch, 16x16); the residual adds, BatchNorm and ReLU are left out (a plain chain).
DEFAULT_JOB = {
    "hardware": "eyeriss_like_single_core",
    "input": [64, 32, 32],
    "layers": [
        {"name": "Conv0", "from": "resnet18.layer1.0.conv1", "K": 64, "C": 64, "R": 3, "S": 3, "stride": 1, "pad": 1},
        {"name": "Conv1", "from": "resnet18.layer1.0.conv2", "K": 64, "C": 64, "R": 3, "S": 3, "stride": 1, "pad": 1},
        {"name": "Conv2", "from": "resnet18.layer2.0.conv1", "K": 128, "C": 64, "R": 3, "S": 3, "stride": 2, "pad": 1},
        {"name": "Conv3", "from": "resnet18.layer2.0.conv2", "K": 128, "C": 128, "R": 3, "S": 3, "stride": 1, "pad": 1},
    ],
    "runs": [
        {"name": "layer_by_layer", "fusion_cut_points": "per-layer"},
        {"name": "fused_2x2_4tiles", "fusion_cut_points": ["Conv1"],
         "intra_core_tiling": [{"dim": "Conv1.D2", "tile": 8}, {"dim": "Conv3.D2", "tile": 4}]},
        {"name": "fused_all_4tiles", "fusion_cut_points": [],
         "intra_core_tiling": [{"dim": "Conv3.D2", "tile": 4}]},
    ],
}


TRANSLATION = {
    "workload": "ONNX written by stream_runner.build_onnx: a chain of Conv nodes (no bias, no BN/ReLU/residual "
                "Add), batch 1, int8 activations and weights, opset 17; Stream's ONNX parser makes each a "
                "ComputationNode over D0..D6 = B, OX, OY, FX, FY, C, K (precision W 8, I 8, psum 16 from the "
                "core's accumulator, final output 8). Ours: Layer.conv(C, K, (P, Q), (R, S), stride, padding) "
                "per node, graph edges along the chain.",
    "hardware": "stream/inputs/examples/hardware/eyeriss_like_single_core.yaml as shipped (compute core "
                "eyeriss_like 14x12, pooling and SIMD cores unused, off-chip DRAM core, 64-bit bus). Ours: "
                "stream_compare.accelerator = zigzag_compare.accelerator on the compute core's memories plus "
                "the DRAM (per-PE RFs; sram_1M as the GLB; the 8 kB psum and 64 kB weight SRAMs dropped).",
    "schedule": "layer by layer: fusion_cut_points 'per-layer' (each group one iteration; Stream's generic "
                "mapping generator tiles D0 = B by 1, a no-op). Fused: fusion_cut_points ends groups, "
                "intra_core_tiling {dim: <node>.D2, tile: rows} cuts the group into steady-state iterations of "
                "that many output rows of <node> (full width). Ours: Stack(first, last, tile=(rows of the "
                "last layer, Q), overlap='cache') with the same number of tiles.",
    "dram": "Stream's DRAM traffic as its energy model prices it: DMA streams with the off-chip core as source "
            "or target, bits per iteration x iterations; weights = ONNX initializers.",
}


def _num(x):
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return int(x)
    return float(f"{x:.8g}")


# ---- workload --------------------------------------------------------------------------------
def build_onnx(job: dict, path: str) -> list[dict]:
    """Write the chain as ONNX; returns the layers with their derived shapes."""
    c, h, w = job["input"]
    x = "input"
    nodes, inits, out = [], [], []
    for i, l in enumerate(job["layers"]):
        if l["C"] != c:
            raise ValueError(f"layer {l['name']}: C={l['C']} but the previous output has {c} channels")
        wt = helper.make_tensor(f"w{i}", TensorProto.INT8, [l["K"], l["C"], l["R"], l["S"]], [0] * (l["K"] * l["C"] * l["R"] * l["S"]))
        wt.ClearField("int32_data")  # shapes only
        inits.append(wt)
        y = "output" if i == len(job["layers"]) - 1 else f"t{i}"
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [y], name=l["name"], kernel_shape=[l["R"], l["S"]],
                                      pads=[l["pad"]] * 4, strides=[l["stride"]] * 2))
        p = (h + 2 * l["pad"] - l["R"]) // l["stride"] + 1
        q = (w + 2 * l["pad"] - l["S"]) // l["stride"] + 1
        out.append({**l, "H": h, "W": w, "P": p, "Q": q, "input_tensor": x, "output_tensor": y, "weight_tensor": f"w{i}",
                    "macs": l["K"] * l["C"] * l["R"] * l["S"] * p * q,
                    "weight_elems": l["K"] * l["C"] * l["R"] * l["S"]})
        x, c, h, w = y, l["K"], p, q
    graph = helper.make_graph(nodes, "stream_chain",
                              [helper.make_tensor_value_info("input", TensorProto.INT8, [1, *job["input"]])],
                              [helper.make_tensor_value_info("output", TensorProto.INT8, [1, c, h, w])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="codesign stream_runner")
    onnx.save(shape_inference.infer_shapes(model), path)
    return out


# ---- hardware --------------------------------------------------------------------------------
def _yaml():
    import yaml  # a Stream (and ZigZag) dependency
    return yaml


def hardware_summary(name: str) -> dict:
    """The system YAML and its cores' YAMLs, condensed in the form of zigzag_runner.hardware_summary
    (memories innermost first, with instances and ports) plus the system's links."""
    yaml = _yaml()
    base = os.path.join(STREAM_ROOT, "inputs", "examples", "hardware")
    with open(os.path.join(base, f"{name}.yaml"), encoding="utf-8") as f:
        system = yaml.safe_load(f)
    cores = {}
    for cid, fname in system["cores"].items():
        with open(os.path.join(base, "cores", fname), encoding="utf-8") as f:
            core = yaml.safe_load(f)
        oa = core.get("operational_array", {})
        sizes = dict(zip(oa.get("dimensions", []), oa.get("sizes", [])))
        mems = []
        for mname, m in (core.get("memories") or {}).items():
            served = list(m.get("served_dimensions") or [])
            mems.append({
                "name": mname, "size_bits": m["size"],
                "operands": [{"I1": "I", "I2": "W", "O": "O"}.get(o, o) for o in m["operands"]],
                "mem_operands": list(m["operands"]),
                "r_cost_pj": m["r_cost"], "w_cost_pj": m["w_cost"], "latency": m.get("latency"),
                "served_dimensions": served,
                "instances": math.prod(s for d, s in sizes.items() if d not in served) if sizes else 1,
                "ports": [{"name": p["name"], "type": p["type"], "bw_min_bits": p["bandwidth_min"],
                           "bw_max_bits": p["bandwidth_max"],
                           "allocation": [a.replace(" ", "") for a in p["allocation"]]} for p in m["ports"]],
            })
        cores[str(cid)] = {"file": f"stream/inputs/examples/hardware/cores/{fname}", "name": core.get("name"),
                           "type": core.get("type"), "array": {"dimensions": oa.get("dimensions"), "sizes": oa.get("sizes")},
                           "mac_energy_pj": oa.get("unit_energy"), "memories": mems,
                           "operand_precision": core.get("operand_precision"),
                           "operator_types": core.get("operator_types")}
    return {"yaml": f"stream/inputs/examples/hardware/{name}.yaml", "cores": cores,
            "offchip_core_id": system.get("offchip_core_id"), "unit_energy_cost": system.get("unit_energy_cost"),
            "core_connectivity": system.get("core_connectivity")}


# ---- capture of Stream's internals -----------------------------------------------------------
_CAPTURE: list[dict] = []
_orig_report = _energy.Energy.report


def _value(ctx, x):
    try:
        return float(ctx.model.value(x))
    except Exception:  # noqa: BLE001 - a constant
        return float(x)


def _cme_summary(entry) -> dict:
    """Stream's CoreCostEntry of a node on a core; its ZigZag CostModelEvaluation is ``entry.cme``."""
    out = {"latency_total": _num(entry.latency_total), "ideal_cycle": _num(entry.ideal_cycle),
           "ideal_temporal_cycle": _num(entry.ideal_temporal_cycle), "energy_total": _num(entry.energy_total),
           "metadata": {k: str(v) for k, v in (entry.metadata or {}).items()}}
    cme = entry.cme
    if cme is None:
        return out
    links = cme.memory_operand_links
    acc = cme.accelerator
    mem = {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        names = [lv.name for lv in acc.memory_hierarchy.get_memory_levels(mem_op=links.layer_to_mem_op(layer_op))]
        mem[str(layer_op)] = {n: _num(e) for n, e in zip(names, per_level)}
    zl = cme.layer
    tm = cme.temporal_mapping.mapping_dic_stationary
    first = next(iter(tm))
    out.update({
        "latency_total2": _num(cme.latency_total2), "systolic_drain_cycle": _num(getattr(cme, "systolic_drain_cycle", 0)),
        "stall_slack_comb": _num(cme.stall_slack_comb), "onloading": _num(cme.data_onloading_cycle),
        "offloading": _num(cme.data_offloading_cycle),
        "mac_energy": _num(cme.mac_energy), "mem_energy": _num(cme.mem_energy),
        "mem_energy_per_operand_level": mem,
        "spatial_mapping": {str(oa): {str(d): _num(f) for d, f in m.items()} for oa, m in zl.spatial_mapping.items()},
        "temporal_loops": [[str(d), _num(sz)] for lvl in tm[first] for (d, sz) in lvl],
        "loop_sizes": {str(k): _num(v) for k, v in zl.layer_dim_sizes.items()},
        "macs": _num(zl.total_mac_count),
        "mac_spatial_utilization": _num(cme.mac_spatial_utilization),
    })
    return out


def _report(self, ctx):
    """Stream's energy report, plus the per-stream and per-node detail it sums (kept in _CAPTURE)."""
    out = _orig_report(self, ctx)
    try:
        _capture(ctx)
    except Exception as exc:  # noqa: BLE001 - never break Stream's own report
        _CAPTURE.append({"error": f"{type(exc).__name__}: {exc}"})
    return out


def _capture(ctx) -> None:
    space = ctx.space
    offchip = space.accelerator.offchip_core_id
    transfers = []
    if "transfer_latency" in ctx.quantities:
        for (tr, choice), quantity in ctx.quantities.indexed("transfer_latency").items():
            link_latency = float(space.transfer_latency_for_path(tr, choice))
            if link_latency <= 0:
                continue
            latency = get_active_latency(tr, link_latency, space.ssis)
            bits = space.moved_bits(tr, choice) * active_fraction(tr, space.ssis)
            active = _value(ctx, quantity.expr)
            sides = _sides(ctx, tr, choice)
            pj_bit = sum(s.share * s.port.energy_per_bit(s.direction) for s in sides) + sum(
                link.unit_energy_cost / link.bandwidth for link in choice.links_used)
            moved = bits / latency * active
            transfers.append({
                "transfer": tr.name, "tensor": tr.inputs[0].name,
                "sources": [c.id for c in choice.sources], "targets": [c.id for c in choice.targets],
                "offchip": any(c.id == offchip for c in (*choice.sources, *choice.targets)),
                "bits_per_iteration": _num(moved), "active_cycles": _num(active), "path_cycles": _num(link_latency),
                "pj_per_bit": _num(pj_bit), "pj_per_iteration": _num(moved * pj_bit),
                "ports": [{"port": f"{s.port.key.memory}.{s.port.key.port}", "direction": s.direction,
                           "share": _num(s.share), "pj_per_bit": _num(s.port.energy_per_bit(s.direction))} for s in sides],
            })
    nodes = []
    for node in space.ssc_nodes:
        for core in placed_cores(ctx, node):
            cme = space.cost_lut.get_cost(node, core)
            nodes.append({"node": node.name, "core": core.id, "active_fraction": _num(active_fraction(node, space.ssis)),
                          "zigzag": _cme_summary(cme)})
    _CAPTURE.append({"iterations": space.iterations, "transfers": transfers, "nodes": nodes})


_energy.Energy.report = _report


# ---- one run ---------------------------------------------------------------------------------
def _slots(path: str) -> list[dict]:
    yaml = _yaml()
    try:
        with open(path, encoding="utf-8") as f:
            rep = yaml.safe_load(f)
    except OSError:
        return []
    out = []
    for s in rep.get("slots", []):
        for t in s.get("transfer_contributors") or []:
            out.append({"slot": s["slot"], "transfer": t["transfer"], "bits_per_firing": t["tensor_bits"],
                        "cycles": t["active_latency_cycles"], "reuse_factor": t["reuse_factor"],
                        "latency_contribution_cycles": t["latency_contribution_cycles"]})
        for c in s.get("compute_contributors") or []:
            out.append({"slot": s["slot"], "node": c["node"], "cycles": c["active_latency_cycles"]})
    return out


def run_one(hw_path: str, onnx_path: str, run: dict, weights: set, tmp: str) -> dict:
    opts = {k: run[k] for k in ("fusion_cut_points", "intra_core_tiling") if k in run}
    out_dir = os.path.join(tmp, run["name"])
    _CAPTURE.clear()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        est = evaluate_mapping(hw_path, onnx_path, out_dir, options=SolveOptions(stage_options=opts, artifacts=True))
    wall = time.perf_counter() - t0
    ctx = est.context
    allocs = ctx.get("group_allocations")
    mem_acc = ctx.get("group_memory_accesses") or {}
    yaml = _yaml()
    groups = []
    for i in sorted(allocs):
        a = allocs[i]
        cap = _CAPTURE[i] if i < len(_CAPTURE) else {}
        it = cap.get("iterations", 1)
        dram = {"weights_bits": 0.0, "activations_bits": 0.0, "by_tensor_bits": {}}
        for t in cap.get("transfers", []):
            if t["offchip"]:
                key = "weights_bits" if t["tensor"] in weights else "activations_bits"
                dram[key] += t["bits_per_iteration"] * it
                dram["by_tensor_bits"][t["tensor"]] = _num(dram["by_tensor_bits"].get(t["tensor"], 0) + t["bits_per_iteration"] * it)
        dram = {k: (_num(v) if not isinstance(v, dict) else v) for k, v in dram.items()}
        with open(os.path.join(out_dir, f"group_{i}", "mapping.yaml"), encoding="utf-8") as f:
            mapping = yaml.safe_load(f)
        perf = a["performance"]
        groups.append({
            "group": i,
            "layers": list(a["fused_groups"][0]["layers"]),
            "mapping": mapping,
            "fusion_splits": a.get("fusion_splits"),
            "iterations": it,
            "latency_cycles": a["latency"],
            "energy_pj": perf["energy"],
            "dram": dram,
            "transfers": cap.get("transfers", []),
            "nodes": cap.get("nodes", []),
            "slots": _slots(os.path.join(out_dir, f"group_{i}", "allocation", "reports", "slot_latency_breakdown.yaml")),
            "bottleneck": perf.get("bottleneck"),
            "memory_occupancy": perf.get("memory_occupancy"),
            "tensor_reuse": [{k: t[k] for k in ("tensor", "size_bits", "reuse_factor", "reuse_stop_level", "on_chip_tiles")}
                             for t in perf.get("tensor_reuse", [])],
            "memory_accesses": mem_acc.get(i),
            "solve": a.get("solve"),
        })
    tot = {"cycles": _num(sum(g["latency_cycles"]["total"] for g in groups)),
           "estimate_cycles": _num(est.cycles),
           "energy_pj": _num(sum(g["energy_pj"]["total_pj"] for g in groups)),
           "dram_weights_bits": _num(sum(g["dram"]["weights_bits"] for g in groups)),
           "dram_activations_bits": _num(sum(g["dram"]["activations_bits"] for g in groups))}
    print(f"[stream_runner] {run['name']}: {tot['cycles']} cycles, {tot['energy_pj']:.4g} pJ, {wall:.1f} s", file=sys.stderr)
    return {"name": run["name"], "settings": {**opts, "solve_options": "SolveOptions() defaults: backend ortools_gscip, "
                                              "time_limit_s 300, temporal_mapping_type uneven, loma_lpf_limit 6"},
            "total": tot, "groups": groups, "wall_seconds": _num(wall)}


def run(job: dict) -> dict:
    hw_path = os.path.join(STREAM_ROOT, "inputs", "examples", "hardware", f"{job['hardware']}.yaml")
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    with tempfile.TemporaryDirectory(prefix="stream_job_") as tmp:
        onnx_path = os.path.join(tmp, "chain.onnx")
        layers = build_onnx(job, onnx_path)
        weights = {l["weight_tensor"] for l in layers}
        runs = [run_one(hw_path, onnx_path, r, weights, tmp) for r in job["runs"]]
    return {"hardware_name": job["hardware"], "hardware": hardware_summary(job["hardware"]),
            "input": job["input"], "layers": layers, "runs": runs,
            "conv_dims": {f"D{i}": d for i, d in enumerate(CONV_DIMS)}}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--job", help="job JSON (default: the built-in DEFAULT_JOB)")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args(argv[1:])
    job = DEFAULT_JOB
    if args.job:
        with open(args.job, encoding="utf-8") as f:
            job = json.load(f)
    from importlib.metadata import version
    t0 = time.perf_counter()
    res = run(job)
    res = {"peer": "stream", "version": version("stream-dse"), "zigzag_version": version("zigzag-dse"),
           "ortools_version": version("ortools"), "python": sys.version.split()[0],
           "command": "<stream-venv>/bin/python codesign/validation/peers/stream_runner.py"
                      + (" --job " + os.path.basename(args.job) if args.job else "")
                      + " --out codesign/validation/peers/data/stream.json",
           "translation": TRANSLATION, "job": job, **res, "wall_seconds": _num(time.perf_counter() - t0)}
    text = json.dumps(res, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
