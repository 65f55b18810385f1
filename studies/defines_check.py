"""Depth-first scheduling checked against DeFiNES (Mei et al., HPCA 2023, arXiv 2212.05344).

DeFiNES's case study 1 runs FSRCNN (eight unpadded convolutions, 960 x 540 output) as one
fused stack on its "Meta-prototype-like DF" accelerator and sweeps the tile size (Tx, Ty) under
three overlap-storing modes (fully recompute, H-cached V-recompute, fully cached). This study
rebuilds that workload and, as far as our accelerator description allows, that accelerator
(``meta_proto_like``: every deviation is listed in docs/defines.md), and costs with our schedule
model (``accelerators.schedule``): layer by layer, and the one-stack schedule for every tile
under ``recompute`` (= their fully recompute) and ``cache`` (= their fully cached; we have no
H-cached V-recompute). Then how the best tile moves with the global-buffer size, and the gain
of the searched depth-first schedule over layer by layer on activation-dominant FSRCNN against
weight-dominant MobileNetV1 and ResNet-18. Every tile is mapped by the heuristic mapper; the
model is not tuned to DeFiNES in any way.
"""
from __future__ import annotations

import math

from ._common import Report, command_line, fmt, parse_args, plt

NAME = "defines_check"
POLICIES = ("recompute", "cache")
# DeFiNES case study 1 (main_cs1.py of the artifact): output 960 x 540, tiles Tx x Ty
FULL = {"out": (540, 960), "tx": (1, 4, 16, 60, 240, 960), "ty": (1, 4, 18, 72, 270, 540), "grid": "all",
        "glb_kb": (64, 256, 1024, 4096), "cnn_res": 224, "max_layers": 4}
# quick: a sixteenth of the resolution per axis, the diagonal of the grid scaled alike
QUICK = {"out": (34, 60), "tx": (1, 4, 15, 60), "ty": (1, 4, 17, 34), "grid": "diagonal",
         "glb_kb": (64, 1024), "cnn_res": 32, "max_layers": 2}
GLB_KB = 1024  # DeFiNES's 1 MB activation global buffer


def meta_proto_like(glb_kb: int = GLB_KB):
    """The closest our three-level description (register file, one global buffer, DRAM) gets
    to DeFiNES's Meta-prototype-like DF core (inputs/HW/Meta_prototype_DF.py of the artifact):
    1,024 8-bit MACs as K 32 x C 2 x (OX 4 x OY 4), 8-bit weights and activations, 16-bit
    partial sums; per-word energies converted from its memory instances (1 MB SRAM: 26.01 pJ
    read / 23.65 pJ write per 128 bits -> 3.25 / 2.96 pJ per 16 bits; DRAM 700 / 750 pJ per
    64 bits -> 175 / 187.5 pJ per 16 bits; MAC 0.04 pJ; register 0.01 pJ per 8 bits); DRAM
    64 bits per cycle, global buffer 1,024 bits per cycle."""
    from accelerators.spec import accelerator_from_dict

    return accelerator_from_dict({
        "name": f"meta-proto-like-df-{glb_kb}k", "clock_mhz": 1000, "word_bits": {"W": 8, "I": 8, "O": 16},
        "array": [{"size": 32, "loops": ["K"]}, {"size": 2, "loops": ["C"]}, {"size": 16, "loops": ["P", "Q"]}],
        "rf": {"capacity_bytes": {"W": 8, "I": 8, "O": 8}, "bw_words_per_cycle": None,
               "read_energy_pj": 0.02, "write_energy_pj": 0.02},
        "glb": {"capacity_bytes": glb_kb * 1024, "bw_bits_per_cycle": 1024,
                "read_energy_pj": 3.25, "write_energy_pj": 2.96},
        "dram": {"bw_bits_per_cycle": 64, "read_energy_pj": 175.0, "write_energy_pj": 187.5},
        "mac_energy_pj": 0.04, "noc_energy_pj": 0.0,
        "notes": "DeFiNES Meta-prototype-like DF, approximated (docs/defines.md)"}, source=NAME)


def fsrcnn(out_h: int, out_w: int):
    """FSRCNN as DeFiNES models it (inputs/WL/*/workload_fsrcnn.py): unpadded 5x5 1->56,
    1x1 56->12, four 3x3 12->12, 1x1 12->56, and the deconvolution as a 3x3 56->16 convolution;
    the input is the output plus the 14 rows and columns the windows eat."""
    from models.zoo._builder import NetBuilder

    b = NetBuilder("fsrcnn", 1, (out_h + 14, out_w + 14))
    b.conv("extract", 56, 5, padding=0).conv("shrink", 12, 1, padding=0)
    for i in range(4):
        b.conv(f"map{i}", 12, 3, padding=0)
    b.conv("expand", 56, 1, padding=0).conv("deconv", 16, 3, padding=0)
    return b.build(None, source="DeFiNES artifact, workload_fsrcnn.py")


def mobilenet_v1(resolution: int):
    """MobileNetV1 1.0 (Howard et al. 2017, Table 1), padded as usual."""
    from models.zoo._builder import NetBuilder

    b = NetBuilder("mobilenet_v1", 3, resolution)
    b.conv("conv0", 32, 3, stride=2)
    for i, (c, s) in enumerate(((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5
                               + ((1024, 2), (1024, 1))):
        b.dwconv(f"dw{i + 1}", 3, stride=s).conv(f"pw{i + 1}", c, 1)
    b.adaptive_pool("avgpool", 1)
    b.fc("fc", 1000)
    return b.build(resolution, source="Howard et al. 2017, Table 1")


def _cost_row(c) -> dict:
    d = c.dram_words
    return {"energy_pj": c.energy_pj, "cycles": c.cycles, "dram_w": d["weights"], "dram_a": d["activations"],
            "mac_ratio": c.macs / c.layer_macs, "peak_kb": c.peak_glb_bytes / 1024}


def tile_grid(net, acc, tiles) -> list[dict]:
    """Layer by layer, and FSRCNN as one stack for every tile and policy (a tile covering the
    whole output is layer by layer, as in DeFiNES's grid, where that corner's intermediate maps
    cannot stay on chip). Tiles that do not fit the global buffer are rows with ``fits`` False."""
    from accelerators.schedule import Stack
    from mappings.schedule import Schedule, StackMapper, evaluate_schedule

    sm = StackMapper(net, acc, optimizer="heuristic")
    lbl = evaluate_schedule(net, sm.acc, mapper=sm)
    n, last = len(net.layers), net.layers[-1]
    rows = [dict(policy="layer", tx=last.Q, ty=last.P, fits=True, **_cost_row(lbl))]
    for pol in POLICIES:
        for tx, ty in tiles:
            r = {"policy": pol, "tx": tx, "ty": ty}
            if tx >= last.Q and ty >= last.P:
                rows.append(dict(r, fits=True, whole_map=True, **_cost_row(lbl)))
                continue
            try:
                c = evaluate_schedule(net, sm.acc, Schedule((Stack(0, n - 1, (ty, tx), pol),)), mapper=sm)
            except Exception as e:  # noqa: BLE001 - a tile that does not fit the buffer
                rows.append(dict(r, fits=False, why=str(e).split(": ")[-1][:120]))
                continue
            rows.append(dict(r, fits=True, **_cost_row(c)))
    return rows


def best(rows, policy=None, key="energy_pj"):
    ok = [r for r in rows if r["fits"] and r["policy"] != "layer" and not r.get("whole_map")
          and (policy is None or r["policy"] == policy)]
    return min(ok, key=lambda r: r[key]) if ok else None


def searched(net, acc, max_layers: int) -> dict:
    """Layer by layer against the searched depth-first schedule (least energy)."""
    from codesign.search.schedule import search_schedule
    from mappings.schedule import StackMapper, evaluate_schedule

    sm = StackMapper(net, acc, optimizer="heuristic")
    lbl = evaluate_schedule(net, sm.acc, mapper=sm)
    df = search_schedule(net, sm.acc, objective="energy", max_layers=max_layers, mapper=sm)
    ld, fd = lbl.dram_words, df.dram_words
    w = sum(l.K * l.C * l.R * l.S * l.G for l in net.layers)
    a = sum(l.N * l.K * l.G * l.P * l.Q for l in net.layers)
    return {"network": net.name, "weights": w, "activations": a, "weight_share": w / (w + a),
            "dram_weights_share_lbl": ld["weights"] / (ld["weights"] + ld["activations"]),
            "energy_lbl_pj": lbl.energy_pj, "energy_df_pj": df.energy_pj,
            "cycles_lbl": lbl.cycles, "cycles_df": df.cycles,
            "dram_lbl": ld["weights"] + ld["activations"], "dram_df": fd["weights"] + fd["activations"],
            "energy_gain": lbl.energy_pj / df.energy_pj, "speedup": lbl.cycles / df.cycles,
            "dram_saving": (ld["weights"] + ld["activations"]) / (fd["weights"] + fd["activations"]),
            "stacks": len(df.stacks), "fused_stacks": sum(1 for s in df.stacks if len(s.names) > 1),
            "tiled_stacks": sum(1 for s in df.stacks if s.tiles > 1)}


def _log(what: str) -> None:
    import sys
    import time

    from . import _common
    print(f"{NAME}: {what} done at {time.perf_counter() - _common._START:.0f} s", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    cfg = QUICK if args.quick else FULL
    oh, ow = cfg["out"]
    net = fsrcnn(oh, ow)
    diag = list(zip(cfg["tx"], cfg["ty"]))
    tiles = [(tx, ty) for ty in cfg["ty"] for tx in cfg["tx"]] if cfg["grid"] == "all" else diag
    grid = tile_grid(net, meta_proto_like(), tiles)
    _log("grid")
    lbl = grid[0]
    for r in grid:
        if r["fits"]:
            r["energy_vs_lbl"] = r["energy_pj"] / lbl["energy_pj"]
            r["cycles_vs_lbl"] = r["cycles"] / lbl["cycles"]
    bests = {p: best(grid, p) for p in POLICIES}
    best_all, best_lat = best(grid), best(grid, key="cycles")

    # the best tile against the size of the global buffer (the diagonal of the grid)
    mem = []
    for kb in cfg["glb_kb"]:
        rows = grid if kb == GLB_KB else tile_grid(net, meta_proto_like(kb), diag)
        rows = [r for r in rows if r["policy"] == "layer" or (r["tx"], r["ty"]) in diag]
        _log(f"memory {kb} kB")
        for p in POLICIES:
            b = best(rows, p)
            mem.append({"glb_kb": kb, "policy": p, "best_tx": b and b["tx"], "best_ty": b and b["ty"],
                        "best_energy_pj": b and b["energy_pj"], "lbl_energy_pj": rows[0]["energy_pj"],
                        "largest_fitting_tile": max(((r["tx"] * r["ty"]) for r in rows if r["policy"] == p
                                                     and r["fits"] and not r.get("whole_map")), default=0)})

    # activation-dominant against weight-dominant networks: searched schedule vs layer by layer
    from models.zoo import get_network
    nets = [net, mobilenet_v1(cfg["cnn_res"]), get_network("resnet18", resolution=cfg["cnn_res"])]
    gains = []
    for n in nets:
        gains.append(searched(n, meta_proto_like(), cfg["max_layers"]))
        _log(f"search {n.name}")

    rep = Report(NAME, "Depth-first scheduling against DeFiNES (HPCA 2023)", args.out, args.quick)
    rep.p(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    rep.h2("Case study 1: FSRCNN, one stack, tile size x overlap policy")
    rep.p(f"FSRCNN, {ow} x {oh} output, {sum(l.macs for l in net.layers) / 1e9:.2f} G MACs, on `meta_proto_like` "
          f"(global buffer {GLB_KB} kB). Layer by layer: {fmt(lbl['energy_pj'] / 1e9, 3)} mJ, "
          f"{fmt(lbl['cycles'] / 1e6, 3)} M cycles, DRAM {fmt((lbl['dram_w'] + lbl['dram_a']) / 1e6, 3)} M words. "
          f"Least energy: {best_all['policy']} at Tx x Ty = {best_all['tx']} x {best_all['ty']}: "
          f"{fmt(best_all['energy_pj'] / 1e9, 3)} mJ ({fmt(lbl['energy_pj'] / best_all['energy_pj'], 3)}x less "
          f"than layer by layer); least latency: {best_lat['policy']} at {best_lat['tx']} x {best_lat['ty']}: "
          f"{fmt(best_lat['cycles'] / 1e6, 3)} M cycles ({fmt(lbl['cycles'] / best_lat['cycles'], 3)}x fewer).")
    for key, unit, scale in (("energy_pj", "mJ", 1e9), ("cycles", "M cycles", 1e6)):
        for p in POLICIES:
            rep.p(f"**{p}, {unit}** (rows Ty, columns Tx; `-`: the tile's stack does not fit the global buffer; "
                  f"the whole-map corner is layer by layer)")
            rep.table(["Ty \\ Tx"] + [str(t) for t in cfg["tx"]],
                      [[str(ty)] + [next(((fmt(r[key] / scale, 3) if r["fits"] else "-") for r in grid
                                          if r["policy"] == p and r["tx"] == tx and r["ty"] == ty), "")
                                    for tx in cfg["tx"]] for ty in cfg["ty"]])
    rep.p("The diagonal of the grid (as DeFiNES's Fig. 13 and 14: MACs computed, DRAM traffic):")
    rep.table(["Tx x Ty", "policy", "energy mJ", "M cycles", "MACs / layer MACs", "DRAM act. M words",
               "peak GLB kB"],
              [[f"{r['tx']} x {r['ty']}", r["policy"]] + ([fmt(r["energy_pj"] / 1e9, 3), fmt(r["cycles"] / 1e6, 3),
                                                          fmt(r["mac_ratio"], 3), fmt(r["dram_a"] / 1e6, 3),
                                                          fmt(r["peak_kb"], 4)] if r["fits"] else ["-"] * 5)
               for r in grid if r["policy"] != "layer" and (r["tx"], r["ty"]) in diag])
    rep.h2("The best tile against the global-buffer size (diagonal tiles)")
    rep.table(["GLB kB", "policy", "best Tx x Ty", "best energy mJ", "layer by layer mJ", "largest tile that fits"],
              [[str(m["glb_kb"]), m["policy"], f"{m['best_tx']} x {m['best_ty']}" if m["best_tx"] else "none",
                fmt(m["best_energy_pj"] / 1e9, 3) if m["best_energy_pj"] else "-", fmt(m["lbl_energy_pj"] / 1e9, 3),
                str(m["largest_fitting_tile"])] for m in mem])
    rep.h2("Activation-dominant against weight-dominant networks (searched schedule, least energy)")
    rep.table(["network", "weights / (weights + activations)", "weights share of LBL DRAM", "stacks (fused, tiled)",
               "DRAM saving", "energy gain", "speedup"],
              [[g["network"], fmt(g["weight_share"], 3), fmt(g["dram_weights_share_lbl"], 3),
                f"{g['stacks']} ({g['fused_stacks']}, {g['tiled_stacks']})", fmt(g["dram_saving"], 3) + "x",
                fmt(g["energy_gain"], 3) + "x", fmt(g["speedup"], 3) + "x"] for g in gains])

    p = plt()
    fig, axes = p.subplots(1, 3, figsize=(14, 4))
    for ax, pol in zip(axes[:2], POLICIES):
        import numpy as np
        z = np.full((len(cfg["ty"]), len(cfg["tx"])), np.nan)
        for i, ty in enumerate(cfg["ty"]):
            for j, tx in enumerate(cfg["tx"]):
                r = next((r for r in grid if r["policy"] == pol and r["tx"] == tx and r["ty"] == ty), None)
                if r is None:
                    z[i, j] = -1.0  # not run (the quick grid is the diagonal)
                elif r["fits"]:
                    z[i, j] = r["energy_pj"] / 1e9
        from matplotlib.colors import LogNorm
        ok = [r["energy_pj"] / 1e9 for r in grid if r["fits"]]
        im = ax.imshow(np.where(z < 0, np.nan, z), cmap="viridis_r", norm=LogNorm(vmin=min(ok), vmax=max(ok)),
                       aspect="auto")
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                text = "n/f" if math.isnan(z[i, j]) else "" if z[i, j] < 0 else f"{z[i, j]:.2g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(cfg["tx"])), [str(t) for t in cfg["tx"]])
        ax.set_yticks(range(len(cfg["ty"])), [str(t) for t in cfg["ty"]])
        ax.set_xlabel("Tx (columns)")
        ax.set_ylabel("Ty (rows)")
        ax.set_title(f"FSRCNN energy (mJ), {pol}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[2]
    xs = range(len(gains))
    ax.bar([x - 0.2 for x in xs], [g["energy_gain"] for g in gains], 0.4, label="energy")
    ax.bar([x + 0.2 for x in xs], [g["dram_saving"] for g in gains], 0.4, label="DRAM words")
    ax.set_xticks(list(xs), [g["network"] for g in gains])
    ax.axhline(1, color="k", lw=0.6)
    ax.set_yscale("log")
    ax.set_ylabel("layer by layer / depth-first (x)")
    ax.set_title("Gain of the searched depth-first schedule", fontsize=9)
    ax.legend(fontsize=7)
    rep.figure(fig, "defines_check.png", "FSRCNN energy over the tile grid under recompute and cache "
                                         "(n/f: does not fit the global buffer; the whole-map corner is layer by "
                                         "layer), and the depth-first gain on an activation-dominant network "
                                         "(FSRCNN) against weight-dominant ones.")
    rep.data("grid.csv", grid)
    rep.data("memory.csv", mem)
    rep.data("gains.csv", gains)
    rep.data("summary.json", {"out": cfg["out"], "glb_kb": GLB_KB, "layer_by_layer": lbl,
                              "best": {p: bests[p] for p in POLICIES}, "best_energy": best_all,
                              "best_latency": best_lat, "memory": mem, "gains": gains,
                              "cnn_resolution": cfg["cnn_res"], "max_layers": cfg["max_layers"],
                              "tiles_tx": cfg["tx"], "tiles_ty": cfg["ty"], "grid": cfg["grid"]})
    rep.write(command_line(NAME, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
