"""SCALE-Sim (scalesim 3.0.0) peer data: translate the peer layers, run SCALE-Sim, keep its answers.

SCALE-Sim (Georgia Tech SynergyLab) is a cycle-level simulator of a systolic array with
double-buffered SRAMs in front of DRAM: for a layer (a conv row or a GEMM ``M,N,K`` row) and a
``.cfg`` file (array size, dataflow ``ws``/``os``/``is``, SRAM sizes, bandwidth mode) it builds
the operand address matrices, folds them onto the array, and replays the per-cycle demand
through the memory model. It is never imported here: it lives in its own environment, and
``scalesim_runner.py`` (beside this module) runs there. This module builds the job, calls that
script with a given Python, and writes ``data/scalesim.json``; ``load_data()`` reads it back
for comparisons and tests, which therefore need no SCALE-Sim.

Regenerate (62 minutes wall with 2 runner processes on 2 cores shared with other jobs; each
record keeps its run's seconds in ``run.wall_s``; ``bert.ffn1`` alone is 45 of the 121 summed
minutes)::

    python -m codesign.validation.peers.scalesim --python <scalesim-venv>/bin/python [--out FILE]

Hardware: six configs, arrays 32x32 and 16x16 (``ArrayHeight x ArrayWidth``) times dataflows
ws, os, is. Everything else is the example config of the SCALE-Sim repository,
``configs/scale.cfg`` (the pip package ships none), kept verbatim in ``BASE_CFG``: 64 kB ifmap,
64 kB filter and 64 kB ofmap SRAM, ``Bandwidth : 10``, ``InterfaceBandwidth: CALC``. Notes on
what those values do in 3.0.0:

- Word size is 1 byte, hard-coded in SCALE-Sim (``single_layer_sim.py``): 64 kB = 65536 words,
  half of each SRAM is the active buffer, half the prefetch buffer.
- ``InterfaceBandwidth: CALC`` is SCALE-Sim's "estimate bandwidth" mode: SRAM reads never stall;
  the first active-buffer fill of ifmap and filter is fetched from DRAM *before* cycle 0 at 10
  words/cycle (the negative ``dram.*_start`` cycles), later fills at whatever rate keeps up; the
  ofmap SRAM drains to DRAM at ``ArrayWidth`` words/cycle and only its write buffer can stall.
  The ``Bandwidth : 10`` line is not read in CALC mode.
- ``total_cycles`` is SCALE-Sim's "Total Cycles" (cycle of the last ofmap SRAM write, stalls
  included, prefetch excluded); ``total_cycles_incl_prefetch`` its "Total Cycles (incl.
  prefetch)" = last ofmap DRAM write minus the first ifmap/filter DRAM read, so it adds the
  pre-compute prefetch and the final ofmap drain; ``compute_cycles = total_cycles - stalls``.

Translation of a ``models.layer.Layer`` (``G N K C P Q R S``, stride, dilation, padding) into a
SCALE-Sim topology row:

- Convolution, batch 1, no groups: conv row ``IFMAP Height = H``, ``IFMAP Width = W_in``,
  ``Filter Height = R``, ``Filter Width = S``, ``Channels = C``, ``Num Filter = K``,
  ``Strides = stride``. SCALE-Sim has no padding: ``H``/``W_in`` already include the halo of a
  'same'-padded conv (``H = (P-1)*stride + R``), so the row passes them as they are and
  SCALE-Sim's ``ceil((H - R + stride) / stride)`` gives back ``P`` (checked). It has no dilation
  either (a dilated layer raises).
- Batch > 1, fully connected, matmul: SCALE-Sim's conv rows have no batch (its operand matrix
  fixes ``batch_size = 1``), so these run in its GEMM mode (``-i gemm``, row ``M, N, K``) with
  ``M = N*P*Q`` (batch x output pixels; tokens for BERT), ``K = C*R*S`` (reduction), ``N = K``
  (output channels). For the compute model this is exact (SCALE-Sim maps a conv as exactly this
  GEMM); for a batch>1 conv with ``R*S > 1`` the ifmap operand is then the im2col matrix, so its
  DRAM ifmap reads count every window element instead of the deduplicated input image.
- Groups (depthwise: ``G>1, K=C=1``; grouped convs and batched matmuls alike): one group is run
  and its cycles and access counts are multiplied by ``G`` (``multiplier``). This is exactly
  SCALE-Sim's own depthwise support (a layer name containing ``DP`` is expanded into
  ``Channels`` separate one-channel, ``Num Filter``-filter layers, each simulated from an empty
  memory system; all identical) summed over the channels. Ratios (utilization, mapping
  efficiency, average bandwidths) and the start/stop cycles are those of the one-group run.

Excluded: ``r18.layer3.conv.b4`` (batch 4, 462 M MACs) is not run: SCALE-Sim replays every
SRAM access in Python (run time about proportional to them), and this layer has 1.5x the
accesses of ``bert.ffn1``, already the slowest (2700 s summed over the six configs): about 70
more minutes (``EXCLUDED`` and ``excluded`` in the data file). ``mbv2.pw.expand14.b4`` and
``r18.fc.b16`` still cover batch > 1 (GEMM mode).

Data file: ``{"peer", "version", "command", "base_cfg", "configs": {name: summary and the cfg
lines that differ from base_cfg}, "translation", "memory_model", "quirks" (how SCALE-Sim counts
accesses), "excluded", "generation", "records": [...]}``; one record per (config, layer): ``layer_dict``, ``scalesim_layer`` (mode,
topology row, multiplier), ``total_cycles``, ``total_cycles_incl_prefetch``, ``compute_cycles``,
``stall_cycles``, ``overall_util_pct``, ``mapping_efficiency_pct``, ``compute_util_pct``,
``sram`` reads/writes and ``dram`` reads/writes per operand (all counts and cycles times the
multiplier), and ``run`` (the one SCALE-Sim run: SRAM/DRAM start and stop cycles, average
bandwidths in words/cycle, SCALE-Sim's own mapping ``Sr, Sc, T``, folds and demand-matrix
lines, wall seconds).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codesign.validation.peers.layerset import peer_layers
from models.layer import Layer

PEER = "scalesim"
VERSION = "3.0.0"
COMMAND = "python -m codesign.validation.peers.scalesim --python <scalesim-venv>/bin/python"
RUNNER = Path(__file__).with_name("scalesim_runner.py")
DATA_PATH = Path(__file__).parent / "data" / "scalesim.json"

# configs/scale.cfg of the SCALE-Sim repository (github.com/scalesim-project/SCALE-Sim),
# verbatim (sections, keys, values); ArrayHeight, ArrayWidth, Dataflow and run_name are set
# per config below.
BASE_CFG_SOURCE = "SCALE-Sim repository configs/scale.cfg (the pip package ships no config)"
BASE_CFG: dict[str, dict[str, object]] = {
    "general": {"run_name": "scale_example_run_32x32_ws"},
    "architecture_presets": {
        "ArrayHeight": 32, "ArrayWidth": 32,
        "IfmapSramSzkB": 64, "FilterSramSzkB": 64, "OfmapSramSzkB": 64,
        "IfmapOffset": 0, "FilterOffset": 10000000, "OfmapOffset": 20000000,
        "Bandwidth": 10, "Dataflow": "os", "MemoryBanks": 1,
        "ReadRequestBuffer": 32, "WriteRequestBuffer": 32,
    },
    "layout": {
        "IfmapCustomLayout": "False", "IfmapSRAMBankBandwidth": 100, "IfmapSRAMBankNum": 10,
        "IfmapSRAMBankPort": 2, "FilterCustomLayout": "False", "FilterSRAMBankBandwidth": 100,
        "FilterSRAMBankNum": 10, "FilterSRAMBankPort": 2,
    },
    "sparsity": {
        "SparsitySupport": "false", "SparseRep": "ellpack_block", "OptimizedMapping": "false",
        "BlockSize": 8, "RandomNumberGeneratorSeed": 40,
    },
    "run_presets": {"InterfaceBandwidth": "CALC", "UseRamulatorTrace": "False"},
}
WORD_SIZE_BYTES = 1  # hard-coded in scalesim/single_layer_sim.py
ARRAYS = (32, 16)
DATAFLOWS = ("ws", "os", "is")

EXCLUDED = {
    "r18.layer3.conv.b4": "not run: 462 M MACs at batch 4; SCALE-Sim's run time is about "
                          "proportional to the SRAM accesses it replays (266 M over the six "
                          "configs, 1.5x bert.ffn1's 2700 s), so about 70 more minutes on top "
                          "of the 62-minute set; mbv2.pw.expand14.b4 and r18.fc.b16 cover "
                          "batch > 1 (GEMM mode)",
}

TRANSLATION = (
    "conv, batch 1, G=1: SCALE-Sim conv row [IFMAP Height=H, IFMAP Width=W_in, Filter Height=R, "
    "Filter Width=S, Channels=C, Num Filter=K, Strides=stride]; H and W_in already include the "
    "'same'-padding halo (H=(P-1)*stride+R), SCALE-Sim has no padding and gives back P, Q. "
    "Batch>1, fc and matmul: SCALE-Sim GEMM mode (-i gemm) row [M=N*P*Q, N=K, K=C*R*S] "
    "(conv rows have no batch); exact for the compute model, but a batch conv's ifmap becomes "
    "the im2col matrix (DRAM ifmap reads not deduplicated). Groups (depthwise G>1, K=C=1): one "
    "group is simulated and cycles and access counts are multiplied by G (= SCALE-Sim's own "
    "'DP' depthwise expansion into G identical one-channel layers, summed); ratios and "
    "start/stop cycles are the one-group run's. No dilation support (raises)."
)
MEMORY_MODEL = (
    "Word size 1 byte (hard-coded in SCALE-Sim). InterfaceBandwidth CALC (estimate-bandwidth "
    "mode, as in SCALE-Sim's example scale.cfg): SRAM reads never stall; the first ifmap/filter "
    "active-buffer fill (half of each SRAM is active, half prefetch) is read from DRAM before "
    "cycle 0 at 10 words/cycle (negative dram start cycles), later fills at the rate that keeps "
    "up; the ofmap SRAM drains at ArrayWidth words/cycle and is the only source of stalls. "
    "total_cycles = cycle of the last ofmap SRAM write (0-based; stalls included, prefetch not); "
    "total_cycles_incl_prefetch = last ofmap DRAM write - first ifmap/filter DRAM read. The "
    "'Bandwidth : 10' line is not read in CALC mode."
)


QUIRKS = (
    "SRAM ofmap writes count every partial-sum write (ws and is write M*N per row fold, "
    "ceil(K/rows) times); no partial-sum reads are counted. os adds rows+cols phantom ofmap "
    "writes per fold (SCALE-Sim adds the padded fold's shape sum to its counter). DRAM ofmap "
    "writes are often the SRAM count + ArrayWidth-1 (its drain counts a padded last line). "
    "DRAM ifmap/filter reads are CALC mode's estimate: an operand that fits the active half "
    "of its SRAM is read about once, a larger one can be re-read on every reuse (up to the "
    "SRAM read count)."
)

# ---- translation ---------------------------------------------------------------------------
def translate(layer: Layer) -> dict:
    """The SCALE-Sim layer for one of our layers: ``{"mode", "row", "csv", "multiplier"}``.

    ``mode`` is ``"conv"`` (row keys ``ifmap_h ifmap_w filter_h filter_w channels num_filter
    stride``) or ``"gemm"`` (row keys ``M N K`` in SCALE-Sim's sense: ``M`` output rows, ``N``
    output columns, ``K`` reduction); ``csv`` is the topology-file row in SCALE-Sim's column
    order after the layer name; ``multiplier`` the group count the results are scaled by.
    """
    if layer.dilation != 1:
        raise ValueError(f"layer '{layer.name}': SCALE-Sim has no dilation (dilation={layer.dilation})")
    gemm = layer.N > 1 or layer.op in ("fc", "matmul")
    if gemm:
        row = {"M": layer.N * layer.P * layer.Q, "N": layer.K, "K": layer.C * layer.R * layer.S}
        csv = [row["M"], row["N"], row["K"]]
        mode = "gemm"
    else:
        row = {"ifmap_h": layer.H, "ifmap_w": layer.W_in, "filter_h": layer.R, "filter_w": layer.S,
               "channels": layer.C, "num_filter": layer.K, "stride": layer.stride}
        # SCALE-Sim's output size (topology_utils): ceil((H - R + stride) / stride).
        p = math.ceil((row["ifmap_h"] - row["filter_h"] + layer.stride) / layer.stride)
        q = math.ceil((row["ifmap_w"] - row["filter_w"] + layer.stride) / layer.stride)
        assert (p, q) == (layer.P, layer.Q), (layer.name, p, q)
        csv = [row[k] for k in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels",
                                "num_filter", "stride")]
        mode = "conv"
    return {"mode": mode, "row": row, "csv": csv, "multiplier": layer.G}


def gemm_dims(t: dict) -> tuple[int, int, int]:
    """``(M, N, K)`` SCALE-Sim computes for a translated layer (output pixels, filters, window)."""
    if t["mode"] == "gemm":
        return t["row"]["M"], t["row"]["N"], t["row"]["K"]
    r = t["row"]
    s = r["stride"]
    p = math.ceil((r["ifmap_h"] - r["filter_h"] + s) / s)
    q = math.ceil((r["ifmap_w"] - r["filter_w"] + s) / s)
    return p * q, r["num_filter"], r["filter_h"] * r["filter_w"] * r["channels"]


def compute_cycles_closed_form(t: dict, rows: int, cols: int, df: str) -> int:
    """SCALE-Sim 3.0.0's stall-free "Total Cycles" for a translated layer, in closed form.

    With ``(M, N, K)`` = (output pixels, filters, window) from ``gemm_dims`` and an array of
    ``rows x cols``, SCALE-Sim maps ``Sr x Sc`` spatially and ``T`` in time, pads every fold to
    the full array and runs the folds back to back, each taking a fixed number of demand lines:

    - ws: ``Sr=K, Sc=N, T=M``; lines per fold ``2*rows + cols + T - 2`` (``rows`` to load the
      weights, then ``T`` inputs skewed over ``rows`` and drained over ``cols``);
    - os: ``Sr=M, Sc=N, T=K``; lines per fold ``T + rows + cols - 2``;
    - is: ``Sr=K, Sc=M, T=N``; lines per fold ``2*rows + cols + T - 2`` (as ws);

    ``folds = ceil(Sr/rows) * ceil(Sc/cols)`` and the reported cycle count is the 0-based cycle
    of the last ofmap write, ``folds * lines_per_fold - 1``; times the group multiplier.
    """
    m, n, k = gemm_dims(t)
    if df == "ws":
        sr, sc, per = k, n, 2 * rows + cols + m - 2
    elif df == "os":
        sr, sc, per = m, n, k + rows + cols - 2
    elif df == "is":
        sr, sc, per = k, m, 2 * rows + cols + n - 2
    else:
        raise ValueError(f"unknown dataflow {df!r}")
    folds = math.ceil(sr / rows) * math.ceil(sc / cols)
    return t["multiplier"] * (folds * per - 1)


def _work(t: dict, rows: int, cols: int, df: str) -> int:
    """SRAM accesses SCALE-Sim replays (its run time is about proportional): for balancing."""
    m, n, k = gemm_dims(t)
    c = math.ceil
    if df == "ws":
        return m * k * c(n / cols) + m * n * c(k / rows) + k * n
    if df == "os":
        return m * k * c(n / cols) + k * n * c(m / rows) + m * n
    return k * m + k * n * c(m / cols) + m * n * c(k / rows)


def configs() -> dict[str, dict]:
    """The six configs: name -> {"rows", "cols", "dataflow", "cfg"} (full cfg sections)."""
    out = {}
    for a in ARRAYS:
        for df in DATAFLOWS:
            name = f"{df}_{a}x{a}"
            cfg = json.loads(json.dumps(BASE_CFG))
            cfg["general"]["run_name"] = name
            cfg["architecture_presets"].update(ArrayHeight=a, ArrayWidth=a, Dataflow=df)
            out[name] = {"rows": a, "cols": a, "dataflow": df, "cfg": cfg}
    return out


def _config_summary(c: dict) -> dict:
    ap = c["cfg"]["architecture_presets"]
    return {
        "array_rows": c["rows"], "array_cols": c["cols"], "dataflow": c["dataflow"],
        "ifmap_sram_kB": ap["IfmapSramSzkB"], "filter_sram_kB": ap["FilterSramSzkB"],
        "ofmap_sram_kB": ap["OfmapSramSzkB"], "bandwidth_words_per_cycle": ap["Bandwidth"],
        "interface_bandwidth": c["cfg"]["run_presets"]["InterfaceBandwidth"],
        "word_size_bytes": WORD_SIZE_BYTES,
        "cfg_overrides": {"general": {"run_name": c["cfg"]["general"]["run_name"]},
                          "architecture_presets": {"ArrayHeight": ap["ArrayHeight"],
                                                   "ArrayWidth": ap["ArrayWidth"],
                                                   "Dataflow": ap["Dataflow"]}},
    }


# ---- running -------------------------------------------------------------------------------
def _scalesim_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('scalesim'))"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _round(x, nd=4):
    return round(x, nd) if isinstance(x, float) else x


def _record(cfg_name: str, layer: Layer, t: dict, raw: dict) -> dict:
    g = t["multiplier"]
    run = {
        "sram_cycles": {k: v for k, v in raw["sram"].items() if k.endswith(("_start", "_stop"))},
        "dram_cycles": {k: v for k, v in raw["dram"].items() if k.endswith(("_start", "_stop"))},
        "avg_bw": {k: _round(v) for k, v in raw["avg_bw"].items()},
        "sim": raw["sim"],
        "wall_s": raw["wall_s"],
    }
    if g > 1:
        run["total_cycles"] = raw["total_cycles"]
        run["total_cycles_incl_prefetch"] = raw["total_cycles_incl_prefetch"]
    return {
        "config": cfg_name,
        "layer": layer.name,
        "layer_dict": layer.to_dict(),
        "scalesim_layer": {"mode": t["mode"], "row": t["row"], "multiplier": g},
        "total_cycles": g * raw["total_cycles"],
        "total_cycles_incl_prefetch": g * raw["total_cycles_incl_prefetch"],
        "compute_cycles": g * raw["compute_cycles"],
        "stall_cycles": g * raw["stall_cycles"],
        "overall_util_pct": _round(raw["overall_util_pct"]),
        "mapping_efficiency_pct": _round(raw["mapping_efficiency_pct"]),
        "compute_util_pct": _round(raw["compute_util_pct"]),
        "sram": {k: g * v for k, v in raw["sram"].items() if k.endswith(("_reads", "_writes"))},
        "dram": {k: g * v for k, v in raw["dram"].items() if k.endswith(("_reads", "_writes"))},
        "run": run,
    }


def _dump(data: dict) -> str:
    """Header indented, one record per line (diffable, compact)."""
    head = {k: v for k, v in data.items() if k != "records"}
    text = json.dumps(head, indent=1)
    assert text.endswith("\n}")
    recs = ",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in data["records"])
    return text[:-2] + ',\n "records": [\n' + recs + "\n ]\n}\n"


def generate(python: str, out_path=None, jobs: int = 2, layers: list[str] | None = None) -> dict:
    """Run SCALE-Sim (``python`` is the SCALE-Sim environment's interpreter) on every peer layer
    and config, write the data file (``out_path``; default the checked-in one) and return it.
    ``layers`` restricts the run to those layer names (for quick checks); ``jobs`` runner
    processes share the (config, layer) pairs, balanced by estimated work."""
    version = _scalesim_version(python)
    if version != VERSION:
        raise RuntimeError(f"expected scalesim {VERSION}, found {version}")
    cfgs = configs()
    all_layers = peer_layers()
    run_layers = [lay for lay in all_layers if lay.name not in EXCLUDED
                  and (layers is None or lay.name in layers)]
    trans = {lay.name: translate(lay) for lay in run_layers}
    pairs = [(c, lay.name) for c in cfgs for lay in run_layers]
    work = {(c, n): _work(trans[n], cfgs[c]["rows"], cfgs[c]["cols"], cfgs[c]["dataflow"])
            for c, n in pairs}
    groups: list[list] = [[] for _ in range(max(1, jobs))]
    loads = [0] * len(groups)
    for p in sorted(pairs, key=lambda p: -work[p]):  # longest first, onto the least loaded
        i = loads.index(min(loads))
        groups[i].append(list(p))
        loads[i] += work[p]
    job_base = {
        "configs": [{"name": n, "cfg": c["cfg"]} for n, c in cfgs.items()],
        "layers": [{"name": n, "mode": t["mode"], "row": t["row"]} for n, t in trans.items()],
    }

    t0 = time.time()
    raws: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scalesim_job_") as tmp:
        procs = []
        for i, g in enumerate(groups):
            if not g:
                continue
            job_file = os.path.join(tmp, f"job{i}.json")
            with open(job_file, "w") as f:
                json.dump({**job_base, "pairs": g}, f)
            out = open(os.path.join(tmp, f"out{i}.jsonl"), "w+")
            procs.append((subprocess.Popen([python, str(RUNNER), job_file], stdout=out), out))
        for proc, out in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"scalesim_runner.py failed (exit {proc.returncode})")
            out.seek(0)
            for line in out:
                if line.strip():
                    r = json.loads(line)
                    raws[(r["config"], r["layer"])] = r
            out.close()
    wall = time.time() - t0

    by_name = {lay.name: lay for lay in run_layers}
    records = [_record(c, by_name[n], trans[n], raws[(c, n)]) for c, n in pairs]
    data = {
        "peer": PEER,
        "version": version,
        "command": COMMAND,
        "base_cfg_source": BASE_CFG_SOURCE,
        "base_cfg": BASE_CFG,
        "configs": {n: _config_summary(c) for n, c in cfgs.items()},
        "translation": TRANSLATION,
        "memory_model": MEMORY_MODEL,
        "quirks": QUIRKS,
        "excluded": [{"layer": n, "configs": "all", "reason": r} for n, r in EXCLUDED.items()],
        "generation": {
            "runner_processes": len(procs),
            "wall_s": round(wall, 1),
            "run_wall_s_sum": round(sum(r["wall_s"] for r in raws.values()), 1),
            "layers_subset": layers,
        },
        "records": records,
    }
    out_path = Path(out_path) if out_path else DATA_PATH
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(_dump(data))
    return data


def load_data(path=None) -> dict:
    """The checked-in SCALE-Sim data (or the file at ``path``)."""
    return json.loads(Path(path or DATA_PATH).read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codesign.validation.peers.scalesim",
                                 description="Run SCALE-Sim on the peer layers and write its data file.")
    ap.add_argument("--python", default=sys.executable,
                    help="the Python of an environment with scalesim 3.0.0 (default: this one, e.g. installed with the .[peers] extra)")
    ap.add_argument("--out", default=None, help=f"output file (default {DATA_PATH.name} beside this module)")
    ap.add_argument("--jobs", type=int, default=2, help="runner processes (default 2)")
    ap.add_argument("--layers", default=None, help="comma-separated layer names (quick checks)")
    args = ap.parse_args(argv)
    data = generate(args.python, args.out, jobs=args.jobs,
                    layers=args.layers.split(",") if args.layers else None)
    print(f"{len(data['records'])} records, {data['generation']['wall_s']} s -> "
          f"{args.out or DATA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
