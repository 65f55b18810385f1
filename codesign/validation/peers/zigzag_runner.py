"""Run ZigZag on translated layers: a standalone script for ZigZag's own Python environment.

Not part of the codesign package's runtime: it imports ``zigzag`` (zigzag-dse, with ``six``),
which the main environment does not have. ``codesign.validation.peers.zigzag`` builds the job
and calls this script as ``<zigzag-python> zigzag_runner.py [JOB.json]`` (the job on stdin when
no file is given). Only the standard library, PyYAML (a ZigZag dependency) and ZigZag are used.

Job (JSON)::

    {"hardware": ["tpu_like", ...],          # names of accelerators shipped in zigzag/inputs/hardware
     "layers": [<ZigZag workload layer dict>, ...],
     "options": {"opt": "latency", "lpf_limit": 6, "nb_spatial_mappings_generated": 3,
                 "precision": {...}}}        # precision: recorded only (it is in each layer dict)

For each hardware the shipped mapping file of the same name (zigzag/inputs/mapping/<name>.yaml)
is used. When none ships (eyeriss_like), a mapping with only the memory-operand links
(W->I2, I->I1, O->O) and no spatial mapping is written to the temporary directory, so ZigZag's
SpatialMappingGeneratorStage searches the spatial unrolling per layer.

Each layer runs alone through ``zigzag.api.get_hardware_performance_zigzag`` (one workload YAML
per layer in a temporary directory; its dumps go there too and are deleted). Output: JSON lines
on stdout, first one ``{"kind": "hardware", ...}`` per accelerator (read from its YAML), then one
``{"kind": "record", ...}`` per (hardware, layer). Everything ZigZag prints goes to stderr.

Cost-model evaluations are counted by wrapping ``CostModelEvaluation.__init__`` (one per
evaluated (spatial, temporal) mapping); the seconds inside it and the wall seconds of the whole
per-layer call (parsing, LOMA temporal-mapping generation, evaluation, saving) are recorded.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time

# This script sits beside codesign's zigzag.py: drop its own directory from the import path so
# that ``import zigzag`` finds the installed package, not that module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import yaml  # noqa: E402

import zigzag  # noqa: E402
from zigzag.api import get_hardware_performance_zigzag  # noqa: E402
from zigzag.cost_model import cost_model as _cm  # noqa: E402

ZIGZAG_ROOT = os.path.dirname(os.path.abspath(zigzag.__file__))
GENERATED_MAPPING = [{
    "name": "default",
    "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
}]
DIRECTIONS = ("rd_out_to_low", "wr_in_by_low", "rd_out_to_high", "wr_in_by_high")

# ---- evaluation counter ----------------------------------------------------------------------
_COUNTER = {"n": 0, "s": 0.0}
_orig_init = _cm.CostModelEvaluation.__init__


def _reset_unique_filters() -> None:
    """ZigZag's loggers drop repeated messages for the whole process; forget them, so that each
    layer's record lists every warning ZigZag gives for it."""
    for lg in [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                       if isinstance(v, logging.Logger)]:
        for f in lg.filters:
            if hasattr(f, "recorded_messages"):
                f.recorded_messages.clear()


def _counting_init(self, *args, **kwargs):
    t0 = time.perf_counter()
    _orig_init(self, *args, **kwargs)
    _COUNTER["s"] += time.perf_counter() - t0
    _COUNTER["n"] += 1


_cm.CostModelEvaluation.__init__ = _counting_init


class _Collect(logging.Handler):
    """Keeps WARNING+ messages of one ZigZag call (paths stripped)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        msg = record.getMessage().replace(ZIGZAG_ROOT, "zigzag")
        if tempfile.gettempdir() in msg:
            msg = msg.replace(tempfile.gettempdir(), "<tmp>")
        if msg not in self.messages:
            self.messages.append(msg[:300])


# ---- helpers ---------------------------------------------------------------------------------
def _num(x):
    """JSON-friendly number: ints stay ints, floats rounded to 6 significant digits."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return int(x)
    return float(f"{x:.6g}")


def _str_keys(d):
    return {str(k): v for k, v in d.items()}


def hardware_summary(name: str, mapping: list[dict] | None) -> dict:
    """The accelerator's YAML, condensed: array, memories (innermost first), MAC energy."""
    with open(os.path.join(ZIGZAG_ROOT, "inputs", "hardware", f"{name}.yaml"), encoding="utf-8") as f:
        hw = yaml.safe_load(f)
    oa = hw["operational_array"]
    sizes = dict(zip(oa["dimensions"], oa["sizes"]))
    links = {"O": "O", "W": "I2", "I": "I1"}
    default = None
    if mapping:
        default = next((m for m in mapping if m["name"] == "default"), None)
        if default and default.get("memory_operand_links"):
            links = default["memory_operand_links"]
    mem_to_layer = {v: k for k, v in links.items()}
    memories = []
    for mname, m in hw["memories"].items():
        served = list(m.get("served_dimensions") or [])
        instances = math.prod(s for d, s in sizes.items() if d not in served)
        ports = []
        for p in m["ports"]:
            ports.append({
                "name": p["name"], "type": p["type"],
                "bw_min_bits": p["bandwidth_min"], "bw_max_bits": p["bandwidth_max"],
                "allocation": [a.replace(" ", "") for a in p["allocation"]],
            })
        memories.append({
            "name": mname,
            "size_bits": m["size"],
            "operands": [mem_to_layer.get(o, o) for o in m["operands"]],
            "mem_operands": list(m["operands"]),
            "r_cost_pj": m["r_cost"], "w_cost_pj": m["w_cost"],
            "latency": m.get("latency"),
            "served_dimensions": served,
            "instances": instances,
            "ports": ports,
        })
    hierarchy = {op: [m["name"] for m in memories if op in m["operands"]] for op in ("W", "I", "O")}
    out = {
        "yaml": f"zigzag/inputs/hardware/{name}.yaml",
        "array": {"dimensions": oa["dimensions"], "sizes": oa["sizes"], "pes": math.prod(oa["sizes"]),
                  "systolic_dimensions": list(oa.get("systolic_dimensions") or [])},
        "mac_energy_pj": oa["unit_energy"],
        "memories": memories,
        "hierarchy": hierarchy,
        "memory_operand_links": links,
    }
    if mapping is not None and default is not None and default.get("spatial_mapping"):
        out["spatial_unrolling"] = {d: [u.replace(" ", "") for u in lst]
                                    for d, lst in default["spatial_mapping"].items()}
        out["mapping_yaml"] = f"zigzag/inputs/mapping/{name}.yaml"
    else:
        out["spatial_unrolling"] = "searched per layer by ZigZag's SpatialMappingGeneratorStage"
        out["mapping_yaml"] = "none shipped; generated: default entry with memory_operand_links only"
    return out


def cme_record(cme, hw: str, layer: dict, wall_s: float, evals: int, eval_s: float,
               warnings: list[str], mapping_source: str, opt: str) -> dict:
    acc = cme.accelerator
    links = cme.memory_operand_links
    lat = {
        "total": _num(cme.latency_total2),
        "ideal": _num(cme.ideal_cycle),
        "ideal_temporal": _num(cme.ideal_temporal_cycle),
        "spatial_stall": _num(cme.ideal_temporal_cycle - cme.ideal_cycle),
        "temporal_stall": _num(cme.stall_slack_comb),
        "onloading": _num(cme.data_onloading_cycle),
        "offloading": _num(cme.data_offloading_cycle),
        "systolic_drain": _num(getattr(cme, "systolic_drain_cycle", 0.0)),
        "latency_total0": _num(cme.latency_total0),
        "latency_total1": _num(cme.latency_total1),
        "loading_cycles_overlapped_with_compute": _num(
            getattr(cme, "loading_offloading_cycles_borrowed_from_computation", 0.0)),
    }
    mem_energy: dict = {}
    accesses: dict = {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        mem_op = links.layer_to_mem_op(layer_op)
        levels = acc.memory_hierarchy.get_memory_levels(mem_op=mem_op)
        names = [lv.name for lv in levels]
        mem_energy[str(layer_op)] = {n: _num(e) for n, e in zip(names, per_level)}
        acc_op = {}
        for n, a in zip(names, cme.memory_word_access[layer_op]):
            d = {str(k.value if hasattr(k, "value") else k): a.get(k) for k in a.data} if hasattr(a, "data") else {}
            d = {k: _num(d.get(k, 0)) for k in DIRECTIONS}
            d["reads"] = _num(d["rd_out_to_low"] + d["rd_out_to_high"])
            d["writes"] = _num(d["wr_in_by_low"] + d["wr_in_by_high"])
            acc_op[n] = d
        accesses[str(layer_op)] = acc_op
    # temporal loops: the same order for every operand, innermost first; per operand how many of
    # them sit at each of its memory levels
    tm = cme.temporal_mapping.mapping_dic_stationary
    first = next(iter(tm))
    loops = [[str(d), _num(s)] for lvl in tm[first] for (d, s) in lvl]
    loops_per_level = {}
    for layer_op, lvls in tm.items():
        mem_op = links.layer_to_mem_op(layer_op)
        names = [lv.name for lv in acc.memory_hierarchy.get_memory_levels(mem_op=mem_op)]
        loops_per_level[str(layer_op)] = {n: len(l) for n, l in zip(names, lvls)}
    spatial = {str(oa): {str(d): _num(f) for d, f in m.items()}
               for oa, m in cme.layer.spatial_mapping.items()}
    macs = cme.layer.total_mac_count
    return {
        "kind": "record",
        "hardware": hw,
        "layer": layer["name"],
        "mapping_source": mapping_source,
        "opt": opt,
        "macs": _num(macs),
        "pes": _num(acc.operational_array.total_unit_count),
        "loop_sizes": dict(zip(layer["loop_dims"], layer["loop_sizes"])),
        "latency_cycles": lat,
        "energy_pj": {
            "total": _num(cme.energy_total),
            "mac": _num(cme.mac_energy),
            "memory": _num(cme.mem_energy),
            "memory_per_operand_level": mem_energy,
        },
        "accesses": accesses,
        "spatial_mapping": spatial,
        "temporal_loops": loops,
        "temporal_loops_per_level": loops_per_level,
        "utilization": {
            "spatial": _num(cme.mac_spatial_utilization),
            "total": _num(cme.mac_utilization2),
        },
        "search": {
            "evaluations": evals,
            "eval_seconds": _num(eval_s),
            "seconds_per_evaluation": _num(eval_s / evals) if evals else None,
            "wall_seconds": _num(wall_s),
            "loadavg_1min": _num(os.getloadavg()[0]),
        },
        "warnings": warnings,
    }


def run(job: dict, out) -> None:
    opts = job.get("options", {})
    opt = opts.get("opt", "latency")
    lpf = int(opts.get("lpf_limit", 6))
    nb_sm = int(opts.get("nb_spatial_mappings_generated", 3))
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    if not root.handlers:  # makes the API's basicConfig(INFO) a no-op
        root.addHandler(logging.StreamHandler(sys.stderr))
    with tempfile.TemporaryDirectory(prefix="zigzag_job_") as tmp:
        for hw in job["hardware"]:
            acc_path = os.path.join(ZIGZAG_ROOT, "inputs", "hardware", f"{hw}.yaml")
            map_path = os.path.join(ZIGZAG_ROOT, "inputs", "mapping", f"{hw}.yaml")
            if not os.path.exists(acc_path):
                out.write(json.dumps({"kind": "error", "hardware": hw, "error": "no such shipped hardware"}) + "\n")
                continue
            if os.path.exists(map_path):
                with open(map_path, encoding="utf-8") as f:
                    mapping = yaml.safe_load(f)
                mapping_source = f"zigzag/inputs/mapping/{hw}.yaml"
            else:
                mapping = GENERATED_MAPPING
                map_path = os.path.join(tmp, f"{hw}_mapping.yaml")
                with open(map_path, "w", encoding="utf-8") as f:
                    yaml.safe_dump(mapping, f)
                mapping_source = "generated (no spatial mapping: searched)"
            summary = hardware_summary(hw, mapping)
            out.write(json.dumps({"kind": "hardware", "hardware": hw, "summary": summary}) + "\n")
            out.flush()
            for layer in job["layers"]:
                wl_path = os.path.join(tmp, f"{hw}__{layer['id']}.yaml")
                with open(wl_path, "w", encoding="utf-8") as f:
                    yaml.safe_dump([layer], f, sort_keys=False)
                dump = os.path.join(tmp, f"dump_{hw}_{layer['id']}")
                collect = _Collect()
                root.addHandler(collect)
                _reset_unique_filters()
                _COUNTER["n"], _COUNTER["s"] = 0, 0.0
                t0 = time.perf_counter()
                try:
                    with contextlib.redirect_stdout(sys.stderr):
                        _, _, cmes = get_hardware_performance_zigzag(
                            wl_path, acc_path, map_path, opt=opt, dump_folder=dump,
                            lpf_limit=lpf, nb_spatial_mappings_generated=nb_sm,
                            loma_show_progress_bar=False)
                    wall = time.perf_counter() - t0
                    # cmes: [(summed CME, [(best CME of the layer, extra), ...])]
                    cme = cmes[0][1][0][0]
                    rec = cme_record(cme, hw, layer, wall, _COUNTER["n"], _COUNTER["s"],
                                     collect.messages, mapping_source, opt)
                except Exception as exc:  # noqa: BLE001 - one failing layer must not stop the job
                    rec = {"kind": "record", "hardware": hw, "layer": layer["name"],
                           "error": f"{type(exc).__name__}: {exc}"[:500],
                           "warnings": collect.messages}
                finally:
                    root.removeHandler(collect)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(f"[zigzag_runner] {hw} {layer['name']}: "
                      f"{rec.get('latency_cycles', {}).get('total', rec.get('error'))} cycles, "
                      f"{_COUNTER['n']} evaluations, {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] not in ("-",):
        with open(argv[1], encoding="utf-8") as f:
            job = json.load(f)
    else:
        job = json.load(sys.stdin)
    out = sys.stdout
    run(job, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
