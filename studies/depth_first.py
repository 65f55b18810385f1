"""Depth-first vs layer-by-layer: how much fused (layer-fused, tile-by-tile) scheduling saves
over the zoo and the accelerator presets.

For every network and preset, the layer-by-layer schedule and the searched depth-first schedule
(``codesign.search.schedule``: stacks of up to four layers, tiles and overlap policy chosen for
the least EDP; every tile mapped by the heuristic mapper) are costed by the same cost model:
DRAM traffic (weights and activations), energy, latency and EDP. The microcontroller view beside
it: peak activation memory (int8) layer by layer and with the best 4x4 patch-based first stage.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from ._common import Report, command_line, fmt, parse_args, plt

NAME = "depth_first"
NETWORKS = ("mobilenet_v2", "mnasnet1_0", "mobilenet_v3_large", "squeezenet1_1", "resnet18", "resnet50", "vgg16")
PRESETS = ("eyeriss", "nvdla-256", "nvdla-1024", "shidiannao", "edgetpu", "simba", "tpu-v1")
QUICK_NETWORKS = ("mobilenet_v2",)
QUICK_PRESETS = ("eyeriss", "nvdla-256")
RESOLUTION, QUICK_RESOLUTION = 224, 64
MAX_LAYERS = 4


def one(job) -> dict:
    """Layer-by-layer and depth-first costs of one network on one preset."""
    net_name, preset, res, seed = job
    from codesign.search.schedule import search_schedule
    from mappings.schedule import StackMapper, evaluate_schedule
    from models.zoo import get_network

    net = get_network(net_name, resolution=res)
    sm = StackMapper(net, preset, optimizer="heuristic", seed=seed)
    lbl = evaluate_schedule(net, sm.acc, mapper=sm)
    fused = search_schedule(net, sm.acc, max_layers=MAX_LAYERS, mapper=sm)
    ld, fd = lbl.dram_words, fused.dram_words
    return {"network": net_name, "preset": preset,
            "stacks": len(fused.stacks), "fused_stacks": sum(1 for s in fused.stacks if len(s.names) > 1),
            "tiled_stacks": sum(1 for s in fused.stacks if s.tiles > 1),
            "dram_lbl": ld["weights"] + ld["activations"], "dram_fused": fd["weights"] + fd["activations"],
            "dram_weights_share_lbl": ld["weights"] / (ld["weights"] + ld["activations"]),
            "energy_lbl_pj": lbl.energy_pj, "energy_fused_pj": fused.energy_pj,
            "cycles_lbl": lbl.cycles, "cycles_fused": fused.cycles, "edp_lbl": lbl.edp, "edp_fused": fused.edp,
            "dram_energy_share_lbl": lbl.energy_by_component["dram"] / lbl.energy_pj,
            "dram_energy_share_fused": fused.energy_by_component["dram"] / fused.energy_pj,
            "peak_glb_kb": fused.peak_glb_bytes / 1024}


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    nets = QUICK_NETWORKS if args.quick else NETWORKS
    presets = QUICK_PRESETS if args.quick else PRESETS
    res = QUICK_RESOLUTION if args.quick else RESOLUTION
    jobs = [(n, p, res, args.seed) for n in nets for p in presets]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as ex:
            rows = list(ex.map(one, jobs))
    else:
        rows = [one(j) for j in jobs]
    for r in rows:
        r["dram_saving"] = r["dram_lbl"] / r["dram_fused"]
        r["energy_saving"] = r["energy_lbl_pj"] / r["energy_fused_pj"]
        r["speedup"] = r["cycles_lbl"] / r["cycles_fused"]
        r["edp_gain"] = r["edp_lbl"] / r["edp_fused"]

    from accelerators.memory import best_patch_stage, memory_profile
    from models.zoo import get_network
    mem = []
    for n in nets:
        net = get_network(n, resolution=res)
        lbl = memory_profile(net)
        k, patched = best_patch_stage(net, 4)
        mem.append({"network": n, "peak_lbl_kb": lbl.peak_bytes / 1024, "peak_patch_kb": patched.peak_bytes / 1024,
                    "patch_layers": k, "reduction": lbl.peak_bytes / patched.peak_bytes,
                    "flash_kb": lbl.flash_bytes / 1024})

    rep = Report(NAME, "Depth-first vs layer-by-layer scheduling", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    best = max(rows, key=lambda r: r["edp_gain"])
    worst = min(rows, key=lambda r: r["edp_gain"])
    rep.h2("Headline")
    rep.p(f"At {res}x{res}, batch 1, the searched depth-first schedule cuts DRAM traffic "
          f"{fmt(min(r['dram_saving'] for r in rows), 3)}x to {fmt(max(r['dram_saving'] for r in rows), 3)}x and "
          f"improves EDP {fmt(worst['edp_gain'], 3)}x ({worst['network']} on {worst['preset']}) to "
          f"{fmt(best['edp_gain'], 3)}x ({best['network']} on {best['preset']}). Layer-by-layer is one of the "
          f"candidates, so no entry is below 1.")
    rep.h2("EDP gain (layer by layer / depth-first)")
    rep.table(["network"] + list(presets),
              [[n] + [fmt(next(r["edp_gain"] for r in rows if r["network"] == n and r["preset"] == p), 3) + "x"
                      for p in presets] for n in nets])
    rep.h2("DRAM traffic saving (words, layer by layer / depth-first)")
    rep.table(["network"] + list(presets),
              [[n] + [fmt(next(r["dram_saving"] for r in rows if r["network"] == n and r["preset"] == p), 3) + "x"
                      for p in presets] for n in nets])
    rep.h2("Every pair")
    rep.table(["network", "preset", "stacks (fused, tiled)", "weights share of DRAM (lbl)", "DRAM saving",
               "energy saving", "speedup", "EDP gain", "DRAM share of energy lbl -> fused", "peak GLB kB"],
              [[r["network"], r["preset"], f"{r['stacks']} ({r['fused_stacks']}, {r['tiled_stacks']})",
                fmt(r["dram_weights_share_lbl"], 3), fmt(r["dram_saving"], 3), fmt(r["energy_saving"], 3),
                fmt(r["speedup"], 3), fmt(r["edp_gain"], 3),
                f"{fmt(r['dram_energy_share_lbl'], 2)} -> {fmt(r['dram_energy_share_fused'], 2)}",
                fmt(r["peak_glb_kb"], 4)] for r in rows])
    rep.h2("Microcontroller view: peak activation memory (int8)")
    rep.table(["network", "layer by layer kB", "4x4 patch-based kB", "patch stage (layers)", "reduction",
               "weights (Flash) kB"],
              [[m["network"], fmt(m["peak_lbl_kb"], 4), fmt(m["peak_patch_kb"], 4), str(m["patch_layers"]),
                fmt(m["reduction"], 3) + "x", fmt(m["flash_kb"], 4)] for m in mem])

    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(presets)
    for j, pr in enumerate(presets):
        for ax, key in zip(axes, ("dram_saving", "edp_gain")):
            vals = [next(r[key] for r in rows if r["network"] == n and r["preset"] == pr) for n in nets]
            ax.bar([i + j * width for i in range(len(nets))], vals, width=width, label=pr, color=f"C{j}")
    for ax, title in zip(axes, ("DRAM traffic saving", "EDP gain")):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(nets))])
        ax.set_xticklabels(nets, rotation=30, ha="right", fontsize=7)
        ax.axhline(1, color="k", lw=0.6)
        ax.set_ylabel(f"{title} (x)")
        ax.set_title(f"{title}: depth-first over layer by layer", fontsize=9)
    axes[0].legend(fontsize=6)
    rep.figure(fig, "depth_first.png", "DRAM traffic saving and EDP gain of the searched depth-first schedule over "
                                       "layer by layer, per network and accelerator preset.")
    rep.data("pairs.csv", rows)
    rep.data("summary.json", {"pairs": rows, "memory": mem, "resolution": res, "max_layers": MAX_LAYERS})
    rep.write(command_line(NAME, args.quick, f"--workers {args.workers}" if args.workers > 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
