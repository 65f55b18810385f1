"""Run SCALE-Sim on a JSON job and print one JSON record per (config, layer).

Standalone script: it runs with the python of a SCALE-Sim virtual environment (``scalesim``
3.0.0 installed there) and imports only the standard library and ``scalesim``; the main
environment never imports it. ``codesign.validation.peers.scalesim`` writes the job and reads
the output.

Job (JSON on stdin, or the file named by the first argument)::

    {"configs": [{"name": "ws_32x32",
                  "cfg": {"general": {...}, "architecture_presets": {...}, "layout": {...},
                          "sparsity": {...}, "run_presets": {...}}}, ...],
     "layers": [{"name": "r18.conv1", "mode": "conv",
                 "row": {"ifmap_h": 229, "ifmap_w": 229, "filter_h": 7, "filter_w": 7,
                         "channels": 3, "num_filter": 64, "stride": 2}},
                {"name": "bert.qkv", "mode": "gemm", "row": {"M": 128, "N": 768, "K": 768}},
                ...]}

An optional ``"pairs": [[config_name, layer_name], ...]`` restricts the run to those pairs
(in that order); by default every config runs every layer.

``cfg`` is written verbatim as a SCALE-Sim ``.cfg`` file (its section and key names). Every
(config, layer) pair is a separate SCALE-Sim run with a one-row topology file (conv format, or
the ``-i gemm`` M,N,K format) so that each layer is simulated from an empty memory system
(SCALE-Sim does that per layer anyway) and its wall time can be reported.

Output (stdout): one JSON object per line, ``{"config", "layer", ...metrics}``, taken from
SCALE-Sim's COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv, plus the
spatio-temporal mapping SCALE-Sim's compute model used (``sim``: Sr, Sc, T, folds, demand-matrix
lines) read from its simulator objects. Progress goes to stderr.
"""
from __future__ import annotations

import configparser
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time

# This file sits beside codesign/validation/peers/scalesim.py: with its directory first on
# sys.path (as for any script), ``import scalesim`` would find that module instead of the
# SCALE-Sim package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
               "Channels, Num Filter, Strides,")
GEMM_HEADER = "Layer, M, N, K,"
LAYOUT_HEADER = "Layer name,"  # custom layouts are off; SCALE-Sim still opens a layout file


def _write_cfg(path: str, cfg: dict, run_name: str) -> None:
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep SCALE-Sim's key spelling (it reads keys case-insensitively)
    for section, items in cfg.items():
        parser.add_section(section)
        for key, value in items.items():
            parser.set(section, key, str(value))
    parser.set("general", "run_name", run_name)
    with open(path, "w") as f:
        parser.write(f)


def _write_topology(path: str, layer: dict) -> None:
    row = layer["row"]
    # SCALE-Sim splits rows on ',' and drops the last field, so every row ends with ','.
    # A name containing "DP" would trigger its depthwise expansion: the caller's names are
    # replaced by a neutral one here.
    if layer["mode"] == "gemm":
        text = f"{GEMM_HEADER}\nlayer, {row['M']}, {row['N']}, {row['K']},\n"
    else:
        text = (f"{CONV_HEADER}\nlayer, {row['ifmap_h']}, {row['ifmap_w']}, {row['filter_h']}, "
                f"{row['filter_w']}, {row['channels']}, {row['num_filter']}, {row['stride']},\n")
    with open(path, "w") as f:
        f.write(text)


def _read_report(path: str) -> list[dict]:
    with open(path) as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0] if h.strip()]
    out = []
    for r in rows[1:]:
        vals = [v.strip() for v in r]
        if not any(vals):
            continue
        out.append(dict(zip(header, vals)))
    return out


def _num(s: str):
    v = float(s)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def run_one(config: dict, layer: dict, workdir: str) -> dict:
    from scalesim.scale_sim import scalesim  # noqa: PLC0415 (only in the SCALE-Sim venv)

    run_name = "run"
    cfg_path = os.path.join(workdir, "scale.cfg")
    topo_path = os.path.join(workdir, "topology.csv")
    layout_path = os.path.join(workdir, "layout.csv")
    out_dir = os.path.join(workdir, "out")
    _write_cfg(cfg_path, config["cfg"], run_name)
    _write_topology(topo_path, layer)
    with open(layout_path, "w") as f:
        f.write(LAYOUT_HEADER + "\n")

    t0 = time.perf_counter()
    # SCALE-Sim prints banners and layer summaries even with verbose=False in places: keep
    # stdout clean for our JSON.
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=cfg_path, topology=topo_path,
                       layout=layout_path, input_type_gemm=(layer["mode"] == "gemm"))
        sim.run_scale(top_path=out_dir)
    wall = time.perf_counter() - t0

    rep = os.path.join(out_dir, run_name)
    comp = _read_report(os.path.join(rep, "COMPUTE_REPORT.csv"))
    bw = _read_report(os.path.join(rep, "BANDWIDTH_REPORT.csv"))
    det = _read_report(os.path.join(rep, "DETAILED_ACCESS_REPORT.csv"))
    assert len(comp) == len(bw) == len(det) == 1, (len(comp), len(bw), len(det))
    c, b, d = comp[0], bw[0], det[0]

    rec = {
        "config": config["name"],
        "layer": layer["name"],
        # COMPUTE_REPORT.csv
        "total_cycles_incl_prefetch": _num(c["Total Cycles (incl. prefetch)"]),
        "total_cycles": _num(c["Total Cycles"]),
        "stall_cycles": _num(c["Stall Cycles"]),
        "overall_util_pct": _num(c["Overall Util %"]),
        "mapping_efficiency_pct": _num(c["Mapping Efficiency %"]),
        "compute_util_pct": _num(c["Compute Util %"]),
        # BANDWIDTH_REPORT.csv (words/cycle)
        "avg_bw": {
            "sram_ifmap": _num(b["Avg IFMAP SRAM BW"]),
            "sram_filter": _num(b["Avg FILTER SRAM BW"]),
            "sram_ofmap": _num(b["Avg OFMAP SRAM BW"]),
            "dram_ifmap": _num(b["Avg IFMAP DRAM BW"]),
            "dram_filter": _num(b["Avg FILTER DRAM BW"]),
            "dram_ofmap": _num(b["Avg OFMAP DRAM BW"]),
        },
        # DETAILED_ACCESS_REPORT.csv
        "sram": {
            "ifmap_reads": _num(d["SRAM IFMAP Reads"]),
            "filter_reads": _num(d["SRAM Filter Reads"]),
            "ofmap_writes": _num(d["SRAM OFMAP Writes"]),
            "ifmap_start": _num(d["SRAM IFMAP Start Cycle"]),
            "ifmap_stop": _num(d["SRAM IFMAP Stop Cycle"]),
            "filter_start": _num(d["SRAM Filter Start Cycle"]),
            "filter_stop": _num(d["SRAM Filter Stop Cycle"]),
            "ofmap_start": _num(d["SRAM OFMAP Start Cycle"]),
            "ofmap_stop": _num(d["SRAM OFMAP Stop Cycle"]),
        },
        "dram": {
            "ifmap_reads": _num(d["DRAM IFMAP Reads"]),
            "filter_reads": _num(d["DRAM Filter Reads"]),
            "ofmap_writes": _num(d["DRAM OFMAP Writes"]),
            "ifmap_start": _num(d["DRAM IFMAP Start Cycle"]),
            "ifmap_stop": _num(d["DRAM IFMAP Stop Cycle"]),
            "filter_start": _num(d["DRAM Filter Start Cycle"]),
            "filter_stop": _num(d["DRAM Filter Stop Cycle"]),
            "ofmap_start": _num(d["DRAM OFMAP Start Cycle"]),
            "ofmap_stop": _num(d["DRAM OFMAP Stop Cycle"]),
        },
        "wall_s": round(wall, 3),
    }
    rec["compute_cycles"] = rec["total_cycles"] - rec["stall_cycles"]

    # The mapping SCALE-Sim's compute model used (its own objects, not recomputed here).
    layer_sim = sim.runner.single_layer_sim_object_list[0]
    cs = layer_sim.compute_system
    rec["sim"] = {
        "Sr": int(cs.Sr), "Sc": int(cs.Sc), "T": int(cs.T),
        "row_fold": int(cs.row_fold), "col_fold": int(cs.col_fold),
        "demand_lines": int(cs.ofmap_demand_matrix.shape[0]),
        "num_macs": int(layer_sim.num_compute),
        "ofmap_hw": [int(x) for x in sim.topo.get_layer_ofmap_dims(0)],
    }
    return rec


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] != "-":
        with open(argv[1]) as f:
            job = json.load(f)
    else:
        job = json.load(sys.stdin)
    import scalesim  # noqa: F401,PLC0415  (fail early, before any work)

    configs = {c["name"]: c for c in job["configs"]}
    layers = {lay["name"]: lay for lay in job["layers"]}
    pairs = job.get("pairs") or [[c, lay] for c in configs for lay in layers]
    for i, (cname, lname) in enumerate(pairs, 1):
        with tempfile.TemporaryDirectory(prefix="scalesim_") as workdir:
            rec = run_one(configs[cname], layers[lname], workdir)
        print(json.dumps(rec), flush=True)
        print(f"[{i}/{len(pairs)}] {cname} {lname}: {rec['total_cycles']} cycles "
              f"({rec['wall_s']:.1f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
