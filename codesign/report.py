"""Reports of a search run: ``report.md`` and a self-contained ``report.html`` (PNG figures beside
the Markdown, embedded in the HTML), and ``report.json`` holding every number they show.

Everything comes from the run's ``result.json``. What it does not store is derived from what
it does, deterministically: the energy of each layer by data space and its place on the
roofline come from re-evaluating the layer's stored mapping with the cost model (the report
checks that this reproduces the stored cycles and energy), and the latency of the
sub-networks on the accuracy-EDP front comes from re-mapping them with the search's own
sub-network mapper (checked against the stored EDP).
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import statistics
from pathlib import Path

from models.errors import CodesignError

from .search.rundir import atomic_write

COMPONENTS = ("mac", "rf", "noc", "glb", "dram")
SPACES = ("W", "I", "O")
SPACE_TITLES = {"W": "weights", "I": "inputs", "O": "outputs", "mac": "MACs (no data space)"}
BOUND_COLORS = {"compute": "C2", "rf": "C4", "glb": "C1", "dram": "C3"}
REPRODUCE_RTOL = 1e-9


# ---- loading -------------------------------------------------------------------------------
def load_result(run_dir) -> dict:
    """The ``result.json`` of a finished run, checked against its schema (``run_schema``): one
    clear error naming the file and the field when it is missing, malformed or of another shape."""
    from models.inputs import load_json_file, validate

    from .search.run_schema import (MAX_RESULT_BYTES, AsicResult, FpgaResult, LatencyTargetResult, RunDirError,
                                     SubnetResult)

    path = Path(run_dir) / "result.json"
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run directory not found: {run_dir}")
    if not path.exists():
        raise RunDirError(f"{run_dir} has no result.json: the run has not finished "
                          f"(continue it with 'codesign search --resume {run_dir}')")
    result = load_json_file(path, error=RunDirError, max_bytes=MAX_RESULT_BYTES)
    if not isinstance(result, dict):
        raise RunDirError(f"{path}: expected a search result (a JSON object), got {json.dumps(result)[:40]}")
    schema = {"fpga": FpgaResult, "subnet": SubnetResult, "subnet-latency": LatencyTargetResult}.get(
        result.get("kind"), AsicResult)
    validate(schema, result, str(path), error=RunDirError)
    return result


# ---- numbers derived from the stored mappings ----------------------------------------------
def _close(a: float, b: float, rtol: float = REPRODUCE_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300)


def analyze_layer(layer: dict, acc) -> dict:
    """Re-evaluate one stored layer (dims + mapping) on ``acc``: energy by data space, accesses
    per level and its roofline placement. Raises if the stored cost is not reproduced."""
    from accelerators.cost import evaluate_mapping
    from accelerators.roofline import roofline
    from mappings.mapping import Mapping
    from models.layer import Layer

    lay = Layer(name=layer["name"], stride=layer.get("stride", 1), dilation=layer.get("dilation", 1),
                padding=layer.get("padding", 0), **layer["dims"])
    cost = evaluate_mapping(lay, acc, *Mapping.from_dict(layer["mapping"]).to_arrays())
    if not cost.valid or cost.cycles != layer["cycles"] or not _close(cost.energy_pj, layer["energy_pj"]):
        raise CodesignError(f"layer '{layer['name']}': its stored mapping does not reproduce the stored cost on "
                            f"'{acc.name}' (result written by another version of the cost model?)")
    rl = roofline(acc, cost)
    return {
        "energy_by_space": {**{x: cost.energy_by_space[x] for x in SPACES},
                            "mac": cost.energy_by_component["mac"]},
        "dram_words": rl["levels"]["dram"]["words"],
        "glb_words": rl["levels"]["glb"]["words"],
        "dram_intensity_macs_per_word": rl["levels"]["dram"]["intensity_macs_per_word"],
        "glb_intensity_macs_per_word": rl["levels"]["glb"]["intensity_macs_per_word"],
        "achieved_macs_per_cycle": rl["achieved_macs_per_cycle"],
        "roof": rl["roof"],
    }


def _acc_summary(a: dict) -> dict:
    from accelerators import accelerator_from_dict

    acc = accelerator_from_dict(a)

    def cap(level):
        c = a[level]["capacity_bytes"]
        return sum(c.values()) if isinstance(c, dict) else c

    return {
        "name": a["name"],
        "array": " x ".join(f"{d['size']}[{'/'.join(d['loops'])}]" for d in a["array"]),
        "pes": acc.num_pes,
        "rf_bytes_per_pe": cap("rf"),
        "glb_bytes": cap("glb"),
        "onchip_bytes": acc.onchip_bytes,
        "glb_bw_words_per_cycle": acc.glb.bw_words_per_cycle,  # 16-bit words where given in bits
        "dram_bw_words_per_cycle": acc.dram.bw_words_per_cycle,
        "clock_mhz": a["clock_mhz"],
        "rf_read_energy_pj": a["rf"]["read_energy_pj"],
        "glb_read_energy_pj": a["glb"]["read_energy_pj"],
        "dram_read_energy_pj": a["dram"]["read_energy_pj"],
        "peak_macs_per_cycle": acc.num_pes,
    }


def _side(result: dict, side: str, workload: str) -> dict:
    """Per-layer and total numbers of one workload on the found or the baseline accelerator."""
    from accelerators import accelerator_from_dict

    acc_dict = result["accelerator"] if side == "found" else result["baseline"]["accelerator"]
    acc = accelerator_from_dict(acc_dict)
    nc = result[side]["workloads"][workload]
    layers = []
    for l in nc["layers"]:
        row = {k: l[k] for k in ("name", "macs", "cycles", "latency_ms", "energy_pj", "edp", "utilization", "bound")}
        # phases of the cycles (runs written before they were reported have none)
        row.update({k: l.get(k) for k in ("pipeline_cycles", "startup_cycles", "tail_cycles")})
        row["energy_by_component"] = {c: l["energy_by_component"].get(c, 0.0) for c in COMPONENTS}
        row["ratio_to_lower_bound"] = l.get("ratio_to_lower_bound")
        row.update(analyze_layer(l, acc))
        layers.append(row)
    t = nc["total"]
    total = {k: t[k] for k in ("macs", "cycles", "latency_ms", "energy_pj", "edp", "utilization")}
    total["energy_by_component"] = {c: t["energy_by_component"].get(c, 0.0) for c in COMPONENTS}
    total["energy_by_space"] = {x: sum(l["energy_by_space"][x] for l in layers) for x in SPACES + ("mac",)}
    total["ratio_to_lower_bound"] = t.get("ratio_to_lower_bound")
    out = {"accelerator": acc_dict["name"], "layers": layers, "total": total}
    if t.get("schedule") == "fused":  # the totals are the depth-first schedule's; the layers run alone
        total["energy_by_space"] = {**{x: t["energy_by_space"][x] for x in SPACES},
                                    "mac": t["energy_by_component"]["mac"]}
        out["schedule"] = {"stacks": [_stack_row(st) for st in nc["schedule"]["stacks"]],
                           "dram_words": t["dram_words"], "layer_by_layer": nc["layer_by_layer_total"],
                           "layer_by_layer_dram_words": nc.get("layer_by_layer_dram_words")}
    return out


def _stack_row(st: dict) -> dict:
    names = st["layers"]
    return {"stack": names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)})",
            "tile": "whole" if st["tile"] is None else f"{st['tile'][0]}x{st['tile'][1]}",
            "overlap": st["overlap"] if st["tiles"] > 1 else "-", "tiles": st["tiles"], "cycles": st["cycles"],
            "energy_pj": st["energy_pj"], "dram_weights": st["dram_words"]["weights"],
            "dram_activations": st["dram_words"]["activations"], "peak_glb_bytes": st["peak_glb_bytes"]}


def _convergence(result: dict) -> dict:
    """Per outer-loop iteration (one batch of candidates): every candidate's EDP, the best of
    the batch, the batch median (the lower middle one, so that it is a candidate's EDP) and the
    best so far."""
    conv = result.get("convergence") or []
    batch = max(1, int(result["config"].get("batch") or 1))
    iters: dict[int, list] = {}
    for c in conv:
        iters.setdefault(c["i"] // batch, []).append(c)
    out, best = [], None
    for it in sorted(iters):
        cs = iters[it]
        ok = [c["edp"] for c in cs if c["status"] == "ok" and c["edp"] is not None]
        if ok:
            best = min(ok) if best is None else min(best, min(ok))
        out.append({"iteration": it, "candidates": len(cs), "ok": len(ok),
                    "edp": ok, "batch_best_edp": min(ok) if ok else None,
                    "batch_median_edp": statistics.median_low(ok) if ok else None,
                    "best_so_far_edp": best})
    return {"batch": batch, "iterations": out, "baseline_edp": result["baseline"]["edp_geomean"]}


def _pareto(result: dict) -> dict | None:
    """The sub-network search's accuracy-EDP front and the latency of each point on the found
    accelerator (re-mapped with the search's sub-network mapper; EDP checked)."""
    found = result["found"]
    if "pareto" not in found:
        return None
    from accelerators import accelerator_from_dict
    from mappings.cache import MappingCache
    from mappings.evaluate import evaluate_network
    from models.spaces import get_space

    cfg = result["config"]
    space, acc, cache = get_space(cfg["space"]), accelerator_from_dict(result["accelerator"]), MappingCache()
    points = []
    for p in found["pareto"]:
        if all(k in p for k in ("latency_ms", "energy_pj", "macs")):  # stored by the search: nothing to re-map
            points.append({"accuracy": p["accuracy"], "edp": p["cost"], "latency_ms": p["latency_ms"],
                           "energy_pj": p["energy_pj"], "macs": p["macs"], "arch": p["arch"]})
            continue
        nc = evaluate_network(space.to_network(p["arch"]), acc, optimizer=cfg.get("subnet_mapper", "heuristic"),
                              objective=cfg.get("objective", "edp"), cache=cache, seed=cfg.get("seed", 0))
        if not _close(nc.total.edp, p["cost"], 1e-6):
            raise CodesignError("a sub-network on the stored Pareto front does not reproduce its stored EDP "
                                "(result written by another version of the code?)")
        points.append({"accuracy": p["accuracy"], "edp": p["cost"], "latency_ms": nc.total.latency_ms,
                       "energy_pj": nc.total.energy_pj, "macs": nc.total.macs, "arch": p["arch"]})
    sub = found["subnet"]
    chosen = next((i for i, p in enumerate(found["pareto"]) if p["arch"] == sub["arch"]), None)
    return {"points": points, "chosen": chosen, "subnet": sub, "min_accuracy": cfg.get("min_accuracy"),
            "mapper": cfg.get("subnet_mapper", "heuristic"), "evolution": found.get("evolution") or [],
            "fused_finalists": found.get("fused_finalists") or []}


def report_data(result: dict) -> dict:
    """Every number the report shows (``report.json``)."""
    cfg = result["config"]
    workloads = {}
    for w in result["found"]["workloads"]:
        workloads[w] = {"found": _side(result, "found", w), "baseline": _side(result, "baseline", w),
                        "ratios": result["ratios"][w]}
    return {
        "config": cfg,
        "summary": {"edp_improvement_geomean": result["edp_improvement_geomean"],
                    "found_edp_geomean": result["found"]["edp_geomean"],
                    "baseline_edp_geomean": result["baseline"]["edp_geomean"],
                    "evaluations": result.get("evaluations", {}), "seconds": result.get("seconds")},
        "accelerators": {"found": _acc_summary(result["accelerator"]),
                         "baseline": _acc_summary(result["baseline"]["accelerator"])},
        "workloads": workloads,
        "convergence": _convergence(result),
        "pareto": _pareto(result),
    }


# ---- figures -------------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)


def plot_convergence(data: dict, path: Path) -> None:
    """Outer loop per iteration (and the sub-network evolution per generation, if any)."""
    plt = _plt()
    conv = data["convergence"]
    evo = (data.get("pareto") or {}).get("evolution") or []
    ncols = 2 if evo else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.4 * ncols, 4.2), squeeze=False)
    ax = axes[0][0]
    its = conv["iterations"]
    xs = [it["iteration"] for it in its for _ in it["edp"]]
    ys = [e for it in its for e in it["edp"]]
    ax.scatter(xs, ys, s=10, alpha=0.35, color="C0", label=f"candidate ({data['config']['mapper']} mapper)")
    med = [(it["iteration"], it["batch_median_edp"]) for it in its if it["batch_median_edp"] is not None]
    if med:
        ax.plot(*zip(*med), color="C0", lw=1, label="iteration median")
    best = [(it["iteration"], it["best_so_far_edp"]) for it in its if it["best_so_far_edp"] is not None]
    if best:
        ax.step(*zip(*best), where="post", color="C3", lw=2, label="best so far")
    cfg = data["config"]
    ax.axhline(conv["baseline_edp"], color="k", ls="--", lw=1,
               label=f"baseline ({data['accelerators']['baseline']['name']}, {cfg['final_mapper']} mapper)")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_int_locator())
    ax.set_xlabel(f"iteration ({conv['batch']} candidates each)")
    ax.set_ylabel("EDP (pJ x cycles)")
    ax.set_title("Accelerator search (outer loop)")
    ax.legend(fontsize=8)
    if evo:
        ax = axes[0][1]
        for g in evo:
            ax.scatter([g["generation"]] * len(g["population_costs"]), g["population_costs"], s=10, alpha=0.35,
                       color="C0")
        ax.plot([g["generation"] for g in evo], [g["best_cost"] for g in evo], "o-", color="C3", ms=4,
                label="best feasible")
        ax.scatter([], [], s=10, color="C0", alpha=0.35, label="population")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(_int_locator())
        ax.set_xlabel("generation")
        ax.set_ylabel("EDP on the found accelerator (pJ x cycles)")
        ax.set_title("Sub-network evolution (mid loop, found accelerator)")
        ax.legend(fontsize=8)
    _save(fig, path)


def _int_locator():
    from matplotlib.ticker import MaxNLocator
    return MaxNLocator(integer=True)


def _layer_axis(ax, names):
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=5 if len(names) > 30 else 7)
    ax.set_xlim(-0.7, len(names) - 0.3)


def plot_layer_edp(wl: dict, workload: str, path: Path) -> None:
    plt = _plt()
    found, base = wl["found"]["layers"], wl["baseline"]["layers"]
    names = [l["name"] for l in found]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.15 * len(names) + 2), 4.2))
    idx = range(len(names))
    ax.bar([i - 0.2 for i in idx], [l["edp"] for l in base], width=0.4, label=f"baseline ({wl['baseline']['accelerator']})")
    ax.bar([i + 0.2 for i in idx], [l["edp"] for l in found], width=0.4, label=f"found ({wl['found']['accelerator']})")
    ax.set_yscale("log")
    ax.set_ylabel("EDP (pJ x cycles)")
    _layer_axis(ax, names)
    ax.set_title(f"Per-layer EDP: {workload}")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_stacks(wl: dict, workload: str, path: Path) -> None:
    """Per stack of the found accelerator's depth-first schedule: DRAM words (weights and
    activations stacked) and energy."""
    plt = _plt()
    rows = wl["found"]["schedule"]["stacks"]
    idx = range(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.4, 0.25 * len(rows) + 2), 6.0), sharex=True)
    w = [r["dram_weights"] for r in rows]
    a1.bar(idx, w, label="weights")
    a1.bar(idx, [r["dram_activations"] for r in rows], bottom=w, label="activations")
    a1.set_ylabel("DRAM words")
    a1.legend(fontsize=8)
    a1.set_title(f"Per stack (depth-first schedule, found accelerator): {workload}")
    a2.bar(idx, [r["energy_pj"] for r in rows])
    a2.set_ylabel("energy (pJ)")
    _layer_axis(a2, [r["stack"] for r in rows])
    _save(fig, path)


def plot_energy(wl: dict, workload: str, path: Path) -> None:
    """Per-layer energy of the found accelerator stacked by component and by data space, with
    the network totals of found and baseline beside each."""
    plt = _plt()
    found = wl["found"]["layers"]
    names = [l["name"] for l in found]
    fig, axes = plt.subplots(2, 2, figsize=(max(8, 0.15 * len(names) + 4), 7.5),
                             gridspec_kw={"width_ratios": [max(4, len(names) / 8), 1.2]})
    for row, (key, keys, titles) in enumerate((
            ("energy_by_component", COMPONENTS, {c: c.upper() if c != "noc" else "NoC" for c in COMPONENTS}),
            ("energy_by_space", SPACES + ("mac",), SPACE_TITLES))):
        ax = axes[row][0]
        bottom = [0.0] * len(found)
        for j, k in enumerate(keys):
            vals = [l[key][k] / 1e6 for l in found]
            ax.bar(range(len(found)), vals, bottom=bottom, color=f"C{j}", label=titles[k], width=0.8)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("energy (uJ)")
        ax.set_title(f"{workload} on {wl['found']['accelerator']}: energy per layer by "
                     f"{'component' if row == 0 else 'data space'}")
        _layer_axis(ax, names)
        ax.legend(fontsize=7, ncol=len(keys))
        ax = axes[row][1]
        sides = (("found", wl["found"]), ("baseline", wl["baseline"]))
        for i, (_label, s) in enumerate(sides):
            b = 0.0
            for j, k in enumerate(keys):
                v = s["total"][key][k] / 1e6
                ax.bar(i, v, bottom=b, color=f"C{j}", width=0.6)
                b += v
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["found", "baseline"], fontsize=8)
        ax.set_title("network total", fontsize=9)
        ax.set_ylabel("energy (uJ)")
    _save(fig, path)


def plot_roofline(data: dict, wl: dict, workload: str, path: Path) -> None:
    """Each layer at its DRAM arithmetic intensity and achieved MACs/cycle, under the roofs of
    the found and the baseline accelerator."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), squeeze=False)
    for ax, side in zip(axes[0], ("found", "baseline")):
        a = data["accelerators"][side]
        layers = wl[side]["layers"]
        xs = [l["dram_intensity_macs_per_word"] for l in layers]
        lo, hi = min(xs + [1.0]) / 2, max(xs + [a["peak_macs_per_cycle"] / a["dram_bw_words_per_cycle"]]) * 2
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        peak = a["peak_macs_per_cycle"]
        ax.plot(grid, [min(peak, x * a["dram_bw_words_per_cycle"]) for x in grid], color="k", lw=1.5,
                label=f"DRAM roof ({a['dram_bw_words_per_cycle']:g} words/cycle)")
        if a["glb_bw_words_per_cycle"]:
            ax.plot(grid, [min(peak, x * a["glb_bw_words_per_cycle"]) for x in grid], color="0.6", lw=1, ls="--",
                    label=f"GLB roof ({a['glb_bw_words_per_cycle']:g} words/cycle)")
            gx = [l["glb_intensity_macs_per_word"] for l in layers]
            ax.scatter(gx, [l["achieved_macs_per_cycle"] for l in layers], marker="x", s=12, color="0.6",
                       label="same layers at GLB intensity")
        for b, color in BOUND_COLORS.items():
            pts = [(l["dram_intensity_macs_per_word"], l["achieved_macs_per_cycle"]) for l in layers if l["bound"] == b]
            if pts:
                ax.scatter(*zip(*pts), s=18, color=color, label=f"{b}-bound layer", zorder=3)
        ax.axhline(peak, color="k", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (MACs per DRAM word)")
        ax.set_ylabel("MACs per cycle")
        ax.set_title(f"{side}: {a['name']} ({a['pes']} PEs), {workload}")
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def _front(points: list[dict], key: str) -> list[dict]:
    """Points not dominated in (higher accuracy, lower ``key``), sorted by ``key``."""
    out, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p[key], -p["accuracy"])):
        if p["accuracy"] > best:
            out.append(p)
            best = p["accuracy"]
    return out


def plot_pareto(data: dict, path: Path) -> None:
    plt = _plt()
    par = data["pareto"]
    pts = par["points"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, key, label in ((axes[0], "edp", "EDP (pJ x cycles)"), (axes[1], "latency_ms", "latency (ms)")):
        ax.scatter([p[key] for p in pts], [p["accuracy"] for p in pts], s=16, color="C0",
                   label="sub-networks on the accuracy-EDP front")
        front = _front(pts, key)
        ax.plot([p[key] for p in front], [p["accuracy"] for p in front], "-", color="C0", lw=1.2,
                label=f"non-dominated in accuracy-{'EDP' if key == 'edp' else 'latency'}")
        if par["chosen"] is not None:
            c = pts[par["chosen"]]
            ax.plot([c[key]], [c["accuracy"]], "r*", ms=13, label="chosen sub-network")
        if par["min_accuracy"] is not None:
            ax.axhline(par["min_accuracy"], color="k", ls="--", lw=1, label=f"min accuracy {par['min_accuracy']}")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} on the found accelerator ({par['mapper']} mapper)")
        ax.set_ylabel("predicted top-1 accuracy")
        ax.legend(fontsize=8)
    axes[0].set_title("Accuracy vs EDP")
    axes[1].set_title("Accuracy vs latency (points of the EDP front)")
    _save(fig, path)


# ---- document blocks -> Markdown / HTML ----------------------------------------------------
def fmt(x, digits: int = 4) -> str:
    """Numbers as reports and studies print them: ``digits`` significant digits between 1e-3
    and 1e6, else scientific with ``digits`` decimals; ``-`` for None, NaN and infinity."""
    if x is None:
        return "-"
    if isinstance(x, (bool, int, str)):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        if x == 0:
            return "0"
        if 1e-3 <= abs(x) < 1e6:
            return f"{x:.{digits}g}"
        return f"{x:.{digits}e}"
    return str(x)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _blocks(data: dict, images: dict) -> list[tuple]:
    cfg = data["config"]
    s = data["summary"]
    fa, ba = data["accelerators"]["found"], data["accelerators"]["baseline"]
    what = (f"space {cfg['space']} (min accuracy {fmt(cfg['min_accuracy'])}, {cfg['constraint']} constraint)"
            if cfg.get("space") else f"workloads {', '.join(cfg['workloads'])}")
    ev = s["evaluations"]
    B = [("h1", "NAAS search report"),
         ("p", f"Search over {what}; envelope {cfg['envelope']}; optimizer {cfg['optimizer']}; budget "
               f"{cfg['budget']}; batch {cfg['batch']}; seed {cfg['seed']}; search mapper {cfg['mapper']}, "
               f"final mapper {cfg['final_mapper']}; objective {cfg['objective']}."),
         ("p", f"Candidates: {ev.get('ok', 0)} evaluated, {ev.get('rejected', 0)} rejected by the envelope, "
               f"{ev.get('unmappable', 0)} unmappable; wall time {fmt(s['seconds'])} s."),
         ("strong", f"EDP improvement over {ba['name']} (geomean over workloads): "
                    f"{fmt(s['edp_improvement_geomean'])}x"),
         ("h2", "Summary"),
         ("table", "summary", ["workload", "EDP found", "EDP baseline", "EDP improvement", "speedup", "energy saving"],
          [[w, fmt(d["found"]["total"]["edp"]), fmt(d["baseline"]["total"]["edp"]), fmt(d["ratios"]["edp_improvement"]),
            fmt(d["ratios"]["speedup"]), fmt(d["ratios"]["energy_saving"])] for w, d in data["workloads"].items()]),
         ("h2", "Found accelerator vs baseline"),
         ("table", "accelerators", ["", "found", "baseline"],
          [[label, fmt(fa[k]), fmt(ba[k])] for label, k in (
              ("name", "name"), ("PE array [parallel loops]", "array"), ("PEs", "pes"),
              ("register file per PE (bytes)", "rf_bytes_per_pe"), ("global buffer (bytes)", "glb_bytes"),
              ("on-chip total (bytes)", "onchip_bytes"), ("GLB bandwidth (words/cycle)", "glb_bw_words_per_cycle"),
              ("DRAM bandwidth (words/cycle)", "dram_bw_words_per_cycle"), ("clock (MHz)", "clock_mhz"),
              ("RF read energy (pJ/word)", "rf_read_energy_pj"), ("GLB read energy (pJ/word)", "glb_read_energy_pj"),
              ("DRAM read energy (pJ/word)", "dram_read_energy_pj"))]),
         ("h2", "Search convergence"),
         ("p", f"Candidates are scored with the {cfg['mapper']} mapper during the search (geomean EDP over the "
               f"workloads); the found accelerator and the baseline are re-mapped with the {cfg['final_mapper']} "
               f"mapper for every other table. One iteration is one batch of {cfg['batch']} candidates."),
         ("img", "convergence", images["convergence"]),
         ("table", "convergence", ["iteration", "candidates", "evaluated", "best of iteration", "median of iteration",
                                   "best so far"],
          [[str(it["iteration"]), str(it["candidates"]), str(it["ok"]), fmt(it["batch_best_edp"]),
            fmt(it["batch_median_edp"]), fmt(it["best_so_far_edp"])] for it in data["convergence"]["iterations"]])]
    par = data.get("pareto")
    if par:
        sub = par["subnet"]
        B += [("h2", "Sub-network"),
              ("p", f"Chosen sub-network: predicted accuracy {fmt(sub['accuracy'])}, EDP {fmt(sub['edp'])} pJ x cycles "
                    f"on the found accelerator with the {par['mapper']} mapper (the final mapper's numbers are in "
                    f"the tables below)."),
              ("code", json.dumps(sub["arch"])),
              ("img", "pareto", images["pareto"]),
              ("table", "pareto", ["accuracy", "EDP (pJ x cycles)", "latency (ms)", "energy (pJ)", "MACs"],
               [[fmt(p["accuracy"]), fmt(p["edp"]), fmt(p["latency_ms"]), fmt(p["energy_pj"]), fmt(p["macs"])]
                for p in par["points"]])]
        if par["fused_finalists"]:
            B += [("p", "The front above is costed layer by layer. The feasible sub-networks of least layer-by-layer "
                        "EDP were re-costed under their searched depth-first schedules; the least fused EDP chose the "
                        "sub-network (its EDP above is the fused one):"),
                  ("table", "fused finalists", ["accuracy", "EDP layer by layer", "EDP fused", "chosen"],
                   [[fmt(c["accuracy"]), fmt(c["layer_by_layer_edp"]), fmt(c["edp"]),
                     "yes" if c["arch"] == sub["arch"] else ""] for c in par["fused_finalists"]])]
    for w, d in data["workloads"].items():
        f, b = d["found"], d["baseline"]
        rows = []
        for label, key in (("cycles", "cycles"), ("latency (ms)", "latency_ms"), ("energy (pJ)", "energy_pj"),
                           ("EDP (pJ x cycles)", "edp"), ("utilization", "utilization"),
                           ("EDP / lower bound", "ratio_to_lower_bound")):
            rows.append([label, fmt(f["total"][key]), fmt(b["total"][key])])
        for c in COMPONENTS:
            rows.append([f"energy {c} (pJ)", fmt(f["total"]["energy_by_component"][c]),
                         fmt(b["total"]["energy_by_component"][c])])
        for x in SPACES:
            rows.append([f"energy {SPACE_TITLES[x]} (pJ)", fmt(f["total"]["energy_by_space"][x]),
                         fmt(b["total"]["energy_by_space"][x])])
        layer_rows = []
        for lf, lb in zip(f["layers"], b["layers"]):
            layer_rows.append([lf["name"], fmt(lf["macs"]), fmt(lf["cycles"]), fmt(lf["energy_pj"]), fmt(lf["edp"]),
                               fmt(lb["edp"]), fmt(lf["utilization"]), lf["bound"],
                               fmt(lf["dram_intensity_macs_per_word"])]
                              + [fmt(lf["energy_by_space"][x]) for x in SPACES]
                              + [fmt(lf[k]) if lf[k] is not None else "-"
                                 for k in ("pipeline_cycles", "startup_cycles", "tail_cycles")])
        B += [("h2", f"Workload: {w}"),
              ("table", f"totals:{w}", ["", "found", "baseline"], rows),
              ("img", f"per-layer EDP {w}", images[f"layers:{w}"]),
              ("img", f"energy breakdown {w}", images[f"energy:{w}"]),
              ("img", f"roofline {w}", images[f"roofline:{w}"]),
              ("p", "Per layer on the found accelerator (energy by data space from the stored mapping; intensity in "
                    "MACs per DRAM word; pipeline: the array's per-fold cycles; start-up and tail: the first "
                    "tiles' load and the last write-back, not overlapped with compute):"),
              ("table", f"layers:{w}", ["layer", "MACs", "cycles", "energy (pJ)", "EDP", "EDP baseline", "utilization",
                                        "bound", "intensity", "energy W (pJ)", "energy I (pJ)", "energy O (pJ)",
                                        "pipeline", "start-up", "tail"],
               layer_rows)]
        if f.get("schedule"):
            sch = f["schedule"]
            lbl_dram = sch.get("layer_by_layer_dram_words") or {}
            dram = sch["dram_words"]
            B += [("h2", f"Depth-first schedule: {w}"),
                  ("p", f"Totals above are the found accelerator's depth-first schedule (the per-layer rows and "
                        f"figures run each layer alone). Layer by layer on the same accelerator: EDP "
                        f"{fmt(sch['layer_by_layer']['edp'])}; DRAM words "
                        f"{fmt(dram['weights'] + dram['activations'])} fused against "
                        f"{fmt(sum(lbl_dram.values())) if lbl_dram else '-'} layer by layer."),
                  ("img", f"stacks {w}", images[f"stacks:{w}"]),
                  ("table", f"stacks:{w}", ["stack", "tile", "overlap", "tiles", "cycles", "energy (pJ)",
                                            "DRAM weights", "DRAM activations", "peak GLB (bytes)"],
                   [[r["stack"], r["tile"], r["overlap"], fmt(r["tiles"]), fmt(r["cycles"]), fmt(r["energy_pj"]),
                     fmt(r["dram_weights"]), fmt(r["dram_activations"]), fmt(r["peak_glb_bytes"])]
                    for r in sch["stacks"]])]
    return B


def _to_markdown(blocks) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out += [f"# {b[1]}", ""]
        elif kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "strong":
            out += [f"**{b[1]}**", ""]
        elif kind == "code":
            out += ["```json", b[1], "```", ""]
        elif kind == "img":
            out += [f"![{b[1]}]({b[2]})", ""]
        elif kind == "table":
            _, _name, head, rows = b
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(r) + " |" for r in rows]
            out.append("")
    return "\n".join(out)


_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}th{background:#f0f0f0}"
        "img{max-width:100%;display:block;margin:1em 0}pre{background:#f6f6f6;padding:8px;overflow-x:auto}")


def _to_html(blocks, run_dir: Path) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>NAAS search report</title>",
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif kind == "strong":
            out.append(f"<p><strong>{e(b[1])}</strong></p>")
        elif kind == "code":
            out.append(f"<pre>{e(b[1])}</pre>")
        elif kind == "img":
            data = base64.b64encode((run_dir / b[2]).read_bytes()).decode("ascii")
            out.append(f"<img alt='{e(b[1])}' src='data:image/png;base64,{data}'>")
        elif kind == "table":
            _, name, head, rows = b
            out.append(f"<table data-name='{e(name)}'><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---- entry points --------------------------------------------------------------------------
def _finite(obj, where="report"):
    if isinstance(obj, float) and not math.isfinite(obj):
        raise CodesignError(f"internal: non-finite number in {where}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for v in obj:
            _finite(v, where)


def _readable(path: Path) -> None:
    """Give a report file the permissions of a normally created file (the atomic write makes 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_report(run_dir, result: dict | None = None) -> dict:
    """Write ``report.md``, ``report.html``, ``report.json`` and the PNG figures into
    ``run_dir``; returns the report data with the written paths under ``files``."""
    run_dir = Path(run_dir)
    if result is None:
        result = load_result(run_dir)
    if result.get("kind") == "fpga":
        return write_fpga_report(run_dir, result)
    if result.get("kind") == "subnet":
        return write_subnet_report(run_dir, result)
    if result.get("kind") == "subnet-latency":
        return write_latency_target_report(run_dir, result)
    data = report_data(result)
    _finite(data)
    images = {"convergence": "convergence.png"}
    plot_convergence(data, run_dir / images["convergence"])
    if data.get("pareto"):
        images["pareto"] = "pareto.png"
        plot_pareto(data, run_dir / images["pareto"])
    for w, wl in data["workloads"].items():
        for kind, fn in (("layers", plot_layer_edp), ("energy", plot_energy)):
            images[f"{kind}:{w}"] = f"{kind}_{_safe(w)}.png"
            fn(wl, w, run_dir / images[f"{kind}:{w}"])
        images[f"roofline:{w}"] = f"roofline_{_safe(w)}.png"
        plot_roofline(data, wl, w, run_dir / images[f"roofline:{w}"])
        if wl["found"].get("schedule"):
            images[f"stacks:{w}"] = f"stacks_{_safe(w)}.png"
            plot_stacks(wl, w, run_dir / images[f"stacks:{w}"])
    blocks = _blocks(data, images)
    for name, text in (("report.md", _to_markdown(blocks)), ("report.html", _to_html(blocks, run_dir)),
                       ("report.json", json.dumps(data, indent=1, allow_nan=False) + "\n")):
        atomic_write(run_dir / name, text)
        _readable(run_dir / name)
    data["files"] = [str(run_dir / n) for n in ("report.md", "report.html", "report.json")] + \
        [str(run_dir / p) for p in images.values()]
    return data


def write_search_report(run_dir, result: dict) -> Path:
    """The report a finished search writes (``codesign.search.finalize``); returns the ``report.md`` path."""
    write_report(run_dir, result)
    return Path(run_dir) / "report.md"


# ---- FPGA runs (codesign search --board) ---------------------------------------------------
FPGA_OBJECTIVE_LABELS = {"edp": "EDP (J x s)", "energy": "energy (mJ)", "latency": "latency (ms)"}


def fpga_report_data(result: dict) -> dict:
    """Every number the report of an FPGA search shows: totals and layers of the found design and
    of the baseline preset (when one fits), the designs, the presets and the convergence."""
    cfg, base = result["config"], result["baseline"]
    workloads = {}
    for w, f in result["found"]["workloads"].items():
        b = base["workloads"][w] if base else None
        layers = [{"name": l["name"], "engine": l["engine"], "macs": l["macs"], "cycles": l["cycles"],
                   "latency_ms": l["latency_ms"], "bound": l["bound"], "energy_mj": l["energy_mj"],
                   "baseline_latency_ms": b["layers"][i]["latency_ms"] if b else None}
                  for i, l in enumerate(f["layers"])]
        workloads[w] = {"found": f["total"], "baseline": b["total"] if b else None,
                        "ratios": (result["ratios"] or {}).get(w), "layers": layers}
    batch = max(1, int(cfg.get("batch") or 1))
    iters: dict[int, list] = {}
    for c in result["convergence"]:
        iters.setdefault(c["i"] // batch, []).append(c)
    its, best = [], None
    for it in sorted(iters):
        ok = [c["score"] for c in iters[it] if c["status"] == "ok"]
        if ok:
            best = min(ok) if best is None else min(best, min(ok))
        its.append({"iteration": it, "candidates": len(iters[it]), "ok": len(ok), "score": ok,
                    "batch_best": min(ok) if ok else None, "best_so_far": best})
    return {
        "kind": "fpga",
        "config": cfg,
        "board": result["board"],
        "model": result["model"],
        "summary": {"edp_improvement_geomean": result["edp_improvement_geomean"],
                    "objective_improvement": result.get("objective_improvement"),
                    "found_score": result["found"]["score"], "baseline_score": base["score"] if base else None,
                    "found_edp_geomean": result["found"]["edp_geomean"],
                    "baseline_edp_geomean": base["edp_geomean"] if base else None,
                    "evaluations": result.get("evaluations", {}), "seconds": result.get("seconds")},
        "accelerators": {"found": {"name": f"{result['model']} design", **result["design"]},
                         "baseline": {"name": base["preset"], **base["design"]} if base else {"name": None}},
        "resources": result.get("resources"),
        "presets": result.get("presets", []),
        "workloads": workloads,
        "convergence": {"batch": batch, "iterations": its, "baseline_score": base["score"] if base else None},
    }


def plot_fpga_convergence(data: dict, path: Path) -> None:
    plt = _plt()
    conv, cfg = data["convergence"], data["config"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    its = conv["iterations"]
    ax.scatter([it["iteration"] for it in its for _ in it["score"]], [v for it in its for v in it["score"]],
               s=10, alpha=0.35, color="C0", label="candidate")
    best = [(it["iteration"], it["best_so_far"]) for it in its if it["best_so_far"] is not None]
    if best:
        ax.step(*zip(*best), where="post", color="C3", lw=2, label="best so far")
    if conv["baseline_score"] is not None:
        ax.axhline(conv["baseline_score"], color="k", ls="--", lw=1,
                   label=f"baseline (preset {data['accelerators']['baseline']['name']})")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_int_locator())
    ax.set_xlabel(f"iteration ({conv['batch']} candidates each)")
    ax.set_ylabel(FPGA_OBJECTIVE_LABELS.get(cfg["objective"], cfg["objective"]) + " (geomean)")
    ax.set_title(f"{data['model']} design search on {data['board']['name']} (outer loop)")
    ax.legend(fontsize=8)
    _save(fig, path)


def _fpga_blocks(data: dict, images: dict) -> list[tuple]:
    cfg, s, board = data["config"], data["summary"], data["board"]
    fd, bd = data["accelerators"]["found"], data["accelerators"]["baseline"]
    has_base = bd["name"] is not None
    ev = s["evaluations"]
    B = [("h1", "FPGA design search report"),
         ("p", f"Search of {data['model']} designs on {board['name']} for workloads {', '.join(cfg['workloads'])}; "
               f"optimizer {cfg['optimizer']}; budget {cfg['budget']}; batch {cfg['batch']}; seed {cfg['seed']}; "
               f"objective {cfg['objective']}."),
         ("p", f"Candidates: {ev.get('ok', 0)} evaluated, {ev.get('rejected', 0)} rejected by the board's limits; "
               f"wall time {fmt(s['seconds'])} s.")]
    if has_base:
        B.append(("strong", f"EDP improvement over preset {bd['name']} (geomean over workloads): "
                            f"{fmt(s['edp_improvement_geomean'])}x"))
    else:
        B.append(("p", f"No {data['model']} preset of {board['name']} fits these workloads: no baseline."))
    B += [("h2", "Summary"),
          ("table", "summary", ["workload", "latency found (ms)", "latency baseline (ms)", "energy found (mJ)",
                                "energy baseline (mJ)", "EDP found (J x s)", "EDP baseline (J x s)",
                                "EDP improvement", "speedup", "energy saving"],
           [[w, fmt(d["found"]["latency_ms"]), fmt((d["baseline"] or {}).get("latency_ms")),
             fmt(d["found"]["energy_mj"]), fmt((d["baseline"] or {}).get("energy_mj")),
             fmt(d["found"]["edp_j_s"]), fmt((d["baseline"] or {}).get("edp_j_s")),
             fmt((d["ratios"] or {}).get("edp_improvement")), fmt((d["ratios"] or {}).get("speedup")),
             fmt((d["ratios"] or {}).get("energy_saving"))] for w, d in data["workloads"].items()])]
    params = [k for k in fd if k != "name" and fd[k] is not None]
    res = data["resources"] or {}
    limits = (("DSP", "dsp", "dsp"), ("BRAM36", "bram36", "bram36"), ("LUT", "lut", "lut"),
              ("memory port bits", "port_bits", "mem_port_bits"))
    B += [("h2", "Found design vs baseline"),
          ("table", "design", ["", "found", "baseline", "board"],
           [["name", fd["name"], fmt(bd["name"]), board["name"]]]
           + [[k, fmt(fd[k]), fmt(bd.get(k)), "-"] for k in params]
           + [[label, fmt(res.get(k)), "-", fmt(board[bk])] for label, k, bk in limits if res.get(k) is not None])]
    if data["presets"]:
        B += [("h2", "Presets"),
              ("table", "presets", ["preset", "fits", f"{cfg['objective']} (geomean)", "limits broken"],
               [[p["preset"], str(p["fits"]), fmt(p["score"]), "; ".join(p["violations"]) or "-"]
                for p in data["presets"]])]
    B += [("h2", "Search convergence"),
          ("img", "convergence", images["convergence"]),
          ("table", "convergence", ["iteration", "candidates", "evaluated", "best of iteration", "best so far"],
           [[str(it["iteration"]), str(it["candidates"]), str(it["ok"]), fmt(it["batch_best"]),
             fmt(it["best_so_far"])] for it in data["convergence"]["iterations"]])]
    for w, d in data["workloads"].items():
        B += [("h2", f"Workload: {w}"),
              ("table", f"layers:{w}", ["layer", "engine", "MACs", "cycles", "latency (ms)", "bound", "energy (mJ)",
                                        "latency baseline (ms)"],
               [[l["name"], l["engine"], fmt(l["macs"]), fmt(l["cycles"]), fmt(l["latency_ms"]), l["bound"],
                 fmt(l["energy_mj"]), fmt(l["baseline_latency_ms"])] for l in d["layers"]])]
    return B


def write_fpga_report(run_dir, result: dict) -> dict:
    """``report.md``, ``report.html``, ``report.json`` and ``convergence.png`` of an FPGA search."""
    run_dir = Path(run_dir)
    data = fpga_report_data(result)
    _finite(data)
    images = {"convergence": "convergence.png"}
    plot_fpga_convergence(data, run_dir / images["convergence"])
    blocks = _fpga_blocks(data, images)
    for name, text in (("report.md", _to_markdown(blocks)), ("report.html", _to_html(blocks, run_dir)),
                       ("report.json", json.dumps(data, indent=1, allow_nan=False) + "\n")):
        atomic_write(run_dir / name, text)
        _readable(run_dir / name)
    data["files"] = [str(run_dir / n) for n in ("report.md", "report.html", "report.json", images["convergence"])]
    return data


# ---- sub-network searches alone (codesign search --objective accuracy) ----------------------
def subnet_accuracy_label(result: dict) -> str:
    """What the ``accuracy`` numbers of a sub-network search are."""
    src = result["config"].get("accuracy", "predictor")
    return {"predictor": "predicted accuracy", "table": "measured accuracy"}.get(src, f"{src} score")


def subnet_limits_text(result: dict) -> str:
    """The memory limits of a sub-network search in words: ``"STM32F746: peak SRAM <= 320 kB (...)"``."""
    lim, mcu = result["limits"], result["mcu"]
    sched = "patch-based" if lim["sram_schedule"] == "patch" else "layer by layer"
    parts = []
    if lim["max_sram_kb"] is not None:
        parts.append(f"peak SRAM <= {lim['max_sram_kb']:g} kB ({sched})")
    if lim["max_flash_kb"] is not None:
        parts.append(f"Flash <= {lim['max_flash_kb']:g} kB")
    what = ", ".join(parts) if parts else "no memory limit"
    return f"{mcu['name']}: {what}" if mcu else what


def plot_subnet_front(result: dict, path: Path) -> None:
    """The accuracy of the evaluated sub-networks' front against their peak SRAM, the chosen one starred."""
    plt = _plt()
    b, lim, pts = result["best"], result["limits"], result["pareto"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step([p["peak_sram_kb"] for p in pts], [p["accuracy"] for p in pts], where="post", marker="o", ms=3,
            label="front of the evaluated sub-networks")
    ax.plot([b["peak_sram_kb"]], [b["accuracy"]], "r*", ms=12, label="chosen")
    if lim["max_sram_kb"] is not None:
        ax.axvline(lim["max_sram_kb"], color="k", lw=0.8, ls="--", label="SRAM limit")
    ax.set_xlabel("peak activation SRAM (kB, int8)")
    ax.set_ylabel(subnet_accuracy_label(result))
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def _subnet_blocks(result: dict) -> list[tuple]:
    cfg, b = result["config"], result["best"]
    what = subnet_accuracy_label(result)
    return [
        ("h1", "Sub-network search report"),
        ("p", f"Space {result['space']}; objective: the highest {what} within {subnet_limits_text(result)}"
              + (f" and accuracy >= {fmt(cfg['min_accuracy'])}" if cfg.get("min_accuracy") is not None else "")
              + f"; resolution {cfg.get('resolution') or 'searched'}; population {cfg['population']}, "
                f"{cfg['generations']} generations, seed {cfg['seed']}; {result['evaluated']} sub-networks "
                f"evaluated in {fmt(result['seconds'])} s."),
        ("strong", f"Chosen: {what} {fmt(b['accuracy'])}, peak SRAM {fmt(b['peak_sram_kb'])} kB, Flash "
                   f"{fmt(b['flash_kb'])} kB, {fmt(b['macs'] / 1e6)} M MACs"),
        ("code", json.dumps(b["arch"])),
        ("img", f"{what} against peak SRAM", "pareto.png"),
        ("table", "front", [what, "peak SRAM (kB)", "Flash (kB)", "MACs (M)", "patch-based layers"],
         [[fmt(p["accuracy"]), fmt(p["peak_sram_kb"]), fmt(p["flash_kb"]), fmt(p["macs"] / 1e6),
           str(p["patch_layers"])] for p in result["pareto"]]),
    ]


def _write_documents(run_dir: Path, blocks, data: dict, images: list[str]) -> dict:
    """``report.md``, ``report.html`` and ``report.json`` of ``blocks`` and ``data``; ``data`` with the
    written paths (and the ``images``) under ``files``."""
    _finite(data)
    for name, text in (("report.md", _to_markdown(blocks)), ("report.html", _to_html(blocks, run_dir)),
                       ("report.json", json.dumps(data, indent=1, allow_nan=False) + "\n")):
        atomic_write(run_dir / name, text)
        _readable(run_dir / name)
    data["files"] = [str(run_dir / n) for n in ["report.md", "report.html", "report.json", *images]]
    return data


def write_subnet_report(run_dir, result: dict) -> dict:
    """``report.md``, ``report.html``, ``report.json`` and ``pareto.png`` of a sub-network search;
    returns the report data (the result's numbers) with the written paths under ``files``."""
    run_dir = Path(run_dir)
    plot_subnet_front(result, run_dir / "pareto.png")
    blocks = _subnet_blocks(result)
    data = {k: result[k] for k in ("kind", "space", "mcu", "limits", "best", "pareto", "evaluated", "seconds")}
    data["accuracy_label"] = subnet_accuracy_label(result)
    return _write_documents(run_dir, blocks, data, ["pareto.png"])


# ---- the sub-network search alone under a latency target (--max-latency) -------------------
def plot_trajectory(result: dict, path: Path) -> None:
    """The best accuracy within the latency target against wall time."""
    plt = _plt()
    tr = result["trajectory"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step([p["seconds"] for p in tr] + [result["search_seconds"]],
            [p["accuracy"] for p in tr] + [tr[-1]["accuracy"]], where="post", marker="o", ms=3,
            label=f"{result['strategy']} search")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel(f"best {subnet_accuracy_label(result)} within {fmt(result['target_ms'])} ms")
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_latency_front(result: dict, path: Path) -> None:
    """Accuracy against latency of the search's front, the chosen one starred; with the truth of a
    nasbench201 run, its front by measured accuracy and target latency beside the true front."""
    plt = _plt()
    b, pts, truth = result["best"], result["front"], result.get("truth")
    label = subnet_accuracy_label(result)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step([p["latency_ms"] for p in pts], [p["accuracy"] for p in pts], where="post", marker="o", ms=3,
            label=f"front of the sub-networks the {result['strategy']} search scored ({result['latency']})")
    ax.plot([b["latency_ms"]], [b["accuracy"]], "r*", ms=12, label="chosen")
    if truth and result["config"].get("accuracy") != "table":  # a proxy's score: not on the accuracy axis
        truth = None
    if truth:
        for key, color, what in (("true_front", "k", "true front"), ("found_front", "C2", "front of the evaluated cells")):
            ff = truth.get(key) or []
            if ff:
                ax.step([p["latency_ms"] for p in ff], [p["accuracy"] for p in ff], where="post", marker=".", ms=3,
                        color=color, lw=0.9, label=f"{what}, measured on {truth['latency']}")
        ax.plot([b["true_latency_ms"]], [b["true_accuracy"]], "g*", ms=10, label="chosen, measured")
        if truth["optimum"]:
            o = truth["optimum"]
            ax.plot([o["latency_ms"]], [o["accuracy"]], "kx", ms=9, label="the best cell within the target")
        seen = [p["accuracy"] for p in pts + truth["found_front"]]  # the true front starts at degenerate cells
        ax.set_ylim(bottom=min(seen) - 0.02)
    ax.axvline(result["target_ms"], color="k", lw=0.8, ls="--", label="latency target")
    ax.set_xlabel(f"latency on {result['latency']} (ms)" if not truth else "latency (ms)")
    ax.set_ylabel(label)
    ax.legend(fontsize=6, loc="lower right")
    _save(fig, path)


def _truth_blocks(result: dict) -> list:
    """The blocks of a nasbench201 run against the measured target latency (``result["truth"]``)."""
    t, b = result["truth"], result["best"]
    opt = t["optimum"]
    rows = [["found cell: measured accuracy", fmt(b["true_accuracy"])],
            [f"found cell: latency on {t['latency']} (ms)",
             f"{fmt(b['true_latency_ms'])} ({'meets' if b['meets_target'] else 'violates'} the target)"],
            ["best cell within the target (exact, from the table)",
             f"{fmt(opt['accuracy'])} at {fmt(opt['latency_ms'])} ms" if opt else "none: no cell meets the target"],
            ["accuracy gap to it", fmt(t["accuracy_gap"]) if t["accuracy_gap"] is not None else "-"],
            [f"SRCC of {result['latency']} vs {t['latency']} over every cell",
             fmt(t["latency_srcc"]) if t["latency_srcc"] is not None else "-"],
            ["evaluated cells over the target on it", str(t["violations"])]]
    for key, what in (("hypervolume", "least accuracy of the table"), ("hypervolume_median_ref", "median accuracy")):
        hv = t.get(key)
        rows.append([f"hypervolume ratio of the evaluated cells' front within the target (reference: {what})",
                     f"{fmt(hv['ratio'])} ({hv['true_front_found']} of the {hv['true_front_size']} true-front cells "
                     f"found)" if hv else "- (no true front there)"])
    if t.get("adaptation"):
        a = t["adaptation"]
        rows.append(["AdaProxy", f"proxy {a.get('proxy')}, {a.get('samples')} target samples, encodings "
                                 f"{json.dumps(a.get('features'))}"])
    return [("h2", f"Against the measured latency ({t['latency']})"),
            ("table", "truth", ["", "value"], rows)] + (
        [("p", "The best cell within the target:"), ("code", json.dumps(opt["arch"]))] if opt else [])


def _verified_blocks(result: dict) -> list:
    """The blocks of a nasbench201 run with ``--verify K`` (``result["verified"]``): the front's most
    accurate cells measured on the target, and the one kept."""
    from codesign.search.nb201_latency import verified_text

    v = result["verified"]
    label = subnet_accuracy_label(result)
    table = result["config"].get("accuracy") == "table"  # the search saw the measured accuracy itself
    head = [label] + ([] if table else ["measured accuracy"])
    return [("h2", f"Verified on the target ({v['latency']}, {v['measurements']} measurements)"),
            ("p", f"The {v['measurements']} most accurate cells of the search's front, measured on {v['latency']}; "
                  f"the answer is the most accurate one within {fmt(v['target_ms'])} ms: " + verified_text(v) + "."),
            ("table", "verified", head + [f"latency on {result['latency']} (ms)", f"latency on {v['latency']} (ms)",
                                          "meets the target", "kept", "arch"],
             [[fmt(c["accuracy"])] + ([] if table else [fmt(c["true_accuracy"])])
              + [fmt(c["latency_ms"]), fmt(c["true_latency_ms"]), "yes" if c["meets_target"] else "no",
                 "kept" if c == v["kept"] else "", json.dumps(c["arch"])] for c in v["cells"]])]


def write_latency_target_report(run_dir, result: dict) -> dict:
    """``report.md``, ``report.html``, ``report.json``, ``trajectory.png`` and ``front.png`` of a
    sub-network search under a latency target (with a nasbench201 run's truth: the measured
    latency, the exact optimum, the hypervolume ratio); returns the report data with the written
    paths under ``files``."""
    run_dir = Path(run_dir)
    plot_trajectory(result, run_dir / "trajectory.png")
    plot_latency_front(result, run_dir / "front.png")
    cfg, b = result["config"], result["best"]
    label = subnet_accuracy_label(result)
    blocks = [
        ("h1", "Sub-network search report: latency target"),
        ("p", f"Space {result['space']}; the most accurate sub-network ({label}) whose latency on "
              f"{result['latency']} is at most {fmt(result['target_ms'])} ms; {result['strategy']} search, seed "
              f"{cfg['seed']}; {result['evaluations']} sub-networks scored in {fmt(result['search_seconds'])} s "
              f"(set-up included: {fmt(result['seconds'])} s)."),
        ("strong", f"Chosen{' by the search (before verification, below)' if result.get('verified') else ''}: "
                   f"{label} {fmt(b['accuracy'])} at {fmt(b['latency_ms'])} ms on {result['latency']}"),
        ("code", json.dumps(b["arch"])),
        *(_truth_blocks(result) if result.get("truth") else []),
        *(_verified_blocks(result) if result.get("verified") else []),
        ("img", "best accuracy within the target over wall time", "trajectory.png"),
        ("table", "trajectory", ["seconds", f"best {label}", "sub-networks scored"],
         [[fmt(p["seconds"]), fmt(p["accuracy"]), str(p["evaluations"])] for p in result["trajectory"]]),
        ("h2", "Accuracy against latency"),
        ("img", f"{label} against latency of the scored sub-networks' front", "front.png"),
        ("table", "front", ["latency (ms)", label, "arch"],
         [[fmt(p["latency_ms"]), fmt(p["accuracy"]), json.dumps(p["arch"])] for p in result["front"]]),
    ]
    data = {k: result[k] for k in ("kind", "space", "strategy", "latency", "target_ms", "best", "trajectory",
                                   "front", "evaluations", "search_seconds", "seconds")}
    data["accuracy_label"] = label
    if result.get("truth"):
        data["truth"] = result["truth"]
    if result.get("verified"):
        data["verified"] = result["verified"]
    return _write_documents(run_dir, blocks, data, ["trajectory.png", "front.png"])
