"""ZigZag (zigzag-dse 3.9.1) peer data: translate the peer layers, run ZigZag, keep its answers.

ZigZag is an analytical DSE framework (KU Leuven MICAS): for a layer, an accelerator YAML and a
mapping YAML it searches spatial unrollings and temporal loop orders (LOMA) and reports the best
mapping's latency and energy. It is never imported here: it lives in its own environment, and
``zigzag_runner.py`` (beside this module) runs there. This module builds the job, calls that
script with a given Python, and writes ``data/zigzag.json``; ``load_data()`` reads it back for
comparisons and tests, which therefore need no ZigZag.

Regenerate (about 11 minutes on 2 shared cores)::

    python -m codesign.validation.peers.zigzag --python <zigzag-venv>/bin/python [--out FILE]

Hardware: the accelerators shipped in ``zigzag/inputs/hardware`` named ``tpu_like``,
``eyeriss_like`` and ``edge_tpu_like`` (all three ship in 3.9.1). ``tpu_like`` and
``edge_tpu_like`` run with the shipped mapping file of the same name (their ``default`` entry:
a fixed spatial unrolling, memory-operand links ``W->I2, I->I1, O->O``); no mapping ships for
``eyeriss_like``, so the runner gives it one with only those links and ZigZag searches the
spatial unrolling per layer (best of ``nb_spatial_mappings_generated=3`` candidates).
Search settings are ZigZag's API defaults: LOMA, ``lpf_limit=6``, uneven temporal mappings,
``opt="latency"`` (the minimal-latency mapping is kept; ties broken by energy).

Translation of a ``models.layer.Layer`` (``G N K C P Q R S``, stride, dilation, padding) into a
ZigZag workload layer (the format ZigZag's own ONNX parser produces):

- Convolution, grouped and depthwise included: ZigZag's ONNX-conv form
  ``O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]`` with
  ``B=N, K=K, G=G, OX=Q, OY=P, C=C, FX=S, FY=R`` (sizes per group, as in ``Layer``; a depthwise
  layer is ``G=channels, K=C=1``), ``ix=stride*ox+dilation*fx`` (and ``iy`` alike), operator
  type ``Conv``. Padding goes in ZigZag's ``padding [[p, p], [p, p]]`` on ``IX, IY`` with
  ``pr_loop_sizes`` the unpadded input extent ``W_in - 2p``/``H - 2p`` (at least 1): ZigZag then
  counts input data without the zero halo, like its ONNX parser. ZigZag counts only the input
  rows/columns a strided window reads (a 1x1 stride-2 layer reads ``P`` rows, not ``H``).
- Fully connected and matmul (``P=Q=R=S=1``): ZigZag's gemm form (its ``gemm_layer.yaml``),
  ``O[b][k]+=I[b][c]*W[c][k]`` with ``B=N`` (the batch, or the tokens of a transformer
  projection), ``C=C, K=K``, operator type ``Gemm``; with ``G>1`` (a batched matmul) the
  equation gains ``[g]`` on every operand. A matmul's second operand is an activation in the
  network, but a single-layer run loads it from DRAM either way; it is the ``W`` operand here.
  Under the shipped mappings the gemm form and a 1x1 convolution give the same mapping.
- ``operand_source`` is the standalone first-layer convention of ZigZag's examples (``I`` and
  ``W`` both sourced from the layer itself): each layer runs alone, inputs from DRAM, outputs to
  DRAM, no inter-layer data locality.
- Precision: ZigZag's defaults (its ONNX parser and example workloads): ``W`` and ``I`` 8 bits,
  partial sums ``O`` 16 bits, final outputs ``O_final`` 8 bits.

Data file: ``{"peer", "version", "command", "settings", "hardware": {name: summary of its YAML},
"translation", "records": [...]}``; one record per (hardware, layer): ``latency_cycles``
(``total = ideal_temporal + temporal_stall + onloading + offloading + systolic_drain``,
``ideal_temporal = ideal + spatial_stall``), ``energy_pj`` (``total = mac + memory``, memory per
operand and memory level), ``accesses`` per operand and memory level in ZigZag's memory words
(the ``bandwidth_max`` width of the port; register files: one operand word), the chosen
``spatial_mapping`` and ``temporal_loops`` (innermost first, with how many sit at each memory
level per operand), ``utilization``, and ``search`` (cost-model evaluations, the seconds spent
inside them and the wall seconds of the whole per-layer ZigZag call).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from codesign.validation.peers.layerset import peer_layers
from models.layer import Layer

PEER = "zigzag"
VERSION = "3.9.1"
HARDWARE = ("tpu_like", "eyeriss_like", "edge_tpu_like")
PRECISION = {"W": 8, "I": 8, "O": 16, "O_final": 8}
OPTIONS = {"opt": "latency", "lpf_limit": 6, "nb_spatial_mappings_generated": 3,
           "temporal_mapping_search_engine": "loma", "temporal_mapping_type": "uneven"}
COMMAND = "python -m codesign.validation.peers.zigzag --python <zigzag-venv>/bin/python"
RUNNER = Path(__file__).with_name("zigzag_runner.py")
DATA_PATH = Path(__file__).parent / "data" / "zigzag.json"

CONV_EQUATION = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
GEMM_EQUATION = "O[b][k]+=I[b][c]*W[c][k]"
GROUPED_GEMM_EQUATION = "O[g][b][k]+=I[g][b][c]*W[g][c][k]"

TRANSLATION = (
    "Conv (grouped/depthwise too): ZigZag ONNX-conv form O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*"
    "I[b][g][c][iy][ix], B=N K=K G=G OX=Q OY=P C=C FX=S FY=R (per-group sizes; depthwise = G "
    "channels, K=C=1), ix=stride*ox+dilation*fx, iy alike, operator Conv; padding p as ZigZag "
    "padding [[p,p],[p,p]] on IX,IY with pr_loop_sizes the unpadded extent (W_in-2p, H-2p), so "
    "ZigZag counts inputs without the zero halo and only the rows/cols a strided window reads. "
    "FC and matmul (P=Q=R=S=1): ZigZag gemm form O[b][k]+=I[b][c]*W[c][k], B=N (batch or tokens), "
    "C, K, operator Gemm ([g] added on every operand when G>1); a matmul's second operand is the "
    "W operand (loaded from DRAM like a weight in a single-layer run). operand_source I and W = "
    "the layer itself (standalone layer: inputs and weights from DRAM, outputs to DRAM). "
    "Precision: W 8, I 8, partial sums O 16, O_final 8 bits (ZigZag's ONNX defaults). Each layer "
    "runs alone through zigzag.api.get_hardware_performance_zigzag with the hardware's shipped "
    "mapping file (tpu_like, edge_tpu_like: fixed spatial unrolling of their 'default' entry); "
    "eyeriss_like ships no mapping: memory_operand_links only, spatial unrolling searched by "
    "ZigZag (best of 3 candidates). LOMA temporal search, lpf_limit 6, uneven, opt=latency."
)


def is_gemm(layer: Layer) -> bool:
    """FC and matmul layers take ZigZag's gemm form (they have no spatial window)."""
    return layer.op in ("fc", "matmul") and layer.P == layer.Q == layer.R == layer.S == 1


def workload_layer(layer: Layer, layer_id: int = 0) -> dict:
    """The ZigZag workload-YAML entry (a dict) for one layer."""
    base = {"id": layer_id, "name": layer.name}
    src = {"I": layer_id, "W": layer_id}
    if is_gemm(layer):
        if layer.G > 1:
            dims, sizes, eq = ["G", "B", "C", "K"], [layer.G, layer.N, layer.C, layer.K], GROUPED_GEMM_EQUATION
        else:
            dims, sizes, eq = ["B", "C", "K"], [layer.N, layer.C, layer.K], GEMM_EQUATION
        return {**base, "operator_type": "Gemm", "equation": eq, "dimension_relations": [],
                "loop_dims": dims, "loop_sizes": sizes,
                "operand_precision": dict(PRECISION), "operand_source": src}
    pad = layer.padding
    out = {
        **base,
        "operator_type": "Conv",
        "equation": CONV_EQUATION,
        "dimension_relations": [f"ix={layer.stride}*ox+{layer.dilation}*fx",
                                f"iy={layer.stride}*oy+{layer.dilation}*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [layer.N, layer.K, layer.G, layer.Q, layer.P, layer.C, layer.S, layer.R],
        "operand_precision": dict(PRECISION),
        "operand_source": src,
    }
    if pad:
        out["pr_loop_dims"] = ["IX", "IY"]
        out["pr_loop_sizes"] = [max(1, layer.W_in - 2 * pad), max(1, layer.H - 2 * pad)]
        out["padding"] = [[pad, pad], [pad, pad]]
    return out


def make_job(layers: list[Layer] | None = None, hardware=HARDWARE, options: dict | None = None) -> dict:
    layers = peer_layers() if layers is None else layers
    return {
        "hardware": list(hardware),
        "layers": [workload_layer(layer, i) for i, layer in enumerate(layers)],
        "options": {**OPTIONS, **(options or {}), "precision": dict(PRECISION)},
    }


def run_runner(python: str, job: dict, timeout: float | None = None) -> list[dict]:
    """Run ``zigzag_runner.py`` under ``python``; its JSON lines, parsed (stderr passes through)."""
    proc = subprocess.run([python, str(RUNNER)], input=json.dumps(job), stdout=subprocess.PIPE,
                          stderr=None, text=True, timeout=timeout, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        raise RuntimeError(f"zigzag_runner exited with {proc.returncode} after {len(lines)} lines")
    return lines


def generate(python: str, out_path=None, hardware=HARDWARE, layers: list[Layer] | None = None,
             options: dict | None = None) -> dict:
    """Run ZigZag on every (hardware, peer layer) and write the data file (``DATA_PATH`` by default)."""
    layers = peer_layers() if layers is None else layers
    job = make_job(layers, hardware, options)
    t0 = time.perf_counter()
    lines = run_runner(python, job)
    wall = time.perf_counter() - t0
    hw_summary = {ln["hardware"]: ln["summary"] for ln in lines if ln["kind"] == "hardware"}
    for name, summ in hw_summary.items():
        summ["precision_bits"] = dict(PRECISION)
    records = [{k: v for k, v in ln.items() if k != "kind"} for ln in lines if ln["kind"] == "record"]
    errors = [ln for ln in lines if ln["kind"] == "error"]
    evals = sum(r["search"]["evaluations"] for r in records if "search" in r)
    eval_s = sum(r["search"]["eval_seconds"] for r in records if "search" in r)
    layer_s = sum(r["search"]["wall_seconds"] for r in records if "search" in r)
    per_hw = {}
    for h in hw_summary:
        rs = [r["search"] for r in records if r["hardware"] == h and "search" in r]
        n, sec = sum(x["evaluations"] for x in rs), sum(x["eval_seconds"] for x in rs)
        per_hw[h] = {"evaluations": n, "eval_seconds": round(sec, 3),
                     "evaluations_per_second": round(n / sec, 1) if sec else None}
    loads = [r["search"]["loadavg_1min"] for r in records if "search" in r]
    data = {
        "peer": PEER,
        "version": VERSION,
        "command": COMMAND,
        "settings": {**job["options"], "hardware": list(hardware),
                     "mapping": {h: (s.get("mapping_yaml")) for h, s in hw_summary.items()}},
        "hardware": hw_summary,
        "translation": TRANSLATION,
        "workloads": {layer.name: wl for layer, wl in zip(layers, job["layers"])},
        "throughput": {
            "evaluations": evals,
            "eval_seconds": round(eval_s, 3),
            "evaluations_per_second": round(evals / eval_s, 1) if eval_s else None,
            "layer_wall_seconds": round(layer_s, 3),
            "evaluations_per_wall_second": round(evals / layer_s, 1) if layer_s else None,
            "job_wall_seconds": round(wall, 1),
            "per_hardware": per_hw,
            "cpu_count": os.cpu_count(),
            "loadavg_1min_mean": round(sum(loads) / len(loads), 2) if loads else None,
            "note": "evaluations = CostModelEvaluation objects built (one per evaluated spatial x "
                    "temporal mapping); eval_seconds = time inside them; layer wall seconds add "
                    "parsing, LOMA mapping generation and result saving; one process, serial; "
                    "loadavg = the machine's 1-minute load average while it ran (shared cores).",
        },
        "errors": errors,
        "records": records,
    }
    out = Path(out_path) if out_path is not None else DATA_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")
    return data


def load_data(path=None) -> dict:
    """The checked-in ZigZag results (``data/zigzag.json`` beside this module by default)."""
    p = Path(path) if path is not None else DATA_PATH
    return json.loads(p.read_text(encoding="utf-8"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codesign.validation.peers.zigzag",
                                 description="Run ZigZag on the peer layers and write its data file.")
    ap.add_argument("--python", default=sys.executable,
                    help="the Python of an environment with zigzag-dse 3.9.1 and six (default: this one, e.g. installed with the .[peers] extra)")
    ap.add_argument("--out", default=None, help=f"output JSON (default {DATA_PATH.name} beside this module)")
    ap.add_argument("--hardware", nargs="+", default=list(HARDWARE), help="shipped ZigZag accelerator names")
    ap.add_argument("--layers", nargs="+", default=None, help="only these peer layers (by name)")
    ap.add_argument("--lpf-limit", type=int, default=OPTIONS["lpf_limit"],
                    help="LOMA loop-prime-factor limit (lower = fewer temporal mappings)")
    ap.add_argument("--opt", default=OPTIONS["opt"], choices=("latency", "energy", "EDP"))
    args = ap.parse_args(argv)
    layers = peer_layers()
    if args.layers:
        unknown = set(args.layers) - {layer.name for layer in layers}
        if unknown:
            ap.error(f"unknown layer(s): {sorted(unknown)}")
        layers = [layer for layer in layers if layer.name in args.layers]
    if not os.path.exists(args.python):
        ap.error(f"--python {args.python} does not exist")
    data = generate(args.python, args.out, args.hardware, layers,
                    {"lpf_limit": args.lpf_limit, "opt": args.opt})
    bad = [r for r in data["records"] if "error" in r]
    print(f"{len(data['records'])} records ({len(bad)} failed), "
          f"{data['throughput']['evaluations']} evaluations, "
          f"{data['throughput']['evaluations_per_second']} evaluations/s inside the cost model, "
          f"job {data['throughput']['job_wall_seconds']} s -> {args.out or DATA_PATH}")
    return 1 if bad or data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
